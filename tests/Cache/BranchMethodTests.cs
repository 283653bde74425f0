// The per-branch methods (PAB, ToCa; AdaCache rides the span plan) and the seam parts they use, on the DiT (dit_p2),
// PixArt-α (pixart_tiny) and STDiT (stdit_tiny):
//   - BlockOutputs with one branch kind reused and the others stored, at the step that stored them: the plain forward's
//     bits (a reused branch adds the value it would recompute);
//   - a Tokens branch recomputes exactly its subset's tokens of the stored output (the values a full store at that step
//     writes there) and leaves every other token's stored value untouched;
//   - the rules as specified, from the policies' plans alone (no model): PAB's broadcast steps per branch kind, its pyramid
//     and step mapping and MLP broadcast; ToCa's fresh steps, its per-layer token counts and the staleness rotation with
//     the spatial bonus; AdaCache's codebook mapped to the run;
//   - the CLI refuses a PAB setting that names only branches the model lacks, with one line, exit 2.
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler;
using BlockDance.Sampling;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;
using ILGPU.Runtime;
using Xunit;

namespace BlockDance.Tests;

public class BranchMethodTests
{
    public static IEnumerable<object[]> ModelRows =>
        from kind in new[] { "cpu", "cuda" } from model in new[] { "dit", "pixart", "stdit" } select new object[] { kind, model };

    /// <summary>The model for two rows (the caption models: the fixtures' captions), and the labels of the rows.</summary>
    static (IBlockModel Model, int[] Y) Open(ComputeDevice dev, string model)
    {
        switch (model)
        {
            case "dit":
                var src = ModelLoader.OpenSource(CliRunner.Fixture("dit_p2.weights.safetensors"));
                try { return (ModelLoader.Create(dev, src, ModelLoader.DetectConfig(src, null)), [1, 2]); }
                finally { (src as IDisposable)?.Dispose(); }
            case "pixart":
                var p = PixArt.Load(dev, CliRunner.Fixture("pixart_tiny"));
                var c = PromptEmbeds.Load(CliRunner.Fixture("pixart_traj.safetensors"), null, p.PixArtConfig.CaptionChannels).Prompts;
                p.SetCaptions(c.Embeds, c.Mask, c.Count, c.Tokens);
                return (p, [0, 0]);
            default:
                var s = STDiT.Load(dev, CliRunner.Fixture("stdit_tiny"));
                using (var r = SafeTensorsFile.Open(CliRunner.Fixture("stdit_tiny.ref.safetensors")))
                    s.SetCaptions(r.ReadFloat32("y"), r.ReadFloat32("mask"), 2, (int)r.Get("y").Shape[1]);
                return (s, [0, 1]);
        }
    }

    static Tensor Input(ComputeDevice dev, BlockShape s, int n) =>
        Tensor.FromHost(dev, "x", Tolerance.Random(7, n * s.SampleLength), s.Batch(n));

