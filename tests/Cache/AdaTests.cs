// BlockDance-Ada: the decision network on the device vs the host reference, thresholding, the plans of a
// mixed batch (cache samples + their CFG duplicates), per-sample decisions equal to running each sample
// alone, all-cache bit identity with no cache, the hand-written REINFORCE gradient vs finite differences,
// and the CLI (missing policy → exit 2; train-ada writes a policy that `sample --cache ada` runs).
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler;
using BlockDance.Sampler.Ada;
using BlockDance.Sampler.SelfTest;
using BlockDance.Transformer;
using ILGPU.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class AdaTests(ITestOutputHelper output)
{

    internal static AdaWeights RandomWeights(AdaPolicyInfo info, int seed)
    {
        var w = AdaWeights.Init(info, seed);
        var r = new Random(seed + 1);
        for (int i = 0; i < w.Fc2B.Length; i++) w.Fc2B[i] = (float)(r.NextDouble() - 0.5);   // non-zero output biases
        return w;
    }

    [Fact]
    public void Threshold_CachesWhereMIsAtLeastHalf()
    {
        Assert.Equal([false, true, true, false], AdaWeights.Threshold([-1f, 0f, 2f, -1e-4f]));
        Assert.Equal(0.5, AdaWeights.Sigmoid(0));
        Assert.True(AdaWeights.Sigmoid(-800) >= 0 && AdaWeights.Sigmoid(800) <= 1);   // no overflow
        Assert.Equal(20, AdaPolicyInfo.DefaultRho(50));
        Assert.Equal(2, AdaPolicyInfo.DefaultRho(6));
    }

    /// <summary>A network whose decisions depend only on the class: hidden unit j = onehot_j, so the logits of a
    /// class-c sample are fc2.W[:, c]: +5 (cache) or −5 (reuse) per the table cache[c][t].</summary>
    internal static AdaWeights ClassTable(DiTConfig cfg, int steps, int rho, bool[][] cache)
    {
        var info = new AdaPolicyInfo(steps, rho, cfg.InChannels, cfg.InputSize, cfg.InputSize, cfg.NumClasses, cfg.NumClasses, 0, 2);
        var w = new AdaWeights(info, new float[info.Hidden * info.InputDim], new float[info.Hidden],
            new float[info.Decisions * info.Hidden], new float[info.Decisions]);
        for (int c = 0; c < cfg.NumClasses; c++)
        {
            w.Fc1W[c * info.InputDim + info.Pixels + c] = 1f;
            for (int t = 0; t < info.Decisions; t++) w.Fc2W[t * info.Hidden + c] = cache[c][t] ? 5f : -5f;
        }
        return w;
    }

    // 6 steps, ρ = 2: decisions for steps 2..5. Class 0 caches at steps 2, 4; class 1 at 2, 3; class 2 at 2.
    internal static readonly bool[][] Table =
    [
        [true, false, true, false], [true, true, false, false], [true, false, false, false],
        [true, true, true, true], [true, true, true, true],
    ];

    [Fact]
    public void Reinforce_Gradient_MatchesFiniteDifferencesOfLogProb()
    {
        var info = new AdaPolicyInfo(Steps: 8, Rho: 3, Channels: 1, Height: 3, Width: 3, Classes: 3, Hidden: 6, Boundary: 0, Lambda: 2);
        var w = RandomWeights(info, 7);
        var v = w.Input(Tolerance.Random(8, 9, 2f), 0, 2);
        bool[] u = [true, false, false, true, true];
        const double scale = 0.7;
        var g = new AdaGradient(info);
        AdaReinforce.Accumulate(w, v, u, scale, g);
        int checkedCount = 0;
        foreach (var (param, grad) in new[] { (w.Fc1W, g.Fc1W), (w.Fc1B, g.Fc1B), (w.Fc2W, g.Fc2W), (w.Fc2B, g.Fc2B) })
            for (int i = 0; i < param.Length; i++)
            {
                float p0 = param[i];
                // the steps actually taken in float32, so the quotient uses the exact parameter change
                float up = p0 + 1e-3f, down = p0 - 1e-3f;
                param[i] = up; double fUp = AdaReinforce.LogProb(w, v, u);
                param[i] = down; double fDown = AdaReinforce.LogProb(w, v, u);
                param[i] = p0;
                double numeric = scale * (fUp - fDown) / ((double)up - down);
                Assert.True(Math.Abs(numeric - grad[i]) <= 1e-5 + 1e-3 * Math.Abs(numeric),
                    $"parameter {i} of {param.Length}: analytic {grad[i]:G6}, finite difference {numeric:G6}");
                checkedCount++;
            }
        Assert.Equal(w.ParameterCount, checkedCount);
        Assert.Contains(g.Fc1W, x => x != 0);   // some ReLU units are on: the fc1 path is exercised
    }

    [Fact]
    public void Advantages_LeaveOneOutBaseline_Normalised()
    {
        var a = AdaReinforce.Advantages([1.0, 2.0, 3.0]);
        double std = Math.Sqrt(2 / 3.0);
        Assert.Equal((1 - 2.5) / std, a[0], 12);
        Assert.Equal((3 - 1.5) / std, a[2], 12);
        Assert.Equal([0.0, 0.0], AdaReinforce.Advantages([2.0, 2.0]));   // no contrast: no update
    }

    [Fact]
    public void CacheAda_MissingPolicyFile_Exits2()
    {
        var dir = CliRunner.TempDir();
        var m = CliRunner.Fixture("dit_p4.weights.safetensors");
        var (code, _, err) = CliRunner.Run("sample", "--model", m, "--device", "cpu", "--steps", "4", "--cache", "ada",
            "--policy", Path.Combine(dir, "missing.safetensors"), "--out", Path.Combine(dir, "x.png"));
        Assert.Equal(2, code);
        Assert.Contains("file not found", err);
        Assert.False(File.Exists(Path.Combine(dir, "x.png")));
        Assert.Equal(2, CliRunner.Run("sample", "--model", m, "--device", "cpu", "--policy", "p.safetensors", "--out", Path.Combine(dir, "y.png")).Code);
    }

    [Fact]
    public void TrainAda_WritesAPolicy_ThatSampleCacheAdaRuns()
    {
        var dir = CliRunner.TempDir();
        var m = CliRunner.Fixture("dit_p4.weights.safetensors");
        var policy = Path.Combine(dir, "ada.safetensors");
        var (code, stdout, err) = CliRunner.Run("train-ada", "--model", m, "--device", "cpu", "--steps", "5", "--samples", "2",
            "--batch", "2", "--epochs", "2", "--hidden", "8", "--out", policy);
        output.WriteLine(stdout + err);
        Assert.True(code == 0, err);
        Assert.Contains("epoch   2/2", stdout);
        var w = AdaWeightsFile.Load(policy);
        Assert.Equal((5, 2, 3, 8, 0), (w.Info.Steps, w.Info.Rho, w.Info.Decisions, w.Info.Hidden, w.Info.Boundary));
        Assert.Equal("ssim_vs_uncached", w.Metadata["quality"]);
        Assert.Equal("2", w.Metadata["train_epochs"]);

        var (code2, stdout2, err2) = CliRunner.Run("sample", "--model", m, "--device", "cpu", "--steps", "5", "--class", "0,1",
            "--cache", "ada", "--policy", policy, "--out", Path.Combine(dir, "x.png"));
        output.WriteLine(stdout2 + err2);
        Assert.True(code2 == 0, err2);
        Assert.Contains("ada b=0 rho=2/5", stdout2);
        // a policy for 5 steps refuses a 6-step run
        Assert.Equal(2, CliRunner.Run("sample", "--model", m, "--device", "cpu", "--steps", "6", "--cache", "ada", "--policy", policy,
            "--out", Path.Combine(dir, "y.png")).Code);
    }

    [Fact]
    public void Eval_AdaRow_AndParetoPlot()
    {
        var dir = CliRunner.TempDir();
        var m = CliRunner.Fixture("dit_p4.weights.safetensors");
        DiTConfig cfg;
        using (var src = (IDisposable)ModelLoader.OpenSource(m)) cfg = ModelLoader.DetectConfig((IWeightSource)src);
        var policy = Path.Combine(dir, "ada.safetensors");
        ClassTable(cfg, 6, 2, Table).Save(policy);
        var plot = Path.Combine(dir, "pareto.png");
        var (code, stdout, err) = CliRunner.Run("eval", "--model", m, "--device", "cpu", "--per-class", "1", "--steps", "6",
            "--cache", "ada,bd2", "--policy", policy, "--plot", plot);
        output.WriteLine(stdout + err);
        Assert.True(code == 0, err);
        // classes 0..4 once each: reuse steps 2 + 2 + 3 + 0 + 0 of 4 per sample → 35% of steps ≥ rho
        // the Pareto mark ★ follows the wall clock (timing), so the row is matched with or without it
        Assert.Matches(@"\| ada( ★)? \| b=0, rho=2, 35% of steps ≥ rho reused, policy net ", stdout);
        Assert.Contains("Inference overhead: the decision network takes ", stdout);
        Assert.Contains("1.4 of 12 (11.7%)", stdout);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(plot)[..4]);
        Assert.Contains("<svg", File.ReadAllText(Path.ChangeExtension(plot, ".svg")));   // the SVG twin
        Assert.True(File.Exists(Path.Combine(dir, "pareto_flops.png")));                    // the FLOP-axis figure
        Assert.Equal(["none", "ada", "bd2"], Sampler.Commands.EvalCommand.ParsePolicies("ada,bd2").Select(p => p.Name));
        Assert.Equal(2, CliRunner.Run("eval", "--model", m, "--device", "cpu", "--cache", "bd2", "--policy", policy).Code);
        Assert.Equal(2, CliRunner.Run("eval", "--model", m, "--device", "cpu", "--plot", Path.Combine(dir, "p.jpg")).Code);
    }

    [Fact]
    public void ParetoPlot_NiceRange_CoversTheDataWithRoundTicks()
    {
        var (min, max, step) = ParetoPlot.NiceRange(0.913, 0.996, 1);
        Assert.True(min <= 0.913 && max >= 0.996 && max <= 1);
        Assert.Equal(0.02, step, 12);
        var (min2, max2, step2) = ParetoPlot.NiceRange(410, 980, null);
        Assert.Equal((200.0, 1200.0, 200.0), (min2, max2, step2));   // 410..980 padded by 8% → 364..1026
    }

    [Fact]
    public void ParetoPlot_Frontier_KeepsOnlyUndominatedPolicies_AndRendersPng()
    {
        ParetoPoint[] pts = [new("none", "", 0.9, 1, 1, double.PositiveInfinity), new("bd", "N=2", 0.7, 0.8, 0.98, 31.5), new("bd", "N=3", 0.65, 0.7, 0.97, 29),
                             new("ada", "", 0.8, 0.6, 0.96, 27)];   // ada: slower and worse than bd N=2 → off the latency frontier
        var latency = ParetoPlot.X(ParetoAxis.Latency);
        Assert.Equal(["bd N=3", "bd N=2", "none"], ParetoPlot.Frontier(pts, latency, p => p.Ssim).Select(p => p.Label));
        Assert.Equal(["bd N=3", "bd N=2", "none"], ParetoPlot.Frontier(pts, latency, p => p.Psnr).Select(p => p.Label));
        // on the FLOP axis ada computes least: it leads the frontier
        Assert.Equal(["ada", "bd N=3", "bd N=2", "none"], ParetoPlot.Frontier(pts, ParetoPlot.X(ParetoAxis.Flops), p => p.Psnr).Select(p => p.Label));
        foreach (var axis in new[] { ParetoAxis.Latency, ParetoAxis.Flops })
        {
            using var bmp = SkiaSharp.SKBitmap.Decode(ParetoPlot.RenderPng(pts, "test", axis));
            Assert.True(bmp.Width > 1000 && bmp.Height > 400);
        }
    }
}

