// Every cache method on every model, through the same code (the model seam IBlockModel and the sampling library's
// PlanRunner): the tiny DiT (dit_p2, 2 blocks), the tiny PixArt-α (pixart_tiny, 2 blocks) and the tiny Open-Sora 1.0
// STDiT (stdit_tiny, 3 blocks, 3 frames), 8 steps, one sample with guidance (two model rows deciding together), each
// with its kind's sampler (DDIM, DPM-Solver++ 2M, DDPM), on the host backend. Per method and model:
//   - the method's no-reuse setting samples the bits of no cache;
//   - a reuse setting skips the blocks its rule says (the steps and the blocks per step, counted by the runner from
//     the plans it executed) and waits for the device only for the signal its gate reads (docs/caching.md, "Host
//     waits"): a fixed schedule never; a data-dependent gate exactly once on each step whose rule reads its signal —
//     TeaCache steps 1..6 (the first and last always compute), FBCache steps 1..7, DBCache steps 2..7 (after its
//     warm-up of 2), adaptive BlockDance the 3 steps after a step that cached (its rate update);
//   - a setting that cannot apply to the model is refused by ICachePolicy.Check, which takes no device, so a caller
//     refuses it before the device starts.
// The adaptive gates get an unreachable threshold (1e30), so their decisions follow the structural part of their
// rule only (first/last/warm-up steps, caps) and are the same on every model. Blocks skipped per reused step follow
// from the depth (the whole stack, all but the probe block, or the blocks up to the boundary).
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler;
using BlockDance.Transformer;
using Xunit;

namespace BlockDance.Tests;

public class MethodMatrixTests
{
    const int Steps = 8;
    const double Huge = 1e30;

    /// <param name="Reused">Steps of the reuse setting that skip blocks.</param>
    /// <param name="Skipped">Blocks each reused step skips (per row), given the depth.</param>
    /// <param name="Waits">Host waits per step of the reuse setting: the signal reads of the method's gate.</param>
    /// <param name="Impossible">A setting that does not fit the model or an 8-step run.</param>
    /// <param name="Partial">The reuse steps skip branches, not whole blocks (PAB, ToCa): fewer block equivalents than the
    /// steps' blocks, more than none of them.</param>
    public sealed record Method(string Name, Func<BlockShape, ICachePolicy> NoReuse, Func<BlockShape, ICachePolicy> Reuse,
        int[] Reused, Func<int, int> Skipped, double Waits, Func<BlockShape, ICachePolicy>? Impossible, bool Partial = false);

    static readonly Func<int, int> One = _ => 1, Whole = d => d, AllButFirst = d => d - 1;

    static int[] Where(bool[] reuse) => Enumerable.Range(0, reuse.Length).Where(i => reuse[i]).ToArray();

    /// <summary>An Ada policy for the model's kind: class-conditioned on the DiT, caption-conditioned (its caption width, its
    /// frames) on PixArt-α and STDiT.</summary>
    static AdaPolicy Ada(BlockShape s, bool[] decisions, int channels = -1) => AdaPolicy.WithDecisions(
        Zero(new AdaPolicyInfo(Steps, 3, channels < 0 ? s.InChannels : channels, s.InputSize, s.InputSize, s.CaptionChannels > 0 ? 0 : s.Classes, 4, 0, 2,
            Frames: s.Frames, CaptionWidth: s.CaptionChannels)),
        [decisions]);

    static AdaWeights Zero(AdaPolicyInfo i) =>
        new(i, new float[i.Hidden * i.InputDim], new float[i.Hidden], new float[i.Decisions * i.Hidden], new float[i.Decisions]);

    static readonly BlockDanceConfig Bd2 = new(N: 2, Boundary: 0, WindowStart: 0, WindowEnd: 1);
    static readonly double[] Flat = [0, 0, 0, 0, 1];                                    // TeaCache p(d) = 1
    static readonly double[] Ones = Enumerable.Repeat(1.0, Steps).ToArray();            // MagCache γ_i = 1

