// The caching methods of src/Cache: each decision rule against a plain hand-computed schedule on synthetic
// signals (pure C#), the Taylor forecast and the calibration fit, and on the tiny fixture model: the
// no-reuse setting of every policy is bit-identical to no cache, skipped blocks are never launched,
// the per-sample policies give each sample of a batch what it gets alone, and FeatureCombine matches its reference.
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler;
using BlockDance.Sampler.SelfTest;
using BlockDance.Transformer;
using Xunit;

namespace BlockDance.Tests;

public class CachePolicyRuleTests
{
    static readonly double[] Identity = [0, 0, 0, 1, 0];   // p(d) = d

    [Fact]
    public void TeaCache_AccumulatesRescaledChange_ComputesWhenItReachesDelta()
    {
        var c = new TeaCacheConfig(0.25, Identity);
        double?[] change = [null, 0.1, 0.1, 0.1, 0.1, 0.3, 0.05, 0.05];
        bool[] edge = [true, false, false, false, false, false, false, true];
        // A: 0 | .1 reuse | .2 reuse | .3 ≥ .25 compute → 0 | .1 reuse | .4 compute → 0 | .05 reuse | last step computes
        bool[] expected = [true, false, false, true, false, true, false, true];
        double acc = 0;
        Assert.Equal(expected, change.Select((d, i) => c.Compute(ref acc, d, edge[i])).ToArray());
        Assert.Equal(2 * 0.5 * 0.5 + 0.1, CacheCalibration.Polynomial([0, 0, 2, 0, 0.1], 0.5), 12);
    }

    [Fact]
    public void FirstBlockCache_ReusesBelowThreshold()
    {
        var c = new FirstBlockCacheConfig(0.05);
        Assert.Equal(new[] { true, false, true, true }, new double?[] { null, 0.049, 0.05, 0.2 }.Select(c.Compute).ToArray());
    }

    [Fact]
    public void DbCache_WarmupAndMaxConsecutive_Guard()
    {
        var c = new DbCacheConfig(Fn: 1, Bn: 0, Threshold: 0.1, Warmup: 2, MaxConsecutive: 2, MaxCached: 3);
        int cons = 0, cached = 0;
        // every change below the threshold: steps 0, 1 warm-up; 2, 3 reuse; 4 computes (2 in a row); 5 reuses (3rd); 6+ compute (max cached)
        var got = Enumerable.Range(0, 8).Select(i => c.Compute(i, 0.01, ref cons, ref cached)).ToArray();
        Assert.Equal(new[] { true, true, false, false, true, false, true, true }, got);
        Assert.Throws<InvalidValueException>(() => new DbCacheConfig(Fn: 2, Bn: 1).Validate(3));
    }

    [Fact]
    public void MagCache_AccumulatedRatioError_AndSkipCap()
    {
        var ratios = Enumerable.Repeat(0.98, 10).ToArray();
        // after a compute: E = .02 (reuse), .02 + (1 − .9604) = .0596 (reuse), + (1 − .941192) > .06 → compute; K = 3 never binds
        var reuse = new MagCacheConfig(ratios, Threshold: 0.06, MaxConsecutive: 3, Warmup: 0.2).ReuseSchedule(10);
        Assert.Equal(new[] { false, false, true, true, false, true, true, false, true, false }, reuse);
        var capped = new MagCacheConfig(Enumerable.Repeat(1.0, 8).ToArray(), 0.06, MaxConsecutive: 2, Warmup: 0).ReuseSchedule(8);
        Assert.Equal(new[] { false, true, true, false, true, true, false, false }, capped);
    }

    [Fact]
    public void DeltaDit_RearEarly_FrontLate_RefreshEveryN()
    {
        var s = new DeltaDitConfig(N: 2, Blocks: 2, Cutoff: 0.5).Schedule(7);   // cutoff step ⌈3.5⌉ = 4
        Assert.Equal(new[] { true, true, true, true, false, false, false }, s.Select(x => x.Rear).ToArray());
        Assert.Equal(new[] { false, true, false, true, false, true, false }, s.Select(x => x.Reuse).ToArray());
    }