/// <summary>The Ada paths that need a device: the decision network, the plans of mixed batches, refresh sampling.</summary>
public abstract class AdaDeviceTests(string kind, ITestOutputHelper output) : DeviceTest(kind)
{
    static DiT P4(ComputeDevice dev) => FixtureChecks.LoadModel(dev, CliRunner.Fixtures, "dit_p4");   // 3×16×16, 5 classes, depth 2 → b = 0

    [SkippableTheory]
    [InlineData(1, 3)]
    [InlineData(2, 16)]
    public void DecisionNetwork_DeviceForward_MatchesHostReference(int seed, int n)
    {
        var dev = Device;
        var info = new AdaPolicyInfo(Steps: 50, Rho: 20, Channels: 1, Height: 14, Width: 14, Classes: 10, Hidden: 128, Boundary: 3, Lambda: 2);
        var w = AdaTests.RandomWeights(info, seed);
        Assert.Equal(206 * 128 + 128 + 128 * 30 + 30, w.ParameterCount);
        var x = Tolerance.Random(seed, n * info.Pixels, 2f);
        var labels = Enumerable.Range(0, n).Select(i => (i * 7 + seed) % 10).ToArray();
        using var net = new AdaDecisionNetwork(dev, w);
        using var xt = Tensor.FromHost(dev, "x", x, n, 1, 14, 14);
        var got = net.Forward(xt, labels).Steps;
        var want = new float[n * info.Decisions];
        for (int i = 0; i < n; i++)
        {
            var (_, z) = w.Forward(w.Input(x, i, labels[i]));
            for (int t = 0; t < z.Length; t++) want[i * info.Decisions + t] = (float)z[t];
        }
        // float32 GEMM (206-long dot products) vs the double host reference
        Tolerance.AssertClose(want, got, 1e-4, 1e-4, "ada logits", output);
    }