    static readonly PabConfig PabOdd = new(Spatial: 2, Temporal: 2, Cross: 2, From: -1, To: 1001, ScaleRanges: false);   // every odd step

    public static readonly Method[] Methods =
    [
        new("none", _ => new NoCache(), _ => new NoCache(), [], One, 0, null),
        new("blockdance", _ => new BlockDancePolicy(Bd2 with { N = 1 }), _ => new BlockDancePolicy(Bd2),
            Where(Bd2.ReuseSchedule(Steps)), One, 0, s => new BlockDancePolicy(Bd2 with { Boundary = s.Depth - 1 })),
        new("ada", s => Ada(s, [true, true, true, true, true]), s => Ada(s, [true, false, true, false, false]),
            [4, 6, 7], One, 0, s => Ada(s, [true, true, true, true, true], channels: 3)),
        new("bd-adaptive", _ => new BlockDanceAdaptivePolicy(new(Huge, MaxConsecutive: 0, Boundary: 0, WindowStart: 0, WindowEnd: 1)),
            _ => new BlockDanceAdaptivePolicy(new(Huge, MaxConsecutive: 1, Boundary: 0, WindowStart: 0, WindowEnd: 1)),
            [2, 4, 6], One, 3.0 / Steps, s => new BlockDanceAdaptivePolicy(new(Boundary: s.Depth - 1))),
        new("bd-taylor", _ => new BlockDanceTaylorPolicy(new(Bd2 with { N = 1 })), _ => new BlockDanceTaylorPolicy(new(Bd2)),
            Where(Bd2.ReuseSchedule(Steps)), One, 0, s => new BlockDanceTaylorPolicy(new(Bd2 with { Boundary = s.Depth - 1 }))),
        new("fora", _ => new ForaPolicy(new(1)), _ => new ForaPolicy(new(3)),
            Where(new ForaConfig(3).ReuseSchedule(Steps)), Whole, 0, _ => new ForaPolicy(new(0))),
        new("delta-dit", _ => new DeltaDitPolicy(new(1)), _ => new DeltaDitPolicy(new(2)),
            Where(new DeltaDitConfig(2).Schedule(Steps).Select(p => p.Reuse).ToArray()), One, 0, s => new DeltaDitPolicy(new(2, Blocks: s.Depth + 1))),
        new("teacache", _ => new TeaCachePolicy(new(0, Flat)), _ => new TeaCachePolicy(new(Huge, Flat)),
            [1, 2, 3, 4, 5, 6], Whole, 6.0 / Steps, _ => new TeaCachePolicy(new(0.1, [1, 2, 3, 4]))),
        new("fbcache", _ => new FirstBlockCachePolicy(new(0)), _ => new FirstBlockCachePolicy(new(Huge)),
            [1, 2, 3, 4, 5, 6, 7], AllButFirst, 7.0 / Steps, _ => new FirstBlockCachePolicy(new(-1))),
        new("dbcache", _ => new DbCachePolicy(new(Threshold: 0, Warmup: 2)), _ => new DbCachePolicy(new(Threshold: Huge, Warmup: 2)),
            [2, 3, 4, 5, 6, 7], AllButFirst, 6.0 / Steps, s => new DbCachePolicy(new(Fn: s.Depth))),
        new("magcache", _ => new MagCachePolicy(new(Ones, MaxConsecutive: 0)), _ => new MagCachePolicy(new(Ones)),
            Where(new MagCacheConfig(Ones).ReuseSchedule(Steps)), Whole, 0, _ => new MagCachePolicy(new(Ones[..5]))),
        new("taylorseer", _ => new TaylorSeerPolicy(new(Interval: 1)), _ => new TaylorSeerPolicy(new(Interval: 3, Warmup: 2)),
            Where(new TaylorSeerConfig(Interval: 3, Warmup: 2).ComputeSchedule(Steps).Select(c => !c).ToArray()), Whole, 0,
            _ => new TaylorSeerPolicy(new(Order: 3))),
        new("pab", _ => new PabPolicy(PabOdd with { From = 2000, To = 3000 }), _ => new PabPolicy(PabOdd),
            [1, 3, 5, 7], _ => 0, 0,
            s => new PabPolicy(s.Parts.Contains("temporal") ? new(From: 900, To: 100) : new(Spatial: 0, Temporal: 4, Cross: 0)),   // temporal only: absent
            Partial: true),
        new("toca", _ => new ToCaPolicy(new(N: 1)), _ => new ToCaPolicy(new(N: 3)),
            [1, 2, 4, 5, 7], _ => 0, 0, _ => new ToCaPolicy(new(N: 0)), Partial: true),
        new("l2c", s => L2c(s, 0), s => L2c(s, 0.5), [1, 3, 5, 7], _ => 0, 0, s => new LearningToCachePolicy(Router(s, Steps + 2) with { Threshold = 0.5 }),
            Partial: true),
        new("adacache", _ => new AdaCachePolicy(new([1.0], [1])), _ => new AdaCachePolicy(new([Huge], [50])),
            [2, 3, 4, 6], Whole, 2.0 / Steps, _ => new AdaCachePolicy(new([0.05, 0.03], [1, 2]))),
    ];

