// BlockDance-N: the schedule, zero-copy reuse (skipped blocks are never launched), equivalence with
// running blocks b+1.. on the stored feature, and bit-identity with no cache when nothing is reused.
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler;
using BlockDance.Sampler.SelfTest;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class BlockDanceTests(ITestOutputHelper output)
{
    [Fact]
    public void Schedule_50Steps_N2_Window25to95_IsTheSpecs()
    {
        var reuse = new BlockDanceConfig(N: 2, WindowStart: 0.25, WindowEnd: 0.95).ReuseSchedule(50);
        // window = steps with 0.25 ≤ i/50 < 0.95 = 13..47; groups of 2 from 13: (13 cache, 14 reuse), …, (47 cache)
        var expected = Enumerable.Range(0, 50).Select(i => i >= 14 && i <= 46 && i % 2 == 0).ToArray();
        Assert.Equal(expected, reuse);
        Assert.Equal(17, reuse.Count(r => r));
        // DiT-XL/2 (28 blocks, b = 20): 1400 → 1043 block evaluations, the 1.34× theoretical speedup
        Assert.Equal(1043, 50 * 28 - 17 * 21);
    }

    [Fact]
    public void Schedule_N3_ReusesTwoOfEachGroup_AndDefaultsScale()
    {
        var reuse = new BlockDanceConfig(N: 3, WindowStart: 0.2, WindowEnd: 0.8).ReuseSchedule(10);
        // window = steps 2..7 (0.2 ≤ i/10 < 0.8): groups (2 cache, 3, 4 reuse), (5 cache, 6, 7 reuse)
        Assert.Equal(new[] { false, false, false, true, true, false, true, true, false, false }, reuse);
        Assert.Equal(20, new DiTConfig(28, 1152, 16, 2, 4, 8, 32, 1000).DefaultCacheBoundary);
        Assert.Equal(3, new DiTConfig(6, 96, 4, 2, 1, 2, 14, 10).DefaultCacheBoundary);
        Assert.Equal(0, new DiTConfig(2, 64, 4, 2, 4, 8, 8, 10).DefaultCacheBoundary);
    }

    static DiT P4(ComputeDevice dev) => FixtureChecks.LoadModel(dev, CliRunner.Fixtures, "dit_p4");

    static SamplingResult Sample(DiT model, Func<ICachePolicy> policy, int steps = 8) => SamplingSession.Run(model,
        new SamplingOptions { Classes = [1, 3], Steps = steps, Cfg = 4f, Seed = 5, Policy = policy });

    [Theory]
    [InlineData(1, 0.25, 0.95)]   // N = 1: every step is a cache step
    [InlineData(2, 0.95, 0.99)]   // a window with no step in it (8 steps: i/8 never in [0.95, 0.99))
    public void NoReuse_IsBitIdenticalToNoCache(int n, double start, double end)
    {
        var dev = TestDevices.Get("cpu");
        using var model = P4(dev);
        var none = Sample(model, () => new NoCache());
        var bd = Sample(model, () => new BlockDancePolicy(new BlockDanceConfig(n, 0, start, end)));
        Assert.Equal(0, bd.BlocksSkipped);
        Assert.Equal(none.Samples, bd.Samples);
    }

    [Fact]
    public void ReuseStep_LaunchesNoSkippedBlock_AndEqualsRunningTheRestOnTheStoredFeature()
    {
        var dev = TestDevices.Get("cpu");
        using var model = P4(dev);
        var cfg = model.Config;
        using var policy = new BlockDancePolicy(new BlockDanceConfig(N: 2, Boundary: 0, WindowStart: 0, WindowEnd: 1));
        int n = 2;
        policy.Begin(model, 4, n);
        using var x = Tensor.FromHost(dev, "x", GaussianNoise.Reference(1, 0, n * cfg.InChannels * cfg.InputSize * cfg.InputSize),
            n, cfg.InChannels, cfg.InputSize, cfg.InputSize);
        using var out1 = Tensor.Allocate(dev, "o1", n, cfg.OutChannels, cfg.InputSize, cfg.InputSize);
        using var out2 = Tensor.Allocate(dev, "o2", n, cfg.OutChannels, cfg.InputSize, cfg.InputSize);
        float[] t0 = [900, 900], t1 = [700, 700];
        int[] y = [1, 2];

        // step 0: cache step, block 0 writes straight into the cache buffer
        var plan0 = policy.BeforeStep(0);
        Assert.Equal(0, plan0.StoreAfter);
        model.Forward(x, t0, y, out1, plan0);
        var stored = policy.Feature!.ToHost();

        // step 1: reuse step — count launches: no block-0 kernel may run
        var blocksSeen = new List<int>();
        model.OnBlockOutput = (i, _) => blocksSeen.Add(i);
        dev.Kernels.ResetCounts();
        var plan1 = policy.BeforeStep(1);
        Assert.Same(policy.Feature, plan1.StartFeature);                    // the very buffer, no copy
        model.Forward(x, t1, y, out1, plan1);
        model.OnBlockOutput = null;
        Assert.Equal([1], blocksSeen);
        Assert.Equal(cfg.Depth - 1, dev.Kernels.LaunchesOf("attention_v1"));
        Assert.Equal(0, dev.Kernels.LaunchesOf("patch_embed"));              // its output would be unused
        Assert.Equal([1], policy.ReusedSteps);
        Assert.Equal(stored, policy.Feature!.ToHost());                     // the stored feature is not overwritten

        // the same as running blocks 1.. on a separate copy of the stored feature
        using var copy = Tensor.FromHost(dev, "copy", stored, n, cfg.Tokens, cfg.Hidden);
        model.Forward(x, t1, y, out2, new BlockPlan(Start: 1, StartFeature: copy));
        Assert.Equal(out2.ToHost(), out1.ToHost());
    }

    [Fact]
    public void StoredFeature_OfAnotherBatchShape_IsRejected()
    {
        var dev = TestDevices.Get("cpu");
        using var model = P4(dev);
        var cfg = model.Config;
        using var feature = Tensor.Allocate(dev, "f", 3, cfg.Tokens, cfg.Hidden);   // batch 3
        using var x = Tensor.Allocate(dev, "x", 2, cfg.InChannels, cfg.InputSize, cfg.InputSize);
        using var o = Tensor.Allocate(dev, "o", 2, cfg.OutChannels, cfg.InputSize, cfg.InputSize);
        var e = Assert.Throws<ArgumentException>(() => model.Forward(x, [10, 10], [0, 1], o, new BlockPlan(1, feature)));
        Assert.Contains("expected (2, 16, 144)", e.Message);
    }

    [Fact]
    public void N2_SkipsBlocks_AndTheSummaryAndReportSayHowMany()
    {
        var dir = CliRunner.TempDir();
        var m = CliRunner.Fixture("dit_p4.weights.safetensors");
        string none = Path.Combine(dir, "none.safetensors"), n1 = Path.Combine(dir, "n1.safetensors"), n2 = Path.Combine(dir, "n2.safetensors");
        string[] common = ["sample", "--model", m, "--device", "cpu", "--steps", "10", "--class", "0,1", "--cache-block", "0"];
        Assert.Equal(0, CliRunner.Run(["sample", "--model", m, "--device", "cpu", "--steps", "10", "--class", "0,1", "--out", none]).Code);
        Assert.Equal(0, CliRunner.Run([.. common[..^2], "--cache", "blockdance", "--cache-n", "1", "--out", n1]).Code);
        Assert.Equal(File.ReadAllBytes(none), File.ReadAllBytes(n1));            // N = 1 writes the same bytes
        var report = Path.Combine(dir, "r.json");
        var (code, stdout, _) = CliRunner.Run([.. common, "--cache", "blockdance", "--cache-n", "2", "--out", n2, "--report", report]);
        output.WriteLine(stdout);
        Assert.Equal(0, code);
        // 10 steps, window [0.25, 0.95) = steps 3..9, reuse 4, 6, 8; b = 0 → 1 of 2 blocks skipped each
        Assert.Contains("3 skipped of 20", stdout);
        Assert.Contains("reused   steps 4,6,8", stdout);
        var json = File.ReadAllText(report);
        Assert.Contains("\"blocks_skipped\": 3", json);
        Assert.Contains("\"reused_steps\"", json);
        Assert.NotEqual(File.ReadAllBytes(none), File.ReadAllBytes(n2));
    }
}

