// BlockDance-Ada with a learned boundary (the boundary head, LadderPlan): the file's two kinds and the refusal of
// files that do not match their kind, the boundary head's REINFORCE gradient vs finite differences, and on the
// demo DiT (depth 6, so candidates 1..4 fit): a network forced to pick boundary b skips exactly b + 1 blocks on
// each reused step, samples with different boundaries in one batch equal sampling them alone, an all-cache
// policy is bit-identical to no cache, the device boundary logits match the host reference; the shipped policy
// is still a fixed-boundary one.
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler.Ada;
using BlockDance.Sampling;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class AdaBoundaryTests(ITestOutputHelper output)
{
    internal static readonly int[] Candidates = [1, 2, 4];

    /// <summary>The class table of AdaTests (steps 6, ρ 2) plus a boundary head: class c picks candidate choice[c]
    /// (fc3.W[k, c] = +5 for that k, 0 else; hidden unit c = onehot_c).</summary>
    internal static AdaWeights ClassBoundaryTable(DiTConfig cfg, bool[][] cache, int[] choice)
    {
        var t = AdaTests.ClassTable(cfg, 6, 2, cache);
        var i = t.Info;
        var info = AdaPolicyInfo.Learned(i.Steps, i.Rho, i.Channels, i.Height, i.Width, i.Classes, i.Hidden, Candidates, i.Lambda);
        var fc3W = new float[Candidates.Length * info.Hidden];
        for (int c = 0; c < cfg.NumClasses; c++) fc3W[choice[c] * info.Hidden + c] = 5f;
        return new AdaWeights(info, t.Fc1W, t.Fc1B, t.Fc2W, t.Fc2B, fc3W: fc3W, fc3B: new float[Candidates.Length]);
    }

    static AdaWeights RandomLearned(int seed)
    {
        var info = AdaPolicyInfo.Learned(8, 3, 1, 3, 3, 3, 6, [0, 2, 3], 2);
        var w = AdaTests.RandomWeights(info, seed);
        var r = new Random(seed + 2);
        for (int k = 0; k < w.Fc3B!.Length; k++) w.Fc3B[k] = (float)(r.NextDouble() - 0.5);
        return w;
    }

    [Fact]
    public void BoundaryHead_Gradient_MatchesFiniteDifferencesOfLogProb()
    {
        var w = RandomLearned(5);
        var v = w.Input(Tolerance.Random(8, 9, 2f), 0, 1);
        bool[] u = [true, false, false, true, true];
        const double scale = -0.4;
        const int choice = 1;
        var g = new AdaGradient(w.Info);
        AdaReinforce.Accumulate(w, v, u, scale, g, choice);
        int checkedCount = 0;
        foreach (var (param, grad) in new[] { (w.Fc1W, g.Fc1W), (w.Fc1B, g.Fc1B), (w.Fc2W, g.Fc2W), (w.Fc2B, g.Fc2B), (w.Fc3W!, g.Fc3W), (w.Fc3B!, g.Fc3B) })
            for (int i = 0; i < param.Length; i++)
            {
                float p0 = param[i], up = p0 + 1e-3f, down = p0 - 1e-3f;
                param[i] = up; double fUp = AdaReinforce.LogProb(w, v, u, choice);
                param[i] = down; double fDown = AdaReinforce.LogProb(w, v, u, choice);
                param[i] = p0;
                double numeric = scale * (fUp - fDown) / ((double)up - down);
                Assert.True(Math.Abs(numeric - grad[i]) <= 1e-5 + 1e-3 * Math.Abs(numeric),
                    $"parameter {i} of {param.Length}: analytic {grad[i]:G6}, finite difference {numeric:G6}");
                checkedCount++;
            }
        Assert.Equal(w.ParameterCount, checkedCount);
        Assert.Contains(g.Fc3W, x => x != 0);
        // a fixed-boundary network takes no choice, a learned one needs one
        Assert.Throws<ArgumentException>(() => AdaReinforce.Accumulate(w, v, u, scale, g));
    }

    [Fact]
    public void Files_RoundTrip_AndSayTheirKind()
    {
        var dir = CliRunner.TempDir();
        var w = RandomLearned(3);
        var path = Path.Combine(dir, "learned.safetensors");
        w.Save(path);
        var back = AdaWeightsFile.Load(path);
        Assert.Equal(AdaPolicyInfo.BoundaryFormat, back.Metadata["format"]);
        Assert.Equal("0,2,3", back.Metadata["boundaries"]);
        Assert.Equal([0, 2, 3], back.Info.Candidates!);
        Assert.Equal(3, back.Info.Boundary);
        Assert.Equal(w.Fc3W, back.Fc3W);
        Assert.Equal(w.Fc2W, back.Fc2W);

        // a fixed-boundary network writes the v1 layout: format v1, no fc3, no 'boundaries'
        var info = new AdaPolicyInfo(8, 3, 1, 3, 3, 3, 6, 2, 2);
        var fixedPath = Path.Combine(dir, "fixed.safetensors");
        AdaTests.RandomWeights(info, 4).Save(fixedPath);
        var (tensors, md) = HostileFiles.Read(fixedPath);
        Assert.Equal(["fc1.bias", "fc1.weight", "fc2.bias", "fc2.weight"], tensors.Select(t => t.Name).Order());
        Assert.Equal(AdaPolicyInfo.Format, md["format"]);
        Assert.False(md.ContainsKey("boundaries"));
        Assert.False(AdaWeightsFile.Load(fixedPath).Info.LearnsBoundary);
    }

    [Fact]
    public void ShippedPolicy_LearnsItsBoundary()
    {
        var w = AdaWeightsFile.Load(HostileFiles.Shipped("models/ada_policy.safetensors"));
        Assert.Equal(AdaPolicyInfo.BoundaryFormat, w.Metadata["format"]);
        Assert.Equal([1, 2, 3, 4], w.Info.Candidates!);
        Assert.Equal((50, 13), (w.Info.Steps, w.Info.Rho));
    }

    /// <summary>tests/fixtures/ada_policy_v1.safetensors is the fixed-boundary policy shipped before the boundary head
    /// existed; ada_policy_v1.samples.safetensors holds what the engine of that time sampled with it (the command below,
    /// at commit eaaf6fc). The engine with the boundary head must sample the same bytes.</summary>
    [Fact]
    public void OldFixedBoundaryFile_SamplesTheSameBytesAsBefore()
    {
        var old = CliRunner.Fixture("ada_policy_v1.safetensors");
        Assert.False(AdaWeightsFile.Load(old).Info.LearnsBoundary);
        var got = Path.Combine(CliRunner.TempDir(), "s.safetensors");
        var (code, stdout, err) = CliRunner.Run("sample", "--model", HostileFiles.DemoModel, "--device", "cpu", "--class", "0,1,2,3",
            "--cache", "ada", "--policy", old, "--out", got);
        Assert.True(code == 0, err);
        Assert.Contains("ada b=3 rho=20/50", stdout);
        Assert.Contains("82 skipped of 300 per sample", stdout);
        using var want = SafeTensorsFile.Open(CliRunner.Fixture("ada_policy_v1.samples.safetensors"));
        using var have = SafeTensorsFile.Open(got);
        Assert.Equal(want.ReadFloat32("sample"), have.ReadFloat32("sample"));
    }

    [Theory]
    [InlineData("format", "blockdance-ada-v3", "expected blockdance-ada-v1 or blockdance-ada-boundary-v1")]
    [InlineData("boundaries", null, "'boundaries': expected at least two ascending")]
    [InlineData("boundaries", "3,2", "'boundaries': expected at least two ascending")]
    [InlineData("boundaries", "0,2", "'boundary': expected the deepest of 'boundaries' (2), found 3")]
    [InlineData("drop", "fc3.bias", "fc3.bias")]
    [InlineData("fc3-shape", "", "fc3.weight")]
    [InlineData("as-v1", "", "found a boundary head")]
    public void BadFiles_AreRefused_NamingExpectedAndFound(string what, string? value, string message)
    {
        var dir = CliRunner.TempDir();
        var good = Path.Combine(dir, "good.safetensors");
        RandomLearned(1).Save(good);
        var (tensors, md) = HostileFiles.Read(good);
        switch (what)
        {
            case "drop": tensors.RemoveAll(t => t.Name == value); break;
            case "fc3-shape":
                int i = tensors.FindIndex(t => t.Name == "fc3.weight");
                tensors[i] = tensors[i] with { Shape = [2, 6], Data = tensors[i].Data[..12] };
                break;
            case "as-v1": md["format"] = AdaPolicyInfo.Format; md.Remove("boundaries"); break;
            default:
                if (value == null) md.Remove(what); else md[what] = value;
                break;
        }
        var bad = Path.Combine(dir, "bad.safetensors");
        SafeTensorsWriter.Write(bad, tensors.Select(t => (t.Name, t.Shape, t.Data)), md);
        var e = Assert.Throws<SafeTensorsException>(() => AdaWeightsFile.Load(bad));
        output.WriteLine(e.Message);
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Fact]
    public void CacheAda_BadBoundaryFile_Exits2_OneLine()
    {
        var dir = CliRunner.TempDir();
        var good = Path.Combine(dir, "good.safetensors");
        RandomLearned(1).Save(good);
        var (tensors, md) = HostileFiles.Read(good);
        md["boundaries"] = "x,3";
        var bad = Path.Combine(dir, "bad.safetensors");
        SafeTensorsWriter.Write(bad, tensors.Select(t => (t.Name, t.Shape, t.Data)), md);
        var (code, _, err) = CliRunner.Run("sample", "--model", HostileFiles.DemoModel, "--device", "cpu", "--steps", "8",
            "--cache", "ada", "--policy", bad, "--out", Path.Combine(dir, "x.png"));
        Assert.Equal(2, code);
        Assert.Contains("'boundaries'", err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.False(File.Exists(Path.Combine(dir, "x.png")));
    }

    [Fact]
    public void TrainAda_LearnBoundary_Options()
    {
        var dir = CliRunner.TempDir();
        var m = HostileFiles.DemoModel;
        foreach (var (args, msg) in new[]
        {
            (new[] { "--learn-boundary", "2" }, "expected at least two ascending blocks in 0..4, found 2"),
            (new[] { "--learn-boundary", "3,2" }, "found 3,2"),
            (new[] { "--learn-boundary", "2,5" }, "in 0..4"),
            (new[] { "--learn-boundary", "1,2", "--cache-block", "2" }, "--cache-block"),
        })
        {
            var (code, _, err) = CliRunner.Run(["train-ada", "--model", m, "--device", "cpu", .. args, "--out", Path.Combine(dir, "p.safetensors")]);
            Assert.Equal(2, code);
            Assert.Contains(msg, err);
        }
        Assert.False(File.Exists(Path.Combine(dir, "p.safetensors")));

        var policy = Path.Combine(dir, "learned.safetensors");
        var (c1, out1, err1) = CliRunner.Run("train-ada", "--model", m, "--device", "cpu", "--steps", "5", "--samples", "2", "--batch", "2",
            "--epochs", "1", "--hidden", "8", "--learn-boundary", "1,3", "--init-n", "2", "--out", policy);
        output.WriteLine(out1 + err1);
        Assert.True(c1 == 0, err1);
        var w = AdaWeightsFile.Load(policy);
        Assert.Equal([1, 3], w.Info.Candidates!);
        Assert.Equal((3, "2"), (w.Info.Boundary, w.Metadata["train_init_n"]));
        var (c2, out2, err2) = CliRunner.Run("sample", "--model", m, "--device", "cpu", "--steps", "5", "--class", "0,1",
            "--cache", "ada", "--policy", policy, "--out", Path.Combine(dir, "x.png"));
        output.WriteLine(out2 + err2);
        Assert.True(c2 == 0, err2);
        Assert.Contains("ada b=learned of 1,3 rho=2/5", out2);
    }
}

public abstract class AdaBoundaryDeviceTests(string kind, ITestOutputHelper output) : DeviceTest(kind)
{
    static DiT Demo(ComputeDevice dev) => ModelLoader.Load(dev, HostileFiles.DemoModel);   // depth 6, 1×14×14, 10 classes

    static readonly bool[][] Table =   // AdaTests.Table for classes 0..4, the rest cache every step
        [.. AdaTests.Table, .. Enumerable.Range(0, 5).Select(_ => new[] { true, true, true, true })];

    [SkippableTheory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    public void ForcedBoundary_SkipsExactlyBlocks0ToB_OnTheReuseSteps(int choice)
    {
        var dev = Device;
        using var model = Demo(dev);
        var w = AdaBoundaryTests.ClassBoundaryTable(model.Config, Table, Enumerable.Repeat(choice, 10).ToArray());
        int b = AdaBoundaryTests.Candidates[choice];
        using var policy = new AdaPolicy(w);
        var layout = new CfgLayout(3, Guided: true);
        policy.Begin(PlanRunner.Stack(model.Shape, layout), dev, 6);
        using var x = Tensor.FromHost(dev, "x", Tolerance.Random(4, 3 * 196), 3, 1, 14, 14);
        var plans = Enumerable.Range(0, 6).Select(s => policy.Plan(new StepContext(s, 6, 0, x, [0, 1, 2], layout))).ToList();
        // steps 0, 1 (< ρ): every row caches at every candidate; from ρ every sample chose b: the plans of a fixed b
        foreach (var p in plans[..2])
        {
            Assert.Equal(PlanKind.Ladder, p.Kind);
            Assert.Equal([1, 2, 4], p.Ladder!.Boundaries);
            Assert.All(p.Ladder.Reuse, r => Assert.Null(r));
        }
        Assert.Equal([PlanKind.Cache, PlanKind.Refresh, PlanKind.Refresh, PlanKind.Reuse], plans[2..].Select(p => p.Kind));
        Assert.All(plans[2..], p => Assert.Equal(b, p.Boundary));
        Assert.Equal([1, 4], plans[3].Rows!);   // sample 1 and its uncond row cache at step 3
        Assert.Equal([b, b, b], policy.SampleBoundaries!);

        var r = SamplingSession.Run(model, new SamplingOptions
            { Classes = [0, 1, 2, 3], Steps = 6, Cfg = 4f, Seed = 3, Policy = () => new AdaPolicy(w) });
        // reuse steps per sample 2 + 2 + 3 + 0 (of 4 samples), each skipping blocks 0..b
        Assert.Equal(7 / 4.0 * (b + 1), r.BlocksSkipped, 9);
    }

    [SkippableFact]
    public void MixedBoundaries_EachSampleEqualsSamplingItAlone()
    {
        var dev = Device;
        using var model = Demo(dev);
        var w = AdaBoundaryTests.ClassBoundaryTable(model.Config, Table, [0, 2, 1, 0, 0, 0, 0, 0, 0, 0]);
        SamplingResult Run(int batch) => SamplingSession.Run(model, new SamplingOptions
            { Classes = [0, 1, 2, 3], Steps = 6, Cfg = 4f, Seed = 9, Batch = batch, Policy = () => new AdaPolicy(w) });
        var together = Run(4);
        var alone = Run(1);
        Assert.Equal(alone.Samples, together.Samples);
        using (var policy = new AdaPolicy(w))
        {
            var layout = new CfgLayout(4, Guided: true);
            policy.Begin(PlanRunner.Stack(model.Shape, layout), dev, 6);
            using var x = Tensor.FromHost(dev, "x", new float[4 * 196], 4, 1, 14, 14);
            var plans = Enumerable.Range(0, 6).Select(s => policy.Plan(new StepContext(s, 6, 0, x, [0, 1, 2, 3], layout))).ToList();
            Assert.Equal([1, 2, 4], plans[3].Ladder!.Boundaries);                         // the boundaries chosen in the batch
            Assert.Equal([1, null, 2, null, 1, null, 2, null], plans[3].Ladder!.Reuse);   // step 3: samples 0 (b 1) and 2 (b 2) reuse
        }
        // class 0: 2 reuse steps at b = 1, class 1: 2 at b = 4, class 2: 3 at b = 2, class 3: none → per sample
        Assert.Equal((2 * 2 + 2 * 5 + 3 * 3) / 4.0, together.BlocksSkipped, 9);
        Assert.Equal(alone.BlocksComputed, together.BlocksComputed, 9);
    }

    [SkippableFact]
    public void AllCache_LearnedBoundary_IsBitIdenticalToNoCache()
    {
        var dev = Device;
        using var model = Demo(dev);
        var allCache = Enumerable.Range(0, 10).Select(_ => new[] { true, true, true, true }).ToArray();
        var w = AdaBoundaryTests.ClassBoundaryTable(model.Config, allCache, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0]);
        SamplingResult Run(Func<ICachePolicy> p) => SamplingSession.Run(model, new SamplingOptions
            { Classes = [1, 3, 5], Steps = 6, Cfg = 4f, Seed = 2, Policy = p });
        var none = Run(() => new NoCache());
        var ada = Run(() => new AdaPolicy(w));
        Assert.Equal(0, ada.BlocksSkipped);
        Assert.Equal(none.Samples, ada.Samples);
    }

    [SkippableFact]
    public void DeviceBoundaryLogits_MatchHostReference()
    {
        var dev = Device;
        var info = AdaPolicyInfo.Learned(50, 20, 1, 14, 14, 10, 32, [1, 2, 3, 4], 2);
        var w = AdaTests.RandomWeights(info, 6);
        int n = 5;
        var x = Tolerance.Random(6, n * info.Pixels, 2f);
        int[] labels = [3, 0, 9, 4, 4];
        using var net = new AdaDecisionNetwork(dev, w);
        using var xt = Tensor.FromHost(dev, "x", x, n, 1, 14, 14);
        var got = net.Forward(xt, labels);
        var want = Enumerable.Range(0, n).SelectMany(i => w.ForwardAll(w.Input(x, i, labels[i])).BoundaryLogits.Select(z => (float)z)).ToArray();
        Tolerance.AssertClose(want, got.Boundaries!, 1e-4, 1e-4, "boundary logits", output);
        Assert.Equal(n * 30, got.Steps.Length);
    }
}

public sealed class CpuAdaBoundaryTests(ITestOutputHelper output) : AdaBoundaryDeviceTests("cpu", output);
public sealed class CudaAdaBoundaryTests(ITestOutputHelper output) : AdaBoundaryDeviceTests("cuda", output);