    public static readonly string[] Models = ["dit", "pixart", "stdit"];

    /// <summary>Methods that cannot apply to a model kind at all: refused by Check (ShapeRows), not sampled.
    /// Learning-to-Cache's router routes the DiT's attention and MLP branches: a model with other branches is refused.</summary>
    static bool Applies(string model, string method) => !(model != "dit" && method == "l2c");

    /// <summary>A Learning-to-Cache router for the stack: θ 0.1 for attention on odd steps, 1 elsewhere.</summary>
    static LearningToCacheConfig Router(BlockShape s, int steps) => new(
        Enumerable.Range(0, steps * s.Depth * 2).Select(i => (i / (s.Depth * 2)) % 2 == 1 && i % 2 == 0 ? 0.1f : 1f).ToArray(), steps, s.Depth, 0);

    static LearningToCachePolicy L2c(BlockShape s, double threshold) => new(Router(s, Steps) with { Threshold = threshold });

    public static IEnumerable<object[]> Rows(bool devices) =>
        from kind in devices ? new[] { "cpu", "cuda" } : [""]
        from model in Models
        from m in Methods
        where devices ? Applies(model, m.Name) : m.Impossible != null         // none applies to every model
        select devices ? new object[] { kind, model, m.Name } : [model, m.Name];

    public static IEnumerable<object[]> DeviceRows => Rows(true);
    public static IEnumerable<object[]> ShapeRows => Rows(false);

    static Method Get(string name) => Methods.Single(m => m.Name == name);

    static string Traj => CliRunner.Fixture("pixart_traj.safetensors");
    static string VideoTraj => CliRunner.Fixture("stdit_traj.safetensors");

    /// <summary>The model's block shape, read from its files (no device).</summary>
    static BlockShape ShapeOf(string model)
    {
        if (model == "pixart") return PixArtConfig.Read(CliRunner.Fixture("pixart_tiny")).Shape;
        if (model == "stdit")
        {
            var (s, config) = STDiTWeights.Open(CliRunner.Fixture("stdit_tiny"));
            using (s as IDisposable) return STDiTWeights.Configure(s, config, new STDiTConfig.VideoOptions()).Shape;
        }
        var src = ModelLoader.OpenSource(CliRunner.Fixture("dit_p2.weights.safetensors"));
        try { return ModelLoader.DetectConfig(src, null).Shape; }
        finally { (src as IDisposable)?.Dispose(); }
    }

