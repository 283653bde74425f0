// `blockdance eval` end to end on the CPU accelerator with few steps: the table rows, the reference
// row (none: PSNR inf, SSIM 1), BlockDance skipping blocks, the n/a path for models the digit
// classifier does not apply to, the digit path on the demo model, and bad input (exit 2).
using BlockDance.Cache;
using BlockDance.Sampler;
using BlockDance.Sampler.Commands;
using BlockDance.Sampler.Evaluation;
using BlockDance.Sampler.SelfTest;
using BlockDance.Transformer;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests.Evaluation;

public class EvalCommandTests(ITestOutputHelper output)
{
    static readonly string P4 = CliRunner.Fixture("dit_p4.weights.safetensors");   // 3-channel 16×16, 5 classes, depth 2
    static readonly string P2 = CliRunner.Fixture("dit_p2.weights.safetensors");   // 4-channel latent model

    /// <summary>The cells of the row of `method` whose setting starts with `setting`.</summary>
    static string[] Row(string stdout, string method, string setting = "") =>
        stdout.Split('\n').Select(l => l.Split('|', StringSplitOptions.TrimEntries)).Where(c => c.Length > 3)
            .Select(c => c[1..^1]).Single(c => c[0].TrimEnd('★', ' ') == method && c[1].StartsWith(setting, StringComparison.Ordinal));

    [Fact]
    public void Eval_FixtureModel_TableRows_NoneIsReference_Bd2SkipsBlocks_ClassifierNa()
    {
        var dir = CliRunner.TempDir();
        var md = Path.Combine(dir, "eval.md");
        var (code, stdout, stderr) = CliRunner.Run("eval", "--model", P4, "--device", "cpu", "--per-class", "1", "--steps", "4", "--out-md", md);
        output.WriteLine(stdout + stderr);
        Assert.True(code == 0, stderr);
        Assert.Contains("5 samples per setting (1 per class × 5 classes)", stdout);
        Assert.Contains("| method | setting | wall-clock s | s/sample | speedup wall | speedup FLOP | speedup blocks | blocks skipped | " +
                        "PSNR dB [95% CI] | SSIM [95% CI] | accuracy [95% CI] | FID [95% CI] | samples | CPU s | speedup CPU |", stdout);

        var none = Row(stdout, "none");
        Assert.Equal(15, none.Length);
        Assert.Equal(["1.000×", "1.000×", "1.000×", "0 of 8 (0.0%)", "inf", "1.0000"], none[4..10]);   // 4 steps × 2 blocks
        Assert.Equal(["n/a", "n/a", "5"], none[10..13]);
        // the CPU backend's CPU-time columns: none's own median over itself, and a time that was measured (> 0)
        Assert.Equal("1.000×", none[14]);
        Assert.True(double.Parse(none[13], System.Globalization.CultureInfo.InvariantCulture) > 0, none[13]);
        Assert.Contains("CPU s: the process's CPU time (user + system, all its threads)", stdout);

        // depth 2 → boundary b = 0; window [0.25, 0.95) of 4 steps = steps 1..3; N = 2 reuses step 2 → block 0 skipped once
        var bd2 = Row(stdout, "blockdance", "N=2");
        Assert.Equal("N=2, b=0", bd2[1]);
        Assert.Equal("1 of 8 (12.5%)", bd2[7]);
        Assert.Equal("1.143×", bd2[6]);                  // 8 / 7 block evaluations
        // PSNR and SSIM to the uncached samples, recomputed here from the same sampling runs (seed 0, classes 0..4, cfg 4)
        using (var model = FixtureChecks.LoadModel(TestDevices.Get("cpu"), CliRunner.Fixtures, "dit_p4"))
        {
            var opts = new SamplingOptions { Classes = [0, 1, 2, 3, 4], Steps = 4, Cfg = 4f, Seed = 0 };
            var reference = ImageMetrics.ToUnitRange(SamplingSession.Run(model, opts).Samples);
            var cached = SamplingSession.Run(model, opts with { Policy = () => new BlockDancePolicy(new BlockDanceConfig(N: 2)) });
            var img = ImageMetrics.ToUnitRange(cached.Samples);
            var inv = System.Globalization.CultureInfo.InvariantCulture;
            Assert.StartsWith(ImageMetrics.Psnr(img, reference).ToString("F2", inv) + " [", bd2[8]);
            Assert.StartsWith(ImageMetrics.MeanSsim(img, reference, cached.Shape).ToString("F4", inv) + " [", bd2[9]);
            Assert.Equal((cached.FlopsUncached / (double)cached.FlopsComputed).ToString("F3", inv) + "×", bd2[5]);
        }
        Assert.Equal("2 of 8 (25.0%)", Row(stdout, "blockdance", "N=3")[7]);   // N = 3: steps 2, 3 reuse
        Assert.Equal("2 of 8 (25.0%)", Row(stdout, "blockdance", "N=4")[7]);
        Assert.Contains("[95% CI]: percentile bootstrap over the samples (1000 resamples", stdout);
        Assert.Contains("Command: `blockdance eval --model", stdout);
        Assert.Contains("n/a: the MNIST digit classifier reads 1-channel 14×14 images of 10 classes; " +
                        "the model makes 3-channel 16×16 images of 5 classes", stdout);
        Assert.Contains("| N=4, b=0 |", File.ReadAllText(md));
    }