    [Fact]
    public void TaylorSeer_Schedule_AndForecastIsExactOnPolynomials()
    {
        Assert.Equal(new[] { true, true, true, false, false, true, false, false, true, true },
            new TaylorSeerConfig(Interval: 3, Order: 1, Warmup: 3).ComputeSchedule(10));
        // F(t) = 2 + 3t sampled at t = 0, 4: order 1 from spacing 4 predicts t = 4 + 3 exactly
        float[] f4 = [14f], f0 = [2f];
        Assert.Equal(23f, TaylorForecast.Apply(TaylorForecast.Weights(1, 3, 4), f4, f0)[0], 4);
        // F(t) = t² at t = 0, 2, 4, order 2, one spacing ahead: the Taylor form (TaylorSeer's) gives
        // 16 + 12·1 + 8·1²/2 = 32 (the backward second difference is the curvature one spacing back), not 36
        Assert.Equal(32f, TaylorForecast.Apply(TaylorForecast.Weights(2, 2, 2), [16f], [4f], [0f])[0], 4);
        Assert.Equal(new[] { 1f }, TaylorForecast.Weights(0, 5, 1));
    }

    [Fact]
    public void BdAdaptive_ReusesWhileAccumulatedRateStaysUnderDelta_CappedInARow()
    {
        var c = new BlockDanceAdaptiveConfig(Threshold: 0.1, MaxConsecutive: 2);
        double acc = 0; int cons = 0;
        // rate .04: .04 reuse, .08 reuse, cap 2 → cache (0), .04 reuse; rate .2 > δ → cache; outside the window → cache; no rate → cache
        var got = new (bool InWindow, double? Rate)[] { (true, 0.04), (true, 0.04), (true, 0.04), (true, 0.04), (true, 0.2), (false, 0.01), (true, null) }
            .Select(s => c.Reuse(s.InWindow, s.Rate, ref acc, ref cons)).ToArray();
        Assert.Equal(new[] { true, true, false, true, false, false, false }, got);
    }

    [Fact]
    public void Calibration_FitPolynomial_RecoversAQuartic()
    {
        double[] coef = [0.5, -1, 2, 0.3, 0.01];
        var x = Enumerable.Range(0, 40).Select(i => i / 40.0).ToList();
        var y = x.Select(v => CacheCalibration.Polynomial(coef, v)).ToList();
        var fit = CacheCalibration.FitPolynomial(x, y);
        for (int i = 0; i < 5; i++) Assert.Equal(coef[i], fit[i], 5);
    }

    [Fact]
    public void Calibration_Missing_IsAModelErrorThatSaysHowToMakeIt()
    {
        var e = Assert.Throws<CacheException>(() => CacheCalibration.Load("/nonexistent/m.cache-calibration.json", "teacache"));
        Assert.Contains("a calibration run on this model writes it", e.Message);   // the fact; the program names the command
    }

    [Fact]
    public void SampleTeaCache_WithoutCalibration_Exits2_NamingTheCommand()
    {
        var m = CliRunner.Fixture("dit_p4.weights.safetensors");
        var (code, _, err) = CliRunner.Run("sample", "--model", m, "--device", "cpu", "--steps", "4", "--cache", "teacache", "--out", Path.Combine(CliRunner.TempDir(), "x.png"));
        Assert.Equal(2, code);
        Assert.Contains("needs a calibration of this model", err);
        Assert.Contains("blockdance calibrate", err);
    }

    [Fact]
    public void Calibrate_FixtureModel_WritesACurvePerStep_ThatMagCacheAccepts()
    {
        var m = CliRunner.Fixture("dit_p4.weights.safetensors");
        var json = Path.Combine(CliRunner.TempDir(), "cal.json");
        var (code, stdout, err) = CliRunner.Run("calibrate", "--model", m, "--device", "cpu", "--samples", "2", "--steps", "5", "--out", json);
        Assert.True(code == 0, err + stdout);
        var cal = CacheCalibration.Load(json, "magcache");
        Assert.Equal(5, cal.MagRatios.Length);
        Assert.Equal(1.0, cal.MagRatios[0]);
        Assert.All(cal.MagRatios, r => Assert.True(r > 0));
        new MagCacheConfig(cal.MagRatios).Validate(5);
        Assert.True(cal.SuggestedThresholds!.ContainsKey("teacache"));
    }