    [SkippableTheory]
    [MemberData(nameof(ModelRows))]
    public void PerBranchReuseAndTokenSubsets_GiveWhatTheBranchesWouldCompute(string kind, string model)
    {
        var dev = TestDevices.Get(kind);
        var (m, y) = Open(dev, model);
        using var _ = m as IDisposable;
        var s = m.Shape;
        int n = 2, last = s.Depth - 1;
        using var x = Input(dev, s, n);
        float[] ta = [600f, 600f], tb = [450f, 450f];
        var plain = m.RunBlocks(0, s.Depth, m.Embed(x, ta, y)!).ToHost();
        var slots = new Dictionary<string, Tensor>();
        Tensor Slot(int b, string part) =>
            slots.TryGetValue($"{part}{b}", out var t) ? t : slots[$"{part}{b}"] = Tensor.Allocate(dev, part, n, s.Tokens, s.Hidden);
        try
        {
            Assert.Equal(plain, m.RunBlocks(0, s.Depth, m.Embed(x, ta, y)!, null, new BlockOutputs(Slot, (_, _) => BranchUse.Store)).ToHost());
            Assert.Equal(s.Depth * s.Parts.Length, slots.Count);
            foreach (var part in s.Parts)                                                    // one kind reused, the rest recomputed
                Assert.Equal(plain, m.RunBlocks(0, s.Depth, m.Embed(x, ta, y)!, null,
                    new BlockOutputs(Slot, (_, p) => p == part ? BranchUse.Reuse : BranchUse.Store)).ToHost());

            foreach (var part in s.Parts.Where(p => p is "cross" or "mlp"))
            {
                m.RunBlocks(0, s.Depth, m.Embed(x, ta, y)!, null, new BlockOutputs(Slot, (_, _) => BranchUse.Store));
                var stale = Slot(last, part).ToHost();                                        // the branch at t = 600
                var fresh = new Dictionary<string, Tensor>();
                Tensor Fresh(int b, string p) =>
                    fresh.TryGetValue($"{p}{b}", out var t) ? t : fresh[$"{p}{b}"] = Tensor.Allocate(dev, p, n, s.Tokens, s.Hidden);
                m.RunBlocks(0, s.Depth, m.Embed(x, tb, y)!, null, new BlockOutputs(Fresh, (_, _) => BranchUse.Store));
                var want = Fresh(last, part).ToHost();                                        // the branch at t = 450
                int[][] subset = [[0, 2, 5], [s.Tokens - 1, 1, 3]];
                var rows = subset.SelectMany((r, i) => r.Select(j => i * s.Tokens + j)).ToArray();
                using var idx = dev.Accelerator.Allocate1D<int>(rows.Length);
                dev.Upload(idx.View, rows);
                m.RunBlocks(0, s.Depth, m.Embed(x, tb, y)!, null, new BlockOutputs(Slot,
                    (b, p) => b == last && p == part ? BranchUse.Tokens : BranchUse.Store, (_, _) => new TokenSubset(idx.View, 3)));
                var got = Slot(last, part).ToHost();
                for (int r = 0; r < n; r++)
                    for (int j = 0; j < s.Tokens; j++)
                    {
                        long at = ((long)r * s.Tokens + j) * s.Hidden;
                        var g = got.AsSpan((int)at, s.Hidden).ToArray();
                        if (subset[r].Contains(j))
                            Tolerance.AssertClose(want.AsSpan((int)at, s.Hidden).ToArray(), g, 1e-5, 1e-5, $"{model} {part} token {j} of row {r}");
                        else Assert.Equal(stale.AsSpan((int)at, s.Hidden).ToArray(), g);
                    }
                Assert.NotEqual(stale, want);                                                  // the step changed the branch
                foreach (var t in fresh.Values) t.Dispose();
            }
        }
        finally { foreach (var t in slots.Values) t.Dispose(); }
    }

    static BlockStack Stack(int depth, int tokens, string[] parts, int frames = 0) =>
        new(depth, tokens, 8, new CfgLayout(1, true), 4, 8, 1, frames, parts);

    static StepContext Step(int i, int steps, int t) => new(i, steps, t, null!, [0], new CfgLayout(1, true));

    /// <summary>The actions of every block and branch of a BranchPlan step (Full: every branch computed, nothing stored).</summary>
    static Dictionary<string, BranchAction>? Actions(BlockPlan plan, BlockStack stack) => plan.Kind == PlanKind.Full ? null
        : Enumerable.Range(0, stack.Depth).SelectMany(b => stack.Parts.Select(p => (K: $"{p}{b}", V: plan.Branches!.Use(b, p)))).ToDictionary(e => e.K, e => e.V);