    [Fact]
    public void Eval_BdWithItsOwnBlock_LabelsThatBoundary()
    {
        var model = MetricsTests.RepoFile("models/dit_mnist.safetensors")!;   // depth 6: default boundary b = 3
        var (code, stdout, stderr) = CliRunner.Run("eval", "--model", model, "--device", "cpu", "--per-class", "1", "--steps", "4",
            "--repeats", "1", "--cache", "bd2,bd2:block=1");
        Assert.True(code == 0, stderr);
        Assert.Equal("4 of 24 (16.7%)", Row(stdout, "blockdance", "N=2, b=3")[7]);   // blocks 0..3 on the one reuse step
        Assert.Equal("2 of 24 (8.3%)", Row(stdout, "blockdance", "N=2, b=1")[7]);    // block=1: blocks 0..1
    }

    [SkippableFact]
    public void Eval_DemoDigitModel_FillsAccuracyAndFid()
    {
        var model = MetricsTests.RepoFile("models/dit_mnist.safetensors");
        Skip.If(model is null || MetricsTests.RepoFile("models/mnist_fid_stats.safetensors") is null, "demo model or FID stats not found");
        var (code, stdout, stderr) = CliRunner.Run("eval", "--model", model!, "--device", "cpu", "--per-class", "1", "--steps", "4", "--cache", "bd2");
        output.WriteLine(stdout + stderr);
        Assert.True(code == 0, stderr);
        var none = Row(stdout, "none");
        Assert.Equal("10", none[12]);
        // accuracy and FID of the uncached row, recomputed here: the same 10 samples (seed 0, classes 0..9, cfg 4),
        // the classifier on the device, the Fréchet distance to the committed real-digit statistics
        var dev = TestDevices.Get("cpu");
        using (var dit = ModelLoader.Load(dev, model!))
        using (var classifier = DigitClassifier.Load(dev, MetricsTests.RepoFile("models/mnist_classifier.safetensors")!))
        {
            int[] classes = [.. Enumerable.Range(0, 10)];
            var samples = SamplingSession.Run(dit, new SamplingOptions { Classes = classes, Steps = 4, Cfg = 4f, Seed = 0 });
            var c = classifier.Run(ImageMetrics.ToUnitRange(samples.Samples), classes.Length);
            var real = FidStats.Load(MetricsTests.RepoFile("models/mnist_fid_stats.safetensors")!, DigitClassifier.FeatureDim);
            var inv = System.Globalization.CultureInfo.InvariantCulture;
            Assert.StartsWith(c.Accuracy(classes).ToString("F3", inv), none[10]);
            Assert.StartsWith(Fid.Distance(FidStats.FromFeatures(c.Features, classes.Length, DigitClassifier.FeatureDim), real).ToString("F2", inv) + " [", none[11]);
        }
        Assert.Contains("FID: Fréchet distance", stdout);
        Assert.Equal("4 of 24 (16.7%)", Row(stdout, "blockdance", "N=2")[7]);   // depth 6 → b = 3: blocks 0..3 skipped at step 2
    }

    [Fact]
    public void ParsePolicies_PutsNoneFirst_AcceptsAliases()
    {
        Assert.Equal(["none", "bd3", "bd2"], EvalCommand.ParsePolicies("bd3,blockdance2").Select(p => p.Name));
        Assert.Equal(["none", "bd2"], EvalCommand.ParsePolicies("bd2, none").Select(p => p.Name));
        Assert.Equal([null, 4], EvalCommand.ParsePolicies("BD4").Select(p => p.N));
    }