    [Fact]
    public void Signals_RelativeL1_TakesBothCfgRowsOfASample()
    {
        // 2 samples, CFG: rows 0, 1 cond; 2, 3 uncond; rowLen 1
        float[] a = [1, 2, 3, 4], b = [2, 2, 1, 4];
        var d = CacheSignals.RelativeL1(a, b, new CfgLayout(2, true), 1);
        Assert.Equal((1 + 2) / 3.0, d[0], 12);       // rows 0 and 2
        Assert.Equal(0, d[1], 12);                    // rows 1 and 3
    }
}

public abstract class CachePolicyDeviceTests(string kind) : DeviceTest(kind)
{
    static DiT P4(ComputeDevice dev) => FixtureChecks.LoadModel(dev, CliRunner.Fixtures, "dit_p4");   // 3×16×16, depth 2
    static readonly double[] Identity = [0, 0, 0, 1, 0];

    static SamplingResult Run(DiT model, Func<ICachePolicy> p, int batch = 0, int[]? classes = null) =>
        SamplingSession.Run(model, new SamplingOptions { Classes = classes ?? [1, 3], Steps = 6, Cfg = 4f, Seed = 5, Batch = batch, Policy = p });

    public static TheoryData<string> NoReuse => new() { "fora", "teacache", "fbcache", "dbcache", "magcache", "delta-dit", "taylorseer", "bd-adaptive", "bd-taylor" };

    static ICachePolicy Make(string name, bool reuse) => name switch
    {
        "fora" => new ForaPolicy(new ForaConfig(reuse ? 3 : 1)),
        "teacache" => new TeaCachePolicy(new TeaCacheConfig(reuse ? 10 : 0, Identity)),
        "fbcache" => new FirstBlockCachePolicy(new FirstBlockCacheConfig(reuse ? 10 : 0)),
        "dbcache" => new DbCachePolicy(new DbCacheConfig(Threshold: reuse ? 10 : 0, Warmup: 1)),
        "magcache" => new MagCachePolicy(new MagCacheConfig(Enumerable.Repeat(1.0, 6).ToArray(), 0.06, reuse ? 3 : 0, 0)),
        "delta-dit" => new DeltaDitPolicy(new DeltaDitConfig(N: reuse ? 2 : 1)),
        "taylorseer" => new TaylorSeerConfig(Interval: reuse ? 3 : 1, Warmup: 2) is var t ? new TaylorSeerPolicy(t) : null!,
        "bd-adaptive" => new BlockDanceAdaptivePolicy(new BlockDanceAdaptiveConfig(reuse ? 10 : 0, 3, WindowStart: 0, WindowEnd: 1)),
        "bd-taylor" => new BlockDanceTaylorPolicy(new BlockDanceTaylorConfig(new BlockDanceConfig(reuse ? 2 : 1, WindowStart: 0, WindowEnd: 1))),
        _ => throw new ArgumentException(name),
    };

    [SkippableTheory]
    [MemberData(nameof(NoReuse))]
    public void NoReuseSetting_IsBitIdenticalToNoCache_AndTheReuseSettingSkips(string name)
    {
        using var model = P4(Device);
        var none = Run(model, () => new NoCache());
        var same = Run(model, () => Make(name, reuse: false));
        Assert.Equal(0, same.BlocksSkipped);
        Assert.Equal(none.Samples, same.Samples);
        var fast = Run(model, () => Make(name, reuse: true));
        Assert.True(fast.BlocksSkipped > 0, $"{name}: the reuse setting skipped nothing");
        Assert.All(fast.Samples, v => Assert.True(float.IsFinite(v)));
    }