    [Fact]
    public void Pab_BroadcastsEachKindOverItsRangeInsideTheWindow_ThePyramidMappedToTheSteps()
    {
        var dev = TestDevices.Get("cpu");
        var stack = Stack(3, 16, ["attn", "temporal", "cross", "mlp"], frames: 4);
        const int steps = 60;                                             // ranges 2/4/6 at 30 steps → 4/8/12
        int T(int i) => 999 - i * 1000 / steps;                          // 999, 983, …
        using var pab = new PabPolicy(new PabConfig(Mlp: true));
        pab.Begin(stack, dev, steps);
        Assert.Equal(4, new PabConfig().Range("attn", steps));
        Assert.Equal(8, new PabConfig().Range("temporal", steps));
        Assert.Equal(12, new PabConfig().Range("cross", steps));
        Assert.Equal(6, new PabConfig(ScaleRanges: false).Range("cross", steps));
        var mlpNear = PabConfig.MlpTimesteps.Select(tau => Enumerable.Range(0, steps).MinBy(i => Math.Abs(T(i) - tau))).ToArray();
        var plans = Enumerable.Range(0, steps).Select(i => Actions(pab.Plan(Step(i, steps, T(i))), stack)!).ToArray();
        for (int i = 0; i < steps; i++)
        {
            var a = plans[i];
            bool inside = T(i) > 450 && T(i) < 930;
            foreach (var (kind, range) in new[] { ("attn", 4), ("temporal", 8), ("cross", 12) })
                for (int b = 0; b < 3; b++)
                {
                    var want = inside && i % range != 0 ? BranchAction.Reuse
                             : i + 1 < steps && (i + 1) % range != 0 && T(i) > 450 ? BranchAction.Store : BranchAction.Compute;
                    Assert.Equal(want, a[$"{kind}{b}"]);
                    if (want == BranchAction.Reuse)                       // what it reuses was stored by the last step that computed
                        Assert.Equal(BranchAction.Store, plans[..i].Last(p => p[$"{kind}{b}"] != BranchAction.Reuse)[$"{kind}{b}"]);
                }
            bool mlp = mlpNear.Any(k => i > k && i <= k + 2);              // the two steps after the step nearest each τ
            for (int b = 0; b < 3; b++) Assert.Equal(mlp ? BranchAction.Reuse : BranchAction.Store, a[$"mlp{b}"]);   // blocks 0–4 ⊇ all 3
        }
        Assert.Contains(plans, p => p["cross0"] == BranchAction.Reuse);
    }

    [Fact]
    public void Pab_ABroadcastOnlyOnBranchesTheModelLacks_IsRefused_AbsentBranchesAreSimplyAbsent()
    {
        var dit = Stack(2, 16, ["attn", "mlp"]);
        using var only = new PabPolicy(new PabConfig(Spatial: 0));        // temporal and cross only: neither on the DiT
        var e = Assert.Throws<CacheException>(() => only.Check(dit, 8));
        Assert.Contains("temporal, cross", e.Message);
        Assert.Throws<CacheException>(() => new PabPolicy(new PabConfig(0, 0, 0)).Check(dit, 8));
        new PabPolicy(new PabConfig()).Check(dit, 8);                    // the defaults: the spatial broadcast applies
        var dev = TestDevices.Get("cpu");
        using var pab = new PabPolicy(new PabConfig(Spatial: 2, ScaleRanges: false, From: 0, To: 1000));   // absent kinds: no key
        pab.Begin(dit, dev, 8);
        var a = Actions(pab.Plan(Step(1, 8, 800)), dit)!;
        Assert.Equal(["attn0", "mlp0", "attn1", "mlp1"], a.Keys.ToArray());
        Assert.Equal(BranchAction.Reuse, a["attn0"]);
        Assert.Equal(BranchAction.Compute, a["mlp1"]);                  // no MLP broadcast: the plain branch
    }