    [SkippableFact]
    public void OneHotConcat_MatchesReference()
    {
        var dev = Device;
        int n = 3, p = 5, k = 4;
        var x = Tolerance.Random(3, n * p);
        int[] y = [2, 0, 3];
        var want = new float[n * (p + k)];
        OneHotConcat.Reference(x, y, want, p, k);
        Assert.Equal([.. x[..5], 0f, 0f, 1f, 0f], want[..9]);
        using var xt = Tensor.FromHost(dev, "x", x, n, p);
        using var o = Tensor.Allocate(dev, "o", n, p + k);
        using var yb = dev.Accelerator.Allocate1D<int>(y.Length);
        yb.View.CopyFromCPU(y);
        OneHotConcat.Run(dev, xt.View, yb.View, o.View, n, p, k);
        Assert.Equal(want, o.ToHost());
    }

    [SkippableFact]
    public void MixedBatch_PlanListsTheCacheSamplesAndTheirUncondDuplicates()
    {
        var dev = Device;
        using var model = P4(dev);
        var cfg = model.Config;
        using var policy = new AdaPolicy(AdaTests.ClassTable(cfg, 6, 2, AdaTests.Table));
        int b = 3;
        policy.Begin(PlanRunner.Stack(model.Shape, new CfgLayout(b, true)), dev, 6);   // CFG: rows 0..2 cond, 3..5 the uncond duplicates
        using var x = Tensor.FromHost(dev, "x", Tolerance.Random(4, b * cfg.InChannels * 256), b, cfg.InChannels, 16, 16);
        var plans = new List<BlockPlan>();
        for (int step = 0; step < 6; step++)
            plans.Add(policy.Plan(new StepContext(step, 6, 0, x, [0, 1, 2], new CfgLayout(b, Guided: true))));
        for (int s = 0; s < 3; s++)   // steps 0, 1 (< ρ) and 2 (every sample caches): cache steps storing block 0
            Assert.Equal((PlanKind.Cache, 0, policy.Store), (plans[s].Kind, plans[s].Boundary, plans[s].Store));
        Assert.Equal(PlanKind.Refresh, plans[3].Kind);
        Assert.Equal([1, 4], plans[3].Rows!);                      // class 1 = sample 1 and its uncond row 1 + 3
        Assert.Equal([0, 3], plans[4].Rows!);                      // class 0 = sample 0 and row 3
        Assert.Equal(PlanKind.Reuse, plans[5].Kind);               // every sample reuses
        foreach (var p in plans[3..]) Assert.Equal((0, policy.Store), (p.Boundary, p.Store));
        Assert.Equal(7 / 12.0, policy.ReuseFraction!.Value, 12);   // (2 + 2 + 3 reuse steps) / (3 samples × 4)
    }