    [SkippableTheory]
    [InlineData("teacache")]
    [InlineData("fbcache")]
    [InlineData("dbcache")]
    [InlineData("bd-adaptive")]
    public void PerSamplePolicy_EachSampleInABatchEqualsItAlone(string name)
    {
        using var model = P4(Device);
        // thresholds between "never" and "always" so that samples decide differently
        Func<ICachePolicy> p = name switch
        {
            "teacache" => () => new TeaCachePolicy(new TeaCacheConfig(0.3, Identity)),
            "fbcache" => () => new FirstBlockCachePolicy(new FirstBlockCacheConfig(0.3)),
            "dbcache" => () => new DbCachePolicy(new DbCacheConfig(Threshold: 0.3, Warmup: 1, MaxConsecutive: 2)),
            _ => () => new BlockDanceAdaptivePolicy(new BlockDanceAdaptiveConfig(0.3, 2, WindowStart: 0, WindowEnd: 1)),
        };
        int[] classes = [0, 1, 2, 4];
        var together = Run(model, p, 4, classes);
        var alone = Run(model, p, 1, classes);
        Assert.Equal(alone.Samples, together.Samples);
        Assert.Equal(alone.BlocksComputed, together.BlocksComputed, 9);
    }

    [SkippableFact]
    public void SkippedBlocks_AreNotLaunched()
    {
        var dev = Device;
        using var model = P4(dev);
        Run(model, () => new NoCache(), 0, [1]);   // compiles
        dev.Kernels.ResetCounts();
        var r = Run(model, () => Make("fbcache", reuse: true), 0, [1]);
        // fbcache: block 0 every step (6), block 1 on the computed steps only; one attention launch per block run
        int computedSteps = 6 - (int)Math.Round(r.BlocksSkipped);
        Assert.True(computedSteps < 6);
        Assert.Equal(6 + computedSteps, dev.Kernels.LaunchesOf(Attention.KernelName(dev, model.Config.HeadDim, dev.Precision)));
    }

    [SkippableFact]
    public void Fora_RefreshStepEqualsTheFullForward_ReuseStepLaunchesNoAttention()
    {
        var dev = Device;
        using var model = P4(dev);
        var cfg = model.Config;
        int n = 2, len = n * cfg.InChannels * cfg.InputSize * cfg.InputSize;
        using var x = Tensor.FromHost(dev, "x", Tolerance.Random(3, len), n, cfg.InChannels, cfg.InputSize, cfg.InputSize);
        using var x2 = Tensor.FromHost(dev, "x2", Tolerance.Random(4, len), n, cfg.InChannels, cfg.InputSize, cfg.InputSize);
        int outLen = n * cfg.OutChannels * cfg.InputSize * cfg.InputSize;
        using var full = Tensor.Allocate(dev, "full", n, cfg.OutChannels, cfg.InputSize, cfg.InputSize);
        using var got = Tensor.Allocate(dev, "got", n, cfg.OutChannels, cfg.InputSize, cfg.InputSize);
        using var policy = new ForaPolicy(new ForaConfig(2));
        policy.Begin(PlanRunner.Stack(model.Shape, new CfgLayout(n, false)), dev, 2);
        var runner = new PlanRunner(model);
        runner.Begin(n);
        float[] t0 = [500f, 500f], t1 = [480f, 480f];
        int[] y = [1, 2];
        model.Forward(x, t0, y, full);
        var p0 = policy.Plan(new StepContext(0, 2, 500, x, y, new CfgLayout(n, false)));
        Assert.Equal(PlanKind.StoreOutputs, p0.Kind);
        runner.Run(p0, 0, x, t0, y, got);
        Assert.Equal(full.ToHost(), got.ToHost());                       // the refresh step is the full forward, bit for bit
        var p1 = policy.Plan(new StepContext(1, 2, 480, x2, y, new CfgLayout(n, false)));
        Assert.Equal(PlanKind.ReuseOutputs, p1.Kind);
        string attention = Attention.KernelName(dev, model.Config.HeadDim, dev.Precision);
        Assert.True(dev.Kernels.LaunchesOf(attention) > 0, $"the refresh step launched no {attention}: the count below would prove nothing");
        dev.Kernels.ResetCounts();
        runner.Run(p1, 1, x2, t1, y, got);
        Assert.Equal(0, dev.Kernels.LaunchesOf(attention));
        Assert.Equal(2 * cfg.Depth, dev.Kernels.LaunchesOf(GatedResidual.KernelName(dev)));   // A and M of every block, with the step's gates
        Assert.Equal(2 * cfg.Depth, runner.Accounting.RowBlocks);          // 2 rows × depth on step 0, none on step 1
        Assert.All(got.ToHost(), v => Assert.True(float.IsFinite(v)));
        Assert.NotEqual(full.ToHost(), got.ToHost());
        Assert.Equal(outLen, got.ToHost().Length);
    }

