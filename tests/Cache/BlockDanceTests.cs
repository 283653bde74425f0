// BlockDance-N: the schedule, zero-copy reuse (skipped blocks are never launched), equivalence with
// running blocks b+1.. on the stored feature, and bit-identity with no cache when nothing is reused.
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler;
using BlockDance.Sampler.SelfTest;
using BlockDance.Transformer;
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
        // DiT-XL/2 (28 blocks, b = 20): 1400 → 1043 block evaluations, the paper's 1.34× theoretical speedup
        Assert.Equal(1043, 50 * 28 - reuse.Count(r => r) * 21);
    }

    [Fact]
    public void Schedule_N3_ReusesTwoOfEachGroup_AndDefaultsScale()
    {
        var reuse = new BlockDanceConfig(N: 3, WindowStart: 0.2, WindowEnd: 0.8).ReuseSchedule(10);
        // window = steps 2..7 (0.2 ≤ i/10 < 0.8): groups (2 cache, 3, 4 reuse), (5 cache, 6, 7 reuse)
        Assert.Equal(new[] { false, false, false, true, true, false, true, true, false, false }, reuse);
        Assert.Equal(20, BlockDanceConfig.DefaultBoundary(28));
        Assert.Equal(3, BlockDanceConfig.DefaultBoundary(6));
        Assert.Equal(0, BlockDanceConfig.DefaultBoundary(2));
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


/// <summary>The cache path on a device: PlanRunner with BlockDance's plans and with per-sample refresh plans.</summary>
public abstract class BlockDanceDeviceTests(string kind) : DeviceTest(kind)
{
    static DiT P4(ComputeDevice dev) => FixtureChecks.LoadModel(dev, CliRunner.Fixtures, "dit_p4");   // 3×16×16, depth 2

    static SamplingResult Sample(DiT model, Func<ICachePolicy> policy, int steps = 8) => SamplingSession.Run(model,
        new SamplingOptions { Classes = [1, 3], Steps = steps, Cfg = 4f, Seed = 5, Policy = policy });

    static Tensor Noise(DiT model, int seed, int n)
    {
        var cfg = model.Config;
        int s = cfg.InputSize;
        return Tensor.FromHost(model.Device, "x", GaussianNoise.Reference((ulong)seed, 0, n * cfg.InChannels * s * s), n, cfg.InChannels, s, s);
    }

    [SkippableTheory]
    [InlineData(1, 0.25, 0.95)]   // N = 1: every step is a cache step
    [InlineData(2, 0.95, 0.99)]   // a window with no step in it (8 steps: i/8 never in [0.95, 0.99))
    public void NoReuse_IsBitIdenticalToNoCache(int n, double start, double end)
    {
        using var model = P4(Device);
        var none = Sample(model, () => new NoCache());
        var bd = Sample(model, () => new BlockDancePolicy(new BlockDanceConfig(n, 0, start, end)));
        Assert.Equal(0, bd.BlocksSkipped);
        Assert.Equal(none.Samples, bd.Samples);
    }

    [SkippableFact]
    public void ReuseStep_LaunchesNoSkippedBlock_AndEqualsRunningTheRestOnTheStoredFeature()
    {
        var dev = Device;
        using var model = P4(dev);
        var cfg = model.Config;
        using var policy = new BlockDancePolicy(new BlockDanceConfig(N: 2, Boundary: 0, WindowStart: 0, WindowEnd: 1));
        int n = 2;
        policy.Begin(PlanRunner.Stack(model.Shape, new CfgLayout(n, false)), dev, 4);
        var runner = new PlanRunner(model);
        runner.Begin(n);
        using var x = Noise(model, 1, n);
        using var out1 = Tensor.Allocate(dev, "o1", n, cfg.OutChannels, cfg.InputSize, cfg.InputSize);
        using var out2 = Tensor.Allocate(dev, "o2", n, cfg.OutChannels, cfg.InputSize, cfg.InputSize);
        float[] t0 = [900, 900], t1 = [700, 700];
        int[] y = [1, 2];
        StepContext Step(int i) => new(i, 4, 0, x, y, new CfgLayout(n, Guided: false));

        // step 0: cache step, block 0 writes straight into the store's buffer
        var plan0 = policy.Plan(Step(0));
        Assert.Equal((PlanKind.Cache, 0), (plan0.Kind, plan0.Boundary));
        runner.Run(plan0, 0, x, t0, y, out1);
        var stored = policy.Store!.Feature(0).ToHost();

        Assert.True(dev.Kernels.LaunchesOf(PatchEmbed.KernelName(dev)) > 0);  // so that the 0 below is a real count

        // step 1: reuse step — count launches: no block-0 kernel may run
        var blocksSeen = new List<int>();
        model.OnBlockOutput = (i, _) => blocksSeen.Add(i);
        dev.Kernels.ResetCounts();
        var plan1 = policy.Plan(Step(1));
        Assert.Equal(PlanKind.Reuse, plan1.Kind);
        runner.Run(plan1, 1, x, t1, y, out1);
        model.OnBlockOutput = null;
        Assert.Equal([1], blocksSeen);
        Assert.Equal(cfg.Depth - 1, dev.Kernels.LaunchesOf(Attention.KernelName(dev, cfg.HeadDim, dev.Precision)));
        Assert.Equal(0, dev.Kernels.LaunchesOf(PatchEmbed.KernelName(dev)));              // its output would be unused
        Assert.Equal([1], runner.Accounting.ReusedSteps);
        Assert.Equal([3L, 3L], runner.Accounting.PerRow);                    // 2 blocks at step 0, block 1 at step 1
        Assert.Equal(stored, policy.Store.Feature(0).ToHost());             // the stored feature is not overwritten

        // the same as running blocks 1.. on a separate copy of the stored feature
        using var copy = Tensor.FromHost(dev, "copy", stored, n, cfg.Tokens, cfg.Hidden);
        model.Embed(null, t1, y);
        model.Final(model.RunBlocks(1, cfg.Depth, copy), out2);
        Assert.Equal(out2.ToHost(), out1.ToHost());
    }

    [SkippableFact]
    public void StoredFeature_OfAnotherBatchShape_IsRejected()
    {
        var dev = Device;
        using var model = P4(dev);
        var cfg = model.Config;
        using var feature = Tensor.Allocate(dev, "f", 3, cfg.Tokens, cfg.Hidden);   // batch 3
        using var x = Tensor.Allocate(dev, "x", 2, cfg.InChannels, cfg.InputSize, cfg.InputSize);
        model.Embed(x, [10, 10], [0, 1]);
        var e = Assert.Throws<ArgumentException>(() => model.RunBlocks(1, cfg.Depth, feature));
        Assert.Contains("expected (2, 16, 144)", e.Message);
    }

    [SkippableFact]
    public void ReusePlan_OfAFeatureNeverStored_IsRejected()
    {
        var dev = Device;
        using var model = P4(dev);
        var cfg = model.Config;
        using var store = new FeatureStore(dev, PlanRunner.Stack(model.Shape, new CfgLayout(2, false)), "test");
        using var x = Noise(model, 3, 2);
        using var o = Tensor.Allocate(dev, "o", 2, cfg.OutChannels, cfg.InputSize, cfg.InputSize);
        var runner = new PlanRunner(model);
        runner.Begin(2);
        var e = Assert.Throws<InvalidOperationException>(() => runner.Run(BlockPlan.Reuse(store, 0), 0, x, [10, 10], [0, 1], o));
        Assert.Contains("row 0 reuses block 0's feature, which no earlier step stored", e.Message);
        // a refresh of row 1 alone still leaves row 0 unstored
        Assert.Throws<InvalidOperationException>(() => runner.Run(BlockPlan.Refresh(store, 0, [1]), 0, x, [10, 10], [0, 1], o));
    }

    [SkippableFact]
    public void MixedBatch_EachSampleGetsItsOwnDecision()
    {
        var dev = Device;
        using var model = P4(dev);
        var cfg = model.Config;
        int n = 3, s = cfg.InputSize;
        using var x = Noise(model, 2, n);
        using var store = new FeatureStore(dev, PlanRunner.Stack(model.Shape, new CfgLayout(n, false)), "test");
        using var full = Tensor.Allocate(dev, "full", n, cfg.OutChannels, s, s);
        using var reuse = Tensor.Allocate(dev, "reuse", n, cfg.OutChannels, s, s);
        using var mixed = Tensor.Allocate(dev, "mixed", n, cfg.OutChannels, s, s);
        int[] y = [0, 2, 4];
        var runner = new PlanRunner(model);
        runner.Begin(n);
        runner.Run(BlockPlan.Cache(store, 0), 0, x, [800, 800, 800], y, full);                      // cache step
        float[] t = [600, 600, 600];
        var stored = store.Feature(0).ToHost();
        runner.Run(BlockPlan.Reuse(store, 0), 1, x, t, y, reuse);                                   // all reuse
        runner.Run(BlockPlan.Full, 2, x, t, y, full);                                               // all full
        runner.Begin(n);
        runner.Run(BlockPlan.Refresh(store, 0, [2, 0]), 3, x, t, y, mixed);
        Assert.Equal([2L, 1L, 2L], runner.Accounting.PerRow);        // block 0 for samples 0 and 2, block 1 for all

        int per = cfg.OutChannels * s * s;
        var m = mixed.ToHost(); var f = full.ToHost(); var r = reuse.ToHost();
        Assert.Equal(f[..per], m[..per]);                            // sample 0 refreshed = full step
        Assert.Equal(r[per..(2 * per)], m[per..(2 * per)]);          // sample 1 reused
        Assert.Equal(f[(2 * per)..], m[(2 * per)..]);                // sample 2 refreshed
        var fh = store.Feature(0).ToHost(); int row = cfg.Tokens * cfg.Hidden;
        Assert.Equal(stored[row..(2 * row)], fh[row..(2 * row)]);    // the reused row is untouched
    }
}

public sealed class CpuBlockDanceTests() : BlockDanceDeviceTests("cpu");
public sealed class CudaBlockDanceTests() : BlockDanceDeviceTests("cuda");