    /// <summary>Samples `samples` samples (DiT: classes 3, 4, …; the caption models: the fixture's prompt for each) with the policy.</summary>
    static SamplingResult Run(ComputeDevice dev, string model, Func<BlockShape, ICachePolicy> policy, int samples = 1)
    {
        var shape = ShapeOf(model);
        if (model == "dit")
        {
            var src = ModelLoader.OpenSource(CliRunner.Fixture("dit_p2.weights.safetensors"));
            using var dit = ModelLoader.Create(dev, src, ModelLoader.DetectConfig(src, null));
            (src as IDisposable)?.Dispose();
            return SamplingSession.Run(dit, new SamplingOptions { Classes = Enumerable.Range(3, samples).ToArray(), Steps = Steps, Seed = 5, Policy = () => policy(shape) });
        }
        if (model == "stdit")
        {
            using var stdit = STDiT.Load(dev, CliRunner.Fixture("stdit_tiny"));
            var p = Repeat(PromptEmbeds.Load(VideoTraj, null, stdit.VideoConfig.CaptionChannels).Prompts, samples);
            var withNull = new PromptEmbeds(p, STDiTPipeline.NullCaptions(p, stdit.NullCaption, stdit.VideoConfig));
            return SamplingSession.Run(stdit, new Captions(withNull), STDiTPipeline.DefaultOptions with { Steps = Steps, Seed = 5, Policy = () => policy(shape) });
        }
        using var pixart = PixArt.Load(dev, CliRunner.Fixture("pixart_tiny"));
        var prompts = PromptEmbeds.Load(Traj, null, pixart.PixArtConfig.CaptionChannels);
        prompts = prompts with { Prompts = Repeat(prompts.Prompts, samples) };
        return SamplingSession.Run(pixart, new Captions(prompts), PixArtPipeline.DefaultOptions with { Steps = Steps, Seed = 5, Policy = () => policy(shape) });
    }

    static CaptionSet Repeat(CaptionSet c, int times) => times == 1 ? c : CaptionSet.Concat(c, Repeat(c, times - 1));

    static readonly Dictionary<(string, string), float[]> uncached = new();

    static float[] None(string kind, ComputeDevice dev, string model)
    {
        lock (uncached)
        {
            if (!uncached.TryGetValue((kind, model), out var s))
                uncached[(kind, model)] = s = Run(dev, model, _ => new NoCache()).Samples;
            return s;
        }
    }

    [SkippableTheory]
    [MemberData(nameof(DeviceRows))]
    public void NoReuseSetting_IsBitIdenticalToNone(string kind, string model, string method)
    {
        var dev = TestDevices.Get(kind);
        var r = Run(dev, model, Get(method).NoReuse);
        Assert.Equal(Steps * (double)ShapeOf(model).Depth, r.BlocksComputed);   // every block every step
        Assert.Empty(r.ReusedStepsPerBatch[0]);
        Assert.Equal(None(kind, dev, model), r.Samples);
    }

    [SkippableTheory]
    [MemberData(nameof(DeviceRows))]
    public void ReuseSetting_SkipsWhatItsRuleSays_AndWaitsOnlyForItsSignal(string kind, string model, string method)
    {
        var dev = TestDevices.Get(kind);
        var m = Get(method);
        var r = Run(dev, model, m.Reuse);
        Assert.Equal(m.Reused, r.ReusedStepsPerBatch[0]);
        int depth = ShapeOf(model).Depth;
        if (m.Partial) Assert.InRange(r.BlocksComputed, Steps * (double)depth - m.Reused.Length * depth + 1e-9, Steps * (double)depth - 1e-9);
        else Assert.Equal(Steps * (double)depth - m.Reused.Length * m.Skipped(depth), r.BlocksComputed);
        Assert.Equal(m.Waits, r.HostWaitsPerStep, 9);
        Assert.All(r.Samples, v => Assert.True(float.IsFinite(v)));
        if (m.Reused.Length > 0) Assert.NotEqual(None(kind, dev, model), r.Samples);   // reuse really changed the sample
    }