    public static TheoryData<string[], string> BadOptions => new()
    {
        { ["--cache", "none,magic"], "--cache: expected one of none, fora, delta-dit" },
        { ["--cache", "bd0"], "found 'bd0'" },
        { ["--cache", "teacache:delta=x"], "--cache teacache:delta: expected a finite number, found 'x'" },
        { ["--cache", "fbcache:speed=2"], "--cache fbcache: expected key=value with key one of threshold, found 'speed=2'" },
        { ["--cache", "bd2,bd2"], "policy 'bd2' is listed twice" },
        { ["--cache", ","], "--cache: expected at least one policy" },
        { ["--per-class", "0"], "--per-class: expected 1..100000, found 0" },
        { ["--per-class", "x"], "--per-class: expected an integer, found 'x'" },
        { ["--quick", "--per-class", "3"], "use either --quick or --per-class" },
        { ["--steps", "0"], "--steps: expected 1..1000, found 0" },
        { ["--cache-block", "1"], "--cache-block: expected 0..0 for a 2-block model" },
        { ["--classifier", "x.safetensors"], "the digit classifier reads 1-channel 14×14 images of 10 classes" },
        { ["--bogus"], "unknown option '--bogus'" },
        { ["--repeats", "0"], "--repeats: expected 1..100, found 0" },
        { ["--batch-sweep", "1,0"], "--batch-sweep: expected batch sizes 1..4096 separated by commas (e.g. 1,2,4,8,16,32,64), found '0'" },
        { ["--batch-sweep", "4,2"], "--batch-sweep: expected increasing batch sizes, found 2 after 4" },
        { ["--batch-sweep", "1,x"], "found 'x'" },
        { ["--batch-cache", "bd2"], "--batch-cache: applies with --batch-sweep only" },
        { ["--batch-sweep", "1,2", "--batch-cache", "bd2,magic"], "--batch-cache: expected one of none, fora" },
        { ["--prompt-embeds", "x.safetensors"], "--prompt-embeds: expected a text-conditional PixArt-α folder" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void BadOption_Exit2_NamesExpectedAndFound(string[] extra, string message)
    {
        var (code, _, err) = CliRunner.Run(["eval", "--model", P4, "--device", "cpu", .. extra]);
        output.WriteLine(err);
        Assert.Equal(2, code);
        Assert.Contains(message, err);
        Assert.DoesNotContain("   at ", err);
    }

    [Fact]
    public void LatentModelWithoutVae_MeasuresTheLatents()
    {
        var (code, stdout, err) = CliRunner.Run("eval", "--model", P2, "--device", "cpu", "--per-class", "1", "--steps", "3", "--cache", "bd2", "--repeats", "1");
        output.WriteLine(stdout + err);
        Assert.True(code == 0, err);
        Assert.Contains("measured on latents (no VAE found): mapped by the uncached latents' range", stdout);
        Assert.Equal("inf", Row(stdout, "none")[8]);
    }

    [Fact]
    public void PlotFrom_ReadsEvalTable_WritesPngAndSvg_RefusesBadRows()
    {
        var dir = CliRunner.TempDir();
        var md = Path.Combine(dir, "eval.md");
        File.WriteAllText(md, """
            **blockdance eval**: 4 samples per setting, DDIM 10 steps, cfg 4; m.safetensors (DiT); CPU accelerator: x

            | method | setting | wall-clock s | s/sample | speedup wall | speedup FLOP | speedup blocks | blocks skipped | PSNR dB [95% CI] | SSIM [95% CI] | accuracy [95% CI] | FID [95% CI] | samples |
            |---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|
            | none ★ |  | 2.00 | 0.5000 | 1.000× | 1.000× | 1.000× | 0 of 60 (0.0%) | inf | 1.0000 | n/a | n/a | 4 |
            | blockdance | N=2, b=3 | 1.50 | 0.3750 | 1.333× | 1.250× | 1.25× | 10 of 60 | 35.5 [34.1, 36.2] | 0.9990 [0.9980, 0.9995] | n/a | n/a | 4 |
            """);
        var (points, caption) = EvalTableReader.Read(md);
        Assert.Equal([0.5, 0.375], points.Select(p => p.Seconds));
        Assert.Equal([1.0, 0.8], points.Select(p => p.FlopFraction));
        Assert.Equal(["none", "blockdance"], points.Select(p => p.Method));
        Assert.Equal(35.5, points[1].Psnr);
        Assert.True(double.IsPositiveInfinity(points[0].Psnr));
        Assert.Equal("m.safetensors: 4 samples per setting, DDIM 10 steps, cfg 4; CPU accelerator", caption);
        var (code, _, err) = CliRunner.Run("eval", "--plot-from", md, "--plot", Path.Combine(dir, "p.svg"));
        Assert.True(code == 0, err);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(Path.Combine(dir, "p.png"))[..4]);
        Assert.Contains("<svg", File.ReadAllText(Path.Combine(dir, "p.svg")));
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(Path.Combine(dir, "p_flops.png"))[..4]);   // the FLOP-axis figure

        File.WriteAllText(md, File.ReadAllText(md).Replace("35.5 [", "abc ["));
        var (code2, _, err2) = CliRunner.Run("eval", "--plot-from", md, "--plot", Path.Combine(dir, "q.png"));
        Assert.Equal(2, code2);
        Assert.Contains("column PSNR dB [95% CI]: expected a number, found 'abc [34.1, 36.2]'", err2);
        Assert.False(File.Exists(Path.Combine(dir, "q.png")));
    }
}