    [SkippableFact]
    public void MixedBatch_EachSampleEqualsSamplingItAlone()
    {
        var dev = Device;
        using var model = P4(dev);
        var w = AdaTests.ClassTable(model.Config, 6, 2, AdaTests.Table);
        SamplingResult Run(int batch) => SamplingSession.Run(model, new SamplingOptions
            { Classes = [0, 1, 2, 3], Steps = 6, Cfg = 4f, Seed = 9, Batch = batch, Policy = () => new AdaPolicy(w) });
        var together = Run(4);   // mixed batches: Refresh plans
        var alone = Run(1);      // every step uniform within its batch of one
        Assert.Equal(alone.Samples, together.Samples);
        Assert.Equal(alone.BlocksComputed, together.BlocksComputed, 9);
        // per sample: 6 steps × 2 blocks minus block 0 on its reuse steps (2 + 2 + 3 + 0 of 4 samples)
        Assert.Equal(12 - 7 / 4.0, together.BlocksComputed, 9);
    }

    [SkippableFact]
    public void AllCacheAda_IsBitIdenticalToNoCache()
    {
        var dev = Device;
        using var model = P4(dev);
        var cfg = model.Config;
        var info = new AdaPolicyInfo(6, 2, cfg.InChannels, 16, 16, cfg.NumClasses, 8, 0, 2);
        var w = AdaWeights.Init(info, 1);
        Array.Fill(w.Fc2B, 100f);       // m ≡ 1 whatever the input: every step a cache step
        Array.Clear(w.Fc2W);
        SamplingResult Run(Func<ICachePolicy> p) => SamplingSession.Run(model, new SamplingOptions
            { Classes = [1, 3, 4], Steps = 6, Cfg = 4f, Seed = 2, Policy = p });
        var none = Run(() => new NoCache());
        var ada = Run(() => new AdaPolicy(w));
        Assert.Equal(0, ada.BlocksSkipped);
        Assert.Equal(none.Samples, ada.Samples);
    }
}

public sealed class CpuAdaTests(ITestOutputHelper output) : AdaDeviceTests("cpu", output);
public sealed class CudaAdaTests(ITestOutputHelper output) : AdaDeviceTests("cuda", output);