    /// <summary>A span policy whose samples take turns: step 0 every row computes blocks 0..1 and stores them; on step s ≥ 1
    /// sample s mod 2 computes (a gathered sub-batch: RunRows) and the other copies its stored feature, and the computing
    /// rows push their new value while the others keep theirs (a FeatureCombine with per-row weights). No signal is read.</summary>
    sealed class TakingTurns : ICachePolicy
    {
        FeatureStore? store;
        public string Describe() => "taking turns";
        public void Check(BlockStack stack, int steps) { }
        public void Begin(BlockStack stack, ComputeDevice device, int steps) => store = new FeatureStore(device, stack, "turns");
        public BlockPlan Plan(StepContext step) => BlockPlan.Of(new SpanPlan(store!, 0, 1, SpanValue.Feature,
            _ => step.Step == 0 ? SpanDecision.All(step.Cfg.ModelBatch) : new SpanDecision(step.Cfg.Rows([step.Step % 2]))));
        public long MemoryBytes => store?.Bytes ?? 0;
        public void Dispose() => store?.Dispose();
    }

    /// <summary>Samples that decide differently need their row list and per-row combine weights on the device every step:
    /// both are queued through the device's page-locked staging ring, so such a step waits for the device no more than a
    /// step where every row decides alike (docs/caching.md, "Host waits").</summary>
    [SkippableTheory]
    [MemberData(nameof(ModelRows))]
    public void MixedDecisions_QueueTheirUploads_AndWaitForNothing(string kind, string model)
    {
        var dev = TestDevices.Get(kind);
        string combine = dev.IsHost ? "feature_combine_host" : "feature_combine";
        long combines = dev.Kernels.LaunchesOf(combine);
        var r = Run(dev, model, _ => new TakingTurns(), samples: 2);
        Assert.True(dev.Kernels.LaunchesOf(combine) - combines >= Steps - 1);    // the per-row weights went up every mixed step
        Assert.Equal(0, r.HostWaitsPerStep);
        Assert.Equal(Steps * ShapeOf(model).Depth - (Steps - 1) / 2.0, r.BlocksComputed, 9);   // block 0 skipped by one of two samples
        Assert.All(r.Samples, v => Assert.True(float.IsFinite(v)));
    }

    [Theory]
    [MemberData(nameof(ShapeRows))]
    public void SettingThatCannotApply_IsRefusedWithoutADevice(string model, string method)
    {
        var m = Get(method);
        var shape = ShapeOf(model);
        var stack = PlanRunner.Stack(shape, new CfgLayout(1, true));
        using var bad = m.Impossible!(shape);
        Assert.ThrowsAny<InputException>(() => bad.Check(stack, Steps));
        if (!Applies(model, method)) return;
        using var good = m.Reuse(shape);
        good.Check(stack, Steps);                                            // the reuse setting fits
    }

