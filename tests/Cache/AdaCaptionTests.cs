// BlockDance-Ada on the caption models (PixArt-α, Open-Sora 1.0's STDiT): the caption summary the network reads (masked
// mean), the caption/video policy file's entries and its refusals, and as a user runs it on the tiny fixtures: train-ada
// with --prompt-embeds writes a caption policy that `sample --cache ada` and `eval --cache ada` run; a policy whose every
// decision is "cache" samples the bits of --cache none; a policy of another model kind is refused in one line before the
// device starts. On a device: RowConcat vs its reference, the caption network's device forward vs the host reference,
// and in a real sampling run the decisions the policy makes are the host reference forward's on that run's z_ρ and
// caption summaries (which are the masked means of the prompts).
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler.Ada;
using BlockDance.Sampling;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class AdaCaptionTests(ITestOutputHelper output)
{
    internal static readonly (string Model, string Embeds, string[] Extra)[] Fixtures =
        [("pixart_tiny", "pixart_traj.safetensors", []), ("stdit_tiny", "stdit_traj.safetensors", ["--frames", "3"])];

    static (string Model, string Embeds, string[] Extra) Of(string name) => Fixtures.Single(f => f.Model == name);

    [Fact]
    public void MaskedMean_AveragesTheKeptTokensOnly()
    {
        // 2 captions × 3 tokens × 2 channels; caption 0 keeps tokens 0, 1; caption 1 keeps token 2 only
        float[] e = [1, 2, 3, 4, 100, 100, /* caption 1 */ 100, 100, 100, 100, 5, -6];
        float[] m = [1, 1, 0, 0, 0, 1];
        var s = new CaptionSet(e, m, 2, 3, 2);
        Assert.Equal([2f, 3f, 5f, -6f], s.MaskedMean());
        Assert.Equal([5f, -6f, 2f, 3f], s.Pick([1, 0]).MaskedMean());
        Assert.Equal([0f, 0f], new CaptionSet([1, 2], [0], 1, 1, 2).MaskedMean());   // nothing kept: zeros, not NaN
    }

    static AdaWeights Caption(int steps, int rho, int channels, int frames, int size, int width, int hidden, int seed) =>
        AdaTests.RandomWeights(new AdaPolicyInfo(steps, rho, channels, size, size, 0, hidden, 0, 2, Frames: frames, CaptionWidth: width), seed);

    [Fact]
    public void CaptionAndVideoPolicies_RoundTrip_AndSayTheirCondition()
    {
        var dir = CliRunner.TempDir();
        foreach (var w in new[] { Caption(5, 2, 4, 0, 8, 32, 6, 1), Caption(5, 2, 4, 3, 8, 16, 6, 2) })
        {
            var path = Path.Combine(dir, $"p{w.Info.Frames}.safetensors");
            w.Save(path);
            using (var f = SafeTensorsFile.Open(path))
            {
                Assert.Equal("caption", f.Metadata["condition"]);
                Assert.Equal(w.Info.CaptionWidth.ToString(), f.Metadata["caption_width"]);
                Assert.False(f.Metadata.ContainsKey("classes"));
                Assert.Equal(w.Info.Frames == 0 ? "4,8,8" : "4,3,8,8", f.Metadata["input_shape"]);
                Assert.Equal([6L, w.Info.Pixels + w.Info.CaptionWidth], f.Tensors.Single(t => t.Name == "fc1.weight").Shape);
            }
            var back = AdaWeightsFile.Load(path);
            Assert.Equal((w.Info.Frames, w.Info.CaptionWidth, 0, w.Info.Pixels), (back.Info.Frames, back.Info.CaptionWidth, back.Info.Classes, back.Info.Pixels));
            Assert.Equal(w.Fc1W, back.Fc1W);
        }
    }

    [Theory]
    [InlineData("condition", "text", "'condition': expected class or caption, found 'text'")]
    [InlineData("caption_width", null, "no 'caption_width'")]
    [InlineData("classes", "10", "has no 'classes', found one")]
    [InlineData("input_shape", "4,8", "'input_shape': expected \"C,H,W\" (or \"C,F,H,W\" for video), found '4,8'")]
    [InlineData("caption_width", "31", "fc1.weight")]
    public void BadCaptionFiles_AreRefused_NamingExpectedAndFound(string key, string? value, string message)
    {
        var dir = CliRunner.TempDir();
        var good = Path.Combine(dir, "good.safetensors");
        Caption(5, 2, 4, 0, 8, 32, 6, 1).Save(good);
        var (tensors, md) = HostileFiles.Read(good);
        if (value == null) md.Remove(key); else md[key] = value;
        var bad = Path.Combine(dir, "bad.safetensors");
        SafeTensorsWriter.Write(bad, tensors.Select(t => (t.Name, t.Shape, t.Data)), md);
        var e = Assert.Throws<SafeTensorsException>(() => AdaWeightsFile.Load(bad));
        output.WriteLine(e.Message);
        Assert.Contains(message, e.Message);
        Assert.DoesNotContain('\n', e.Message);
    }

    [Theory]
    [InlineData("pixart_tiny", "4,8,8", 32, 0)]    // 2 blocks: the default boundary ⌊0.75·2⌋ − 1 = 0
    [InlineData("stdit_tiny", "4,3,8,8", 16, 1)]   // 3 blocks: 1
    public void TrainAda_OnACaptionModel_WritesACaptionPolicy_ThatSampleAndEvalRun(string fixture, string inputShape, int width, int boundary)
    {
        var (model, embeds, extra) = Of(fixture);
        var dir = CliRunner.TempDir();
        var policy = Path.Combine(dir, "ada.safetensors");
        string[] common = ["--model", CliRunner.Fixture(model), "--prompt-embeds", CliRunner.Fixture(embeds), "--device", "cpu", "--steps", "5", .. extra];
        var (code, stdout, err) = CliRunner.Run(["train-ada", .. common, "--samples", "2", "--batch", "2", "--epochs", "2", "--hidden", "8", "--out", policy]);
        output.WriteLine(stdout + err);
        Assert.True(code == 0, err);
        Assert.Contains("epoch   2/2", stdout);
        Assert.Contains($"+ {width} (caption summary) → 8 ReLU → 3", stdout);
        var w = AdaWeightsFile.Load(policy);
        Assert.Equal((5, 2, 3, 8, boundary, width, 0), (w.Info.Steps, w.Info.Rho, w.Info.Decisions, w.Info.Hidden, w.Info.Boundary, w.Info.CaptionWidth, w.Info.Classes));
        Assert.Equal(inputShape, w.Metadata["input_shape"]);
        Assert.Equal("caption", w.Metadata["condition"]);
        Assert.Equal("prompt_embeds " + embeds, w.Metadata["train_prompts"]);
        Assert.Equal(fixture, w.Metadata["train_model"]);

        (code, stdout, err) = CliRunner.Run(["sample", .. common, "--sampler", "ddim", "--cache", "ada", "--policy", policy, "--out", Path.Combine(dir, "x.safetensors")]);
        output.WriteLine(stdout + err);
        Assert.True(code == 0, err);
        Assert.Contains($"ada b={boundary} rho=2/5 (ada.safetensors)", stdout);
        Assert.Contains("ada: decision network (", err + stdout);
        (code, stdout, err) = CliRunner.Run(["eval", .. common, "--per-class", "2", "--repeats", "1", "--cache", "ada,bd2", "--policy", policy]);
        output.WriteLine(stdout + err);
        Assert.True(code == 0, err);
        Assert.Matches($@"\| ada( ★)? \| b={boundary}, rho=2, \d+% of steps ≥ rho reused", stdout);
        Assert.Contains("reads z_rho and the caption summary", stdout);
    }

    [Fact]
    public void TrainAda_OnACaptionModel_WritesBesideIt_WhereCacheAdaLooks()
    {
        var dir = CliRunner.TempDir();
        var model = Path.Combine(dir, "pixart_tiny");
        foreach (var f in Directory.GetFiles(CliRunner.Fixture("pixart_tiny"), "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(model, Path.GetRelativePath(CliRunner.Fixture("pixart_tiny"), f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }
        string[] common = ["--model", model, "--prompt-embeds", CliRunner.Fixture("pixart_traj.safetensors"), "--device", "cpu", "--steps", "4"];
        var (code, _, err) = CliRunner.Run(["train-ada", .. common, "--samples", "2", "--batch", "2", "--epochs", "1", "--hidden", "4"]);
        Assert.True(code == 0, err);
        Assert.True(File.Exists(Path.Combine(dir, "pixart_tiny.ada_policy.safetensors")));
        Assert.False(File.Exists(Path.Combine(dir, "models", "ada_policy.safetensors")));
        (code, var stdout, err) = CliRunner.Run(["sample", .. common, "--cache", "ada", "--out", Path.Combine(dir, "x.safetensors")]);
        Assert.True(code == 0, err);
        Assert.Contains("(pixart_tiny.ada_policy.safetensors)", stdout);
    }

    /// <summary>A caption policy whose every decision is "cache" (m ≡ 1 whatever the input).</summary>
    static AdaWeights AllCache(AdaPolicyInfo info)
    {
        var w = AdaWeights.Init(info, 3);
        Array.Fill(w.Fc2B, 100f);
        Array.Clear(w.Fc2W);
        return w;
    }

    [Theory]
    [InlineData("pixart_tiny", 0, 32)]
    [InlineData("stdit_tiny", 3, 16)]
    public void AllCachePolicy_SamplesTheBitsOfNoCache(string fixture, int frames, int width)
    {
        var (model, embeds, extra) = Of(fixture);
        var dir = CliRunner.TempDir();
        var policy = Path.Combine(dir, "all.safetensors");
        AllCache(new AdaPolicyInfo(6, 2, 4, 8, 8, 0, 4, 0, 2, Frames: frames, CaptionWidth: width)).Save(policy);
        string[] common = ["sample", "--model", CliRunner.Fixture(model), "--prompt-embeds", CliRunner.Fixture(embeds), "--device", "cpu", "--steps", "6", .. extra];
        float[] Sample(string name, params string[] cache)
        {
            var path = Path.Combine(dir, name);
            var (code, stdout, err) = CliRunner.Run([.. common, .. cache, "--out", path]);
            Assert.True(code == 0, err + stdout);
            using var f = SafeTensorsFile.Open(path);
            return f.ReadFloat32("sample");
        }
        var none = Sample("none.safetensors", "--cache", "none");
        Assert.Equal(none, Sample("ada.safetensors", "--cache", "ada", "--policy", policy));
    }

    [Theory]
    [InlineData("pixart_tiny", "class", "a class-conditioned policy (5 classes), the model is conditioned on captions of width 32")]
    [InlineData("stdit_tiny", "pixart", "reads image samples of 4×8×8, the model makes video samples of 4×3×8×8")]
    [InlineData("pixart_tiny", "width", "trained for captions of width 16, the model has captions of width 32")]
    public void PolicyOfAnotherModel_IsRefusedInOneLine_BeforeTheDevice(string fixture, string policyKind, string message)
    {
        var (model, embeds, extra) = Of(fixture);
        var dir = CliRunner.TempDir();
        var policy = Path.Combine(dir, "p.safetensors");
        var info = policyKind switch
        {
            "class" => new AdaPolicyInfo(6, 2, 4, 8, 8, 5, 4, 0, 2),
            "pixart" => new AdaPolicyInfo(6, 2, 4, 8, 8, 0, 4, 0, 2, CaptionWidth: 32),
            _ => new AdaPolicyInfo(6, 2, 4, 8, 8, 0, 4, 0, 2, CaptionWidth: 16),
        };
        AllCache(info).Save(policy);
        foreach (var command in new[] { "sample", "eval" })
        {
            var (code, stdout, err) = CliRunner.Run([command, "--model", CliRunner.Fixture(model), "--prompt-embeds", CliRunner.Fixture(embeds), "--device", "cpu",
                "--steps", "6", .. extra, "--cache", "ada", "--policy", policy, .. command == "sample" ? new[] { "--out", Path.Combine(dir, "x.png") } : []]);
            HostileFiles.AssertOneLineError(code, err, message);
            Assert.DoesNotContain("device:", stdout);
        }
        Assert.False(File.Exists(Path.Combine(dir, "x.png")));
    }

    [Theory]
    [InlineData("pixart_tiny", "PixArt-α")]
    [InlineData("stdit_tiny", "STDiT")]
    public void TrainAda_CaptionModelWithoutPrompts_IsRefusedInOneLine_BeforeTheDevice(string fixture, string kind)
    {
        var (code, stdout, err) = CliRunner.Run("train-ada", "--model", CliRunner.Fixture(fixture), "--device", "cpu", "--out", Path.Combine(CliRunner.TempDir(), "p.safetensors"));
        HostileFiles.AssertOneLineError(code, err, $"train-ada: expected the training prompts for the text-conditional {kind} model");
        Assert.Contains("--prompt TEXT (repeatable) or --prompt-embeds FILE, found neither", err);
        Assert.DoesNotContain("device:", stdout);
    }

    [Fact]
    public void TrainAda_PromptOptionsOnADiT_AreRefused()
    {
        var (code, _, err) = CliRunner.Run("train-ada", "--model", CliRunner.Fixture("dit_p4.weights.safetensors"), "--device", "cpu", "--prompt", "a dog",
            "--out", Path.Combine(CliRunner.TempDir(), "p.safetensors"));
        HostileFiles.AssertOneLineError(code, err, "--prompt: expected a text-conditional PixArt-α or STDiT model");
    }
}

/// <summary>The caption network on a device: RowConcat, the device forward, and the decisions of a real sampling run.</summary>
public abstract class AdaCaptionDeviceTests(string kind, ITestOutputHelper output) : DeviceTest(kind)
{
    [SkippableFact]
    public void RowConcat_MatchesReference()
    {
        var dev = Device;
        int n = 3, p = 5, q = 4;
        var a = Tolerance.Random(3, n * p);
        var b = Tolerance.Random(4, n * q);
        var want = new float[n * (p + q)];
        RowConcat.Reference(a, b, want, n, p, q);
        Assert.Equal([.. a[..5], .. b[..4]], want[..9]);
        Assert.Equal([.. a[10..15], .. b[8..12]], want[18..27]);
        using var at = Tensor.FromHost(dev, "a", a, n, p);
        using var bt = Tensor.FromHost(dev, "b", b, n, q);
        using var o = Tensor.Allocate(dev, "o", n, p + q);
        RowConcat.Run(dev, at.View, bt.View, o.View, n, p, q);
        Assert.Equal(want, o.ToHost());
    }

    [SkippableTheory]
    [InlineData(1, 3)]
    [InlineData(2, 8)]
    public void CaptionNetwork_DeviceForward_MatchesHostReference(int seed, int n)
    {
        var dev = Device;
        var info = new AdaPolicyInfo(20, 8, 1, 14, 14, 0, 64, 3, 2, CaptionWidth: 64);
        var w = AdaTests.RandomWeights(info, seed);
        var x = Tolerance.Random(seed, n * info.Pixels, 2f);
        var c = Tolerance.Random(seed + 10, n * 64, 0.5f);
        using var net = new AdaDecisionNetwork(dev, w);
        using var xt = Tensor.FromHost(dev, "x", x, n, 1, 14, 14);
        using var ct = Tensor.FromHost(dev, "c", c, n, 64);
        var got = net.Forward(xt, new int[n], ct).Steps;
        var want = new float[n * info.Decisions];
        for (int i = 0; i < n; i++)
        {
            var (_, z) = w.Forward(w.Input(x, i, c));
            for (int t = 0; t < z.Length; t++) want[i * info.Decisions + t] = (float)z[t];
        }
        Tolerance.AssertClose(want, got, 1e-4, 1e-4, "ada caption logits", output);   // float32 GEMM vs the double reference
        Assert.Throws<ArgumentException>(() => net.Forward(xt, new int[n]));            // a caption network needs the captions
    }

    /// <summary>Wraps a policy and keeps what it saw at step ρ: the samples z_ρ and the caption summaries.</summary>
    sealed class Spy(AdaPolicy inner) : ICachePolicy
    {
        public float[]? Z, Captions;
        public string Describe() => inner.Describe();
        public long MemoryBytes => inner.MemoryBytes;
        public void Check(BlockStack stack, int steps) => inner.Check(stack, steps);
        public void Begin(BlockStack stack, ComputeDevice device, int steps) => inner.Begin(stack, device, steps);
        public BlockPlan Plan(StepContext step)
        {
            if (step.Step == inner.Info.Rho) (Z, Captions) = (step.X.ToHost(), step.Captions!.ToHost());
            return inner.Plan(step);
        }
        public void Dispose() => inner.Dispose();
    }

    [SkippableTheory]
    [InlineData("pixart_tiny")]
    [InlineData("stdit_tiny")]
    public void SamplingRun_DecidesWhatTheHostReferenceForwardDecides(string fixture)
    {
        var dev = Device;
        const int steps = 8, samples = 3;
        IBlockModel model;
        PromptEmbeds prompts;
        SamplingOptions opts;
        if (fixture == "pixart_tiny")
        {
            var pixart = PixArt.Load(dev, CliRunner.Fixture(fixture));
            var p = PromptEmbeds.Load(CliRunner.Fixture("pixart_traj.safetensors"), null, pixart.PixArtConfig.CaptionChannels);
            (model, prompts, opts) = (pixart, p, PixArtPipeline.DefaultOptions);
        }
        else
        {
            var stdit = STDiT.Load(dev, CliRunner.Fixture(fixture));
            var p = PromptEmbeds.Load(CliRunner.Fixture("stdit_traj.safetensors"), null, stdit.VideoConfig.CaptionChannels).Prompts;
            (model, prompts, opts) = (stdit, new PromptEmbeds(p, STDiTPipeline.NullCaptions(p, stdit.NullCaption, stdit.VideoConfig)), STDiTPipeline.DefaultOptions);
        }
        using var dispose = (IDisposable)model;
        var shape = model.Shape;
        var info = new AdaPolicyInfo(steps, 3, shape.InChannels, shape.InputSize, shape.InputSize, 0, 16, 0, 2, Frames: shape.Frames, CaptionWidth: shape.CaptionChannels);
        var w = AdaTests.RandomWeights(info, 7);
        var conditioning = new Captions(prompts).Cycle(samples);
        Spy? spy = null;
        AdaPolicy? ada = null;
        SamplingSession.Run(model, conditioning, opts with { Steps = steps, Seed = 4, Policy = () => spy = new Spy(ada = new AdaPolicy(w)) });
        // what the denoiser passed: each sample's caption summary (the masked mean of its prompt)
        Assert.Equal(((Captions)conditioning).Prompts.Prompts.MaskedMean(), spy!.Captions);
        var got = ada!.Decisions!;
        for (int i = 0; i < samples; i++)
        {
            var (_, z) = w.Forward(w.Input(spy.Z!, i, spy.Captions!));
            Assert.All(z, v => Assert.True(Math.Abs(v) > 1e-3, $"logit {v} too close to the threshold to compare"));
            Assert.Equal(z.Select(v => v >= 0).ToArray(), got[i]);
        }
        output.WriteLine($"{fixture}: decisions {string.Join(" | ", got.Select(d => string.Concat(d.Select(c => c ? '1' : '0'))))}");
    }
}

public sealed class CpuAdaCaptionTests(ITestOutputHelper output) : AdaCaptionDeviceTests("cpu", output);
public sealed class CudaAdaCaptionTests(ITestOutputHelper output) : AdaCaptionDeviceTests("cuda", output);