    [Fact]
    public void ToCa_FreshEveryN_BetweenReusesAttention_RecomputesTheScheduledTokenCounts_InAStalenessRotation()
    {
        var dev = TestDevices.Get("cpu");
        var stack = Stack(4, 64, ["attn", "cross", "mlp"]);              // an 8×8 token grid: s4 applies
        var cfg = new ToCaConfig(N: 3, Ratio: 0.1);
        using var toca = new ToCaPolicy(cfg);
        toca.Begin(stack, dev, 12);
        Assert.Contains("s4 2×2", toca.Describe());
        var first = new HashSet<int>();
        int sinceFresh = 0;
        for (int i = 0; i < 12; i++)
        {
            var plan = toca.Plan(Step(i, 12, 999 - 80 * i));
            var a = Actions(plan, stack)!;
            if (i % 3 == 0)
            {
                Assert.All(a.Values, v => Assert.Equal(BranchAction.Store, v));
                first.Clear();
                sinceFresh = 0;
                continue;
            }
            sinceFresh++;
            for (int b = 0; b < 4; b++)
            {
                Assert.Equal(BranchAction.Reuse, a[$"attn{b}"]);
                int k = cfg.FreshTokens("mlp", i, 12, b, 4, 64);
                double f = (1 + 0.4 - 2 * 0.4 * i / 12) * (1 + 0.8 - 2 * 0.8 * b / 3) * 2.5;
                Assert.Equal((int)Math.Floor(0.1 * f * 64), k);
                Assert.Equal(k == 0 ? BranchAction.Reuse : BranchAction.Tokens, a[$"mlp{b}"]);
                if (k == 0) continue;
                var rows = plan.Branches!.Tokens!(b, "mlp");
                Assert.Equal(k, rows.PerRow);
                var dev2 = new int[rows.Rows.Length];                      // both CFG rows, the same tokens
                rows.Rows.CopyToCPU(dev2);
                var sub = toca.Subset(i, b, "mlp")!;
                Assert.Equal([.. sub, .. sub.Select(j => 64 + j)], dev2);
                Assert.Equal(k, sub.Distinct().Count());
                if (b == 0 && sinceFresh == 1) first.UnionWith(sub[..k]);
                if (b == 0 && sinceFresh == 2)
                {
                    // staleness ranks the tokens the first partial step left first: the second takes all of them (or only them)
                    var rest = Enumerable.Range(0, 64).Except(first).ToHashSet();
                    if (k >= rest.Count) Assert.Superset(rest, sub[..k].ToHashSet());
                    else Assert.Subset(rest, sub[..k].ToHashSet());
                }
            }
        }
        // s4 with equal staleness: one token per 2×2 cell first (the cell's first), so the first partial step spreads out
        using var spread = new ToCaPolicy(new ToCaConfig(N: 4, Ratio: 0.1, Schedule: false));
        spread.Begin(stack, dev, 8);
        spread.Plan(Step(0, 8, 999));
        spread.Plan(Step(1, 8, 900));                                     // tokens 0..5 refreshed, the others stale by 1
        var picks = spread.Subset(2, 0, "mlp")!;
        Assert.Equal(6, picks.Length);
        Assert.Equal(6, picks.Select(j => (j / 8 / 2) * 4 + j % 8 / 2).Distinct().Count());   // six different cells
    }

    [Fact]
    public void AdaCache_CodebookMapsTheChangePerStepToAnIntervalOfThisRun()
    {
        var c = new AdaCacheConfig();
        Assert.Equal(12, c.Interval(0.01, 100));
        Assert.Equal(10, c.Interval(0.04, 100));
        Assert.Equal(3, c.Interval(5, 100));                              // above every threshold: the last interval
        Assert.Equal(6, c.Interval(0.01, 50));                            // 12 · 50/100
        Assert.Equal(2, c.Interval(0.5, 50));                             // 3 · 0.5 = 1.5 → 2
        Assert.Equal(1, c.Interval(0.5, 10));
        Assert.Equal(0.02, AdaCacheConfig.PerStep(0.08, 2, 50), 12);      // gap 2 of 50 = 4 steps of 100
        Assert.Equal(8, (c with { Scale = 2 }).Interval(0.12, 100));      // thresholds doubled: 0.12 < 0.14
        Assert.ThrowsAny<InputException>(() => new AdaCacheConfig([0.05, 0.03], [1, 2]).Validate());
    }

    [Fact]
    public void Cli_PabOnlyOnAbsentBranches_IsRefusedWithOneLine()
    {
        var dir = CliRunner.TempDir();
        var (code, _, err) = CliRunner.Run("sample", "--model", CliRunner.Fixture("dit_p2.weights.safetensors"), "--device", "cpu", "--steps", "4",
            "--cache", "pab:spatial=0:temporal=4:cross=6", "--out", Path.Combine(dir, "x.png"));
        Assert.Equal(2, code);
        Assert.Single(err.Trim().Split('\n'));
        Assert.Contains("pab", err);
        Assert.False(File.Exists(Path.Combine(dir, "x.png")));
        (code, _, err) = CliRunner.Run("sample", "--model", CliRunner.Fixture("dit_p2.weights.safetensors"), "--device", "cpu", "--steps", "4",
            "--cache", "toca:n=0", "--out", Path.Combine(dir, "x.png"));
        Assert.Equal(2, code);
        Assert.Single(err.Trim().Split('\n'));
    }
}