    [Theory]
    [InlineData("pixart", "dit", "a class-conditioned policy (10 classes), the model is conditioned on captions of width 32")]
    [InlineData("stdit", "pixart", "reads image samples of 4×8×8, the model makes video samples of 4×3×8×8")]
    [InlineData("dit", "pixart", "a caption-conditioned policy (captions of width 32), the model is conditioned on 10 classes")]
    public void Ada_PolicyOfAnotherModelKind_IsRefusedWithoutADevice(string model, string policyFor, string message)
    {
        var shape = ShapeOf(model);
        using var ada = Get("ada").Reuse(ShapeOf(policyFor));
        var e = Assert.ThrowsAny<InputException>(() => ada.Check(PlanRunner.Stack(shape, new CfgLayout(1, true)), Steps));
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    public static IEnumerable<object[]> ModelRows => from kind in new[] { "cpu", "cuda" } from model in Models select new object[] { kind, model };

    /// <summary>The model behind the seam, ready for two rows (PixArt-α: the fixture's prompt as the caption of both).</summary>
    static (IBlockModel Model, int[] Y) Open(ComputeDevice dev, string model)
    {
        if (model == "dit")
        {
            var src = ModelLoader.OpenSource(CliRunner.Fixture("dit_p2.weights.safetensors"));
            try { return (ModelLoader.Create(dev, src, ModelLoader.DetectConfig(src, null)), [1, 2]); }
            finally { (src as IDisposable)?.Dispose(); }
        }
        if (model == "stdit")
        {
            var v = STDiT.Load(dev, CliRunner.Fixture("stdit_tiny"));
            var vc = PromptEmbeds.Load(VideoTraj, null, v.VideoConfig.CaptionChannels).Prompts;
            v.SetCaptions(vc.Embeds, vc.Mask, vc.Count, vc.Tokens);
            return (v, [0, 0]);
        }
        var p = PixArt.Load(dev, CliRunner.Fixture("pixart_tiny"));
        var c = PromptEmbeds.Load(Traj, null, p.PixArtConfig.CaptionChannels).Prompts;
        p.SetCaptions(c.Embeds, c.Mask, c.Count, c.Tokens);
        return (p, [0, 0]);
    }

    [SkippableTheory]
    [MemberData(nameof(ModelRows))]
    public void SeamParts_StoringOutputsAndSubBatches_GiveTheBitsOfThePlainForward(string kind, string model)
    {
        var dev = TestDevices.Get(kind);
        var (m, y) = Open(dev, model);
        using var _ = m as IDisposable;
        var s = m.Shape;
        int n = 2, len = (int)(n * s.SampleLength);
        using var x = Tensor.FromHost(dev, "x", Tolerance.Random(7, len), s.Batch(n));
        float[] t = [600f, 600f];
        var runner = new PlanRunner(m);
        runner.Begin(n);
        using var full = Tensor.Allocate(dev, "full", s.Output(n));
        using var got = Tensor.Allocate(dev, "got", s.Output(n));
        runner.Run(BlockPlan.Full, 0, x, t, y, full);
        var want = full.ToHost();

        // FORA's refresh step: every block writes its branch outputs into the sink, the step keeps the plain bits
        using var fora = new ForaPolicy(new ForaConfig(2));
        fora.Begin(PlanRunner.Stack(s, new CfgLayout(n, false)), dev, 2);
        var store = fora.Plan(new StepContext(0, 2, 600, x, [0, 0], new CfgLayout(n, false)));
        Assert.Equal(PlanKind.StoreOutputs, store.Kind);
        runner.Run(store, 0, x, t, y, got);
        Assert.Equal(want, got.ToHost());
        // the reuse step at the same t re-adds the stored outputs with the same gates: the same output again
        var reuse = fora.Plan(new StepContext(1, 2, 600, x, [0, 0], new CfgLayout(n, false)));
        Assert.Equal(PlanKind.ReuseOutputs, reuse.Kind);
        runner.Run(reuse, 1, x, t, y, got);
        Assert.Equal(want, got.ToHost());

        // a sub-batch of one row through every block: that row's bits of the whole batch, the other row untouched
        var tokens = m.Embed(x, t, y)!;
        using var h = Tensor.FromHost(dev, "h", Enumerable.Repeat(5f, n * s.RowLength).ToArray(), n, s.Tokens, s.Hidden);
        var whole = m.RunBlocks(0, s.Depth, tokens).ToHost();
        m.Embed(x, t, y);
        m.RunRows(0, s.Depth, tokens, [1], h);
        var rows = h.ToHost();
        int row = s.RowLength;
        Assert.Equal(whole[row..], rows[row..]);
        Assert.All(rows[..row], v => Assert.Equal(5f, v));
    }
}