public class PerSampleRefreshTests
{
    [Fact]
    public void MixedBatch_EachSampleGetsItsOwnDecision()
    {
        var dev = TestDevices.Get("cpu");
        using var model = FixtureChecks.LoadModel(dev, CliRunner.Fixtures, "dit_p4");
        var cfg = model.Config;
        int n = 3, s = cfg.InputSize;
        using var x = Tensor.FromHost(dev, "x", GaussianNoise.Reference(2, 0, n * cfg.InChannels * s * s), n, cfg.InChannels, s, s);
        using var feature = Tensor.Allocate(dev, "f", n, cfg.Tokens, cfg.Hidden);
        using var full = Tensor.Allocate(dev, "full", n, cfg.OutChannels, s, s);
        using var reuse = Tensor.Allocate(dev, "reuse", n, cfg.OutChannels, s, s);
        using var mixed = Tensor.Allocate(dev, "mixed", n, cfg.OutChannels, s, s);
        int[] y = [0, 2, 4];
        model.Forward(x, [800, 800, 800], y, full, new BlockPlan(StoreAfter: 0, StoreInto: feature));   // cache step
        float[] t = [600, 600, 600];
        var stored = feature.ToHost();
        model.Forward(x, t, y, reuse, new BlockPlan(Start: 1, StartFeature: feature));                  // all reuse
        model.Forward(x, t, y, full);                                                                   // all full
        model.ResetCounters();
        model.Forward(x, t, y, mixed, new BlockPlan(Start: 1, StartFeature: feature, RefreshSamples: [2, 0]));
        Assert.Equal(2 * 1 + 3 * 1, model.SampleBlocksComputed);   // block 0 for 2 samples, block 1 for 3

        int per = cfg.OutChannels * s * s;
        var m = mixed.ToHost(); var f = full.ToHost(); var r = reuse.ToHost();
        Assert.Equal(f[..per], m[..per]);                            // sample 0 refreshed = full step
        Assert.Equal(r[per..(2 * per)], m[per..(2 * per)]);          // sample 1 reused
        Assert.Equal(f[(2 * per)..], m[(2 * per)..]);                // sample 2 refreshed
        var fh = feature.ToHost(); int row = cfg.Tokens * cfg.Hidden;
        Assert.Equal(stored[row..(2 * row)], fh[row..(2 * row)]);    // the reused row is untouched
    }
}