    [SkippableFact]
    public void GatedResidual_MatchesReference()
    {
        var dev = Device;
        int n = 2, t = 3, d = 4, stride = 12;
        float[] res = Tolerance.Random(1, n * t * d), x = Tolerance.Random(2, n * t * d), gate = Tolerance.Random(3, n * stride), want = new float[n * t * d];
        GatedResidual.Reference(res, x, gate, want, n, t, d, stride, 4);
        using var r = Tensor.FromHost(dev, "r", res, n, t, d);
        using var xv = Tensor.FromHost(dev, "x", x, n, t, d);
        using var g = Tensor.FromHost(dev, "g", gate, n, stride);
        using var o = Tensor.Allocate(dev, "o", n, t, d);
        GatedResidual.Run(dev, r.View, xv.View, g.View, o.View, n, t, d, stride, 4);
        Assert.Equal(want, o.ToHost());
    }

    [SkippableFact]
    public void FeatureCombine_MatchesReference_PerRowWeights()
    {
        var dev = Device;
        int rows = 3, len = 50;
        var ins = Enumerable.Range(0, 3).Select(j => Tolerance.Random(10 + j, rows * len)).ToArray();
        float[] w = [1, 1, 0, 0, /**/ 1.5f, -0.5f, 0, 0, /**/ 0, 1, -2, 0];
        var want = new float[rows * len];
        FeatureCombine.Reference(want, ins, w, rows, len);
        using var o = Tensor.Allocate(dev, "o", rows, len);
        var t = ins.Select((x, j) => Tensor.FromHost(dev, $"i{j}", x, rows, len)).ToArray();
        using var wt = Tensor.FromHost(dev, "w", w, rows, 4);
        FeatureCombine.Run(dev, o.View, t.Select(x => x.View).ToArray(), wt.View, rows, len);
        Assert.Equal(want, o.ToHost());
        Assert.Equal(ins[0][0] + ins[1][0], want[0]);         // weights 1, 1: an exact sum
        foreach (var x in t) x.Dispose();
    }

    [SkippableFact]
    public void FeatureCombine_UniformWeightsAsArguments_SameBitsAsPerRowWeights()
    {
        var dev = Device;
        int rows = 3, len = 50;
        var ins = Enumerable.Range(0, 3).Select(j => Tolerance.Random(20 + j, rows * len)).ToArray();
        float[] row = [1.5f, -0.5f, 0.25f, 0];
        var w = Enumerable.Range(0, rows).SelectMany(_ => row).ToArray();
        var want = new float[rows * len];
        FeatureCombine.Reference(want, ins, w, rows, len);
        var t = ins.Select((x, j) => Tensor.FromHost(dev, $"i{j}", x, rows, len)).ToArray();
        using var o = Tensor.Allocate(dev, "o", rows, len);
        using var u = Tensor.Allocate(dev, "u", rows, len);
        using var wt = Tensor.FromHost(dev, "w", w, rows, 4);
        FeatureCombine.Run(dev, o.View, t.Select(x => x.View).ToArray(), wt.View, rows, len);
        long waits = dev.HostWaits;
        FeatureCombine.RunUniform(dev, u.View, t.Select(x => x.View).ToArray(), row, rows, len);
        Assert.Equal(waits, dev.HostWaits);                    // nothing uploaded
        Assert.Equal(want, u.ToHost());
        Assert.Equal(o.ToHost(), u.ToHost());
        foreach (var x in t) x.Dispose();
    }
}

public sealed class CpuCachePolicyTests() : CachePolicyDeviceTests("cpu");
public sealed class CudaCachePolicyTests() : CachePolicyDeviceTests("cuda");
