// eval beyond the class-conditional DiT, and its measurement parts: the bootstrap intervals against hand-computed and
// published references, eval on the PixArt-α tiny fixture (fidelity on VAE-decoded pixels, no classifier), the batch
// sweep's table and per-sample decisions, and bench --batch-sweep's refusals. No timing is asserted.
using BlockDance.Sampler.Commands;
using BlockDance.Sampler.Evaluation;
using BlockDance.Sampler.SelfTest;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests.Evaluation;

public class EvalKindsTests(ITestOutputHelper output)
{
    static readonly string PixArt = CliRunner.Fixture("pixart_tiny");
    static readonly string Embeds = CliRunner.Fixture("pixart_traj.safetensors");   // one prompt with its negative
    static readonly string P4 = CliRunner.Fixture("dit_p4.weights.safetensors");

    static string[] Row(string stdout, string method, string setting = "") =>
        stdout.Split('\n').Select(l => l.Split('|', StringSplitOptions.TrimEntries)).Where(c => c.Length > 3)
            .Select(c => c[1..^1]).Single(c => c[0].TrimEnd('★', ' ') == method && c[1].StartsWith(setting, StringComparison.Ordinal));

    [Fact]
    public void SplitMix64_MatchesThePublishedFirstValue()
    {
        ulong state = 0;
        Assert.Equal(0xE220A8397B1DCDAFUL, Bootstrap.SplitMix64(ref state));   // Vigna's splitmix64.c, seed 0
        Assert.Equal(0x6E789E6AA1B965F4UL, Bootstrap.SplitMix64(ref state));
    }

    [Fact]
    public void Bootstrap_MatchesTheHandComputedReference()
    {
        // indices = SplitMix64(seed 0) mod 5, five per replicate (computed by hand from the generator's outputs)
        var sets = Bootstrap.Resamples(5, replicates: 20, seed: 0);
        Assert.Equal([0, 0, 4, 4, 2], sets[0]);
        Assert.Equal([0, 3, 0, 4, 0], sets[1]);
        // values 1, 2, 3, 4, 10: replicate 0 = (1 + 1 + 10 + 10 + 3) / 5 = 5; with B = 20 the interval is the
        // replicates' min and max (ranks round(0.475) = 0 and round(18.525) = 19): 2.0 and 6.6
        var ci = Bootstrap.Mean([1, 2, 3, 4, 10], sets);
        Assert.Equal(4.0, ci.Value, 12);
        Assert.Equal(2.0, ci.Lo, 12);
        Assert.Equal(6.6, ci.Hi, 12);
        Assert.Equal(ci, Bootstrap.Mean([1, 2, 3, 4, 10], Bootstrap.Resamples(5, 20, 0)));   // seeded: the same every run
    }

    [Fact]
    public void Bootstrap_PsnrOfMse_ConstantAndIdenticalSamples()
    {
        var sets = Bootstrap.Resamples(4);
        var ci = Bootstrap.PsnrOfMse([0.01, 0.01, 0.01, 0.01], sets);
        Assert.Equal((20.0, 20.0, 20.0), (Math.Round(ci.Value, 9), Math.Round(ci.Lo, 9), Math.Round(ci.Hi, 9)));   // 10·log10(1 / 0.01)
        var same = Bootstrap.PsnrOfMse([0, 0, 0, 0], sets);
        Assert.True(double.IsPositiveInfinity(same.Value) && double.IsPositiveInfinity(same.Lo));
        Assert.Equal("inf", EvalTable.Ci(same, "F2"));
        Assert.Equal("20.00", EvalTable.Ci(ci, "F2"));
        Assert.Equal("1.50 [1.00, 2.00]", EvalTable.Ci(new Interval(1.5, 1, 2), "F2"));
        Assert.Throws<ArgumentException>(() => Bootstrap.Resamples(0));
    }

    [Fact]
    public void BatchSweepList_Parses_AndRefusesBadLists()
    {
        Assert.Equal([1, 2, 4, 8, 16, 32, 64], BatchSweep.Parse("1,2,4,8,16,32,64"));
        Assert.Equal([3], BatchSweep.Parse(" 3 "));
        foreach (var (bad, msg) in new[] { ("0", "found '0'"), ("2,2", "found 2 after 2"), ("", "found ''"), ("1,-2", "found '-2'"), ("5000", "found '5000'") })
            Assert.Contains(msg, Assert.Throws<Sampler.Cli.UsageException>(() => BatchSweep.Parse(bad)).Message);
        Assert.Equal(["none", "bd2", "bd3"], EvalCommand.ParsePolicies("bd2,bd3", sweep: false, option: "--batch-cache").Select(p => p.Name));
        Assert.StartsWith("--batch-cache: policy 'bd2' is listed twice",
            Assert.Throws<Sampler.Cli.UsageException>(() => EvalCommand.ParsePolicies("bd2,bd2", option: "--batch-cache")).Message);
        // --sweep: each method at its knob's values, none once and first
        Assert.Equal(["none", "bd2", "bd3", "bd4", "bd5", "fora:n=2", "fora", "fora:n=4"], EvalCommand.ParsePolicies("bd,fora", sweep: true).Select(p => p.Name));
    }

    [Fact]
    public void Eval_PixArtFixture_FidelityOnDecodedPixels_NoClassifier()
    {
        var (code, stdout, err) = CliRunner.Run("eval", "--model", PixArt, "--prompt-embeds", Embeds, "--device", "cpu", "--steps", "4",
            "--per-class", "3", "--repeats", "2", "--cache", "bd2,fbcache", "--batch-sweep", "1,3", "--batch-cache", "bd2,fbcache");
        output.WriteLine(stdout + err);
        Assert.True(code == 0, err);
        Assert.Contains("3 samples per setting (3 per prompt × 1 prompt(s)), DPM-Solver++ 2M 4 steps, cfg 4.5", stdout);
        Assert.Contains("(PixArt-α: ", stdout);
        var none = Row(stdout, "none");
        Assert.Equal(["inf", "1.0000", "n/a", "n/a", "3"], none[8..13]);
        Assert.Matches(@"^\d+\.\d\d \[\d+\.\d\d, \d+\.\d\d\]$", Row(stdout, "blockdance", "N=2")[8]);   // PSNR with its interval
        Assert.Contains("measured on VAE-decoded pixels", stdout);
        Assert.Contains("accuracy / FID: n/a: the digit classifier reads 1-channel 14×14 images (or the frames of 1-channel videos); this text-conditional PixArt-α model makes 4-channel", stdout);
        Assert.Contains("wall-clock median of 2 run(s)", stdout);
        // the batch sweep: 1 and 3 samples per model batch (6 rows under guidance); decisions per sample as in the batch of 3
        Assert.Contains("| 3 | 6 | none |", stdout);
        Assert.Contains("| 1 | 2 | bd2 |", stdout);
        Assert.Matches(@"\| 1 \| 2 \| fbcache \|.*\| same \|", stdout);
        Assert.DoesNotContain("DIFFERENT", stdout);
    }

    [Fact]
    public void Eval_PixArt_RefusesTheClassifierAndClassOptions()
    {
        var (code, _, err) = CliRunner.Run("eval", "--model", PixArt, "--prompt-embeds", Embeds, "--device", "cpu", "--classifier", "c.safetensors");
        Assert.Equal(2, code);
        Assert.Contains("--classifier/--fid-stats: the digit classifier reads 1-channel 14×14 images (or the frames of 1-channel videos); this text-conditional PixArt-α model makes 4-channel", err);
        var (code2, _, err2) = CliRunner.Run("eval", "--model", PixArt, "--device", "cpu");
        Assert.Equal(2, code2);
        Assert.Contains("--prompt-embeds: expected --prompt TEXT or a safetensors file", err2);
        Assert.DoesNotContain("   at ", err + err2);
    }

    [Fact]
    public void Bench_BatchSweep_Table_AndRefusals()
    {
        var (code, stdout, err) = CliRunner.Run("bench", "--model", P4, "--device", "cpu", "--steps", "4", "--iters", "1", "--warmup", "0",
            "--batch-sweep", "1,2", "--batch-cache", "bd2", "--repeats", "1");
        output.WriteLine(stdout + err);
        Assert.True(code == 0, err);
        Assert.Contains("**blockdance bench --batch-sweep**", stdout);
        Assert.Contains("| 2 | 4 | bd2 |", stdout);
        Assert.Contains("1, 1–1, 0 | same |", stdout);   // bd2 on 4 steps × 2 blocks: block 0 skipped once per sample
        foreach (var (extra, msg) in new[]
                 {
                     (new[] { "--batch-sweep", "2,1" }, "--batch-sweep: expected increasing batch sizes, found 1 after 2"),
                     (new[] { "--batch-sweep", "1", "--batch-cache", "ada" }, "--batch-cache: ada needs its policy file"),
                 })
        {
            var (c, _, e) = CliRunner.Run(["bench", "--model", P4, "--device", "cpu", "--no-sampling", .. extra]);
            Assert.Equal(2, c);
            Assert.Contains(msg, e);
        }
    }
}

public class EvalVideoTests(ITestOutputHelper output)
{
    [Fact]
    public void Eval_STDiTFixture_VideoFidelity_WithAndWithoutTheVae()
    {
        string F(string n) => CliRunner.Fixture(n);
        string[] baseArgs = ["eval", "--model", F("stdit_tiny"), "--prompt-embeds", F("stdit_traj.safetensors"), "--frames", "3", "--steps", "4",
                             "--device", "cpu", "--per-class", "2", "--repeats", "1", "--cache", "bd2"];
        var (code, stdout, err) = CliRunner.Run([.. baseArgs, "--vae", F("pixart_tiny/vae")]);
        output.WriteLine(stdout + err);
        Assert.True(code == 0, err);
        Assert.Contains("2 samples per setting (2 per prompt × 1 prompt(s)), DDPM 4 steps, cfg 7", stdout);
        Assert.Contains("measured on VAE-decoded pixels", stdout);
        Assert.Contains("a video is one image of C·T channels", stdout);
        Assert.Contains("accuracy / FID: n/a: the digit classifier reads 1-channel 14×14 images (or the frames of 1-channel videos); this text-conditional STDiT model makes", stdout);
        // without a VAE: the 8×8 latents, PSNR only (SSIM's window does not fit, and the note says so)
        var (code2, stdout2, err2) = CliRunner.Run(baseArgs);
        Assert.True(code2 == 0, err2);
        Assert.Contains("measured on latents (no VAE found)", stdout2);
        Assert.Contains("SSIM: n/a: the measured images are 8×8, smaller than the 11×11 window.", stdout2);
        Assert.Contains("| none ★ |  |", stdout2);
    }
}

public class EvalTableV1Tests
{
    [Fact]
    public void PlotFrom_ReadsTheFirstTableFormat_FlopAxisFromTheBlocks()
    {
        var md = Path.Combine(CliRunner.TempDir(), "v1.md");
        File.WriteAllText(md, """
            **blockdance eval**: 4 samples per policy, DDIM 10 steps, cfg 4; m.safetensors (DiT); CPU accelerator: x

            | policy | wall-clock s | speedup vs none | blocks skipped | PSNR dB | SSIM | accuracy | FID | samples |
            |---|---:|---:|---:|---:|---:|---:|---:|---:|
            | none ★ | 2.00 | 1.000× | 0 of 60 (0.0%) | inf | 1.0000 | n/a | n/a | 4 |
            | bd2 (N=2, b=3) | 1.50 | 1.333× | 15 of 60 (25.0%) | 35.5 | 0.9990 | n/a | n/a | 4 |
            """);
        var (points, caption) = EvalTableReader.Read(md);
        Assert.Equal(["none", "bd2 (N=2, b=3)"], points.Select(p => p.Method));
        Assert.Equal([0.5, 0.375], points.Select(p => p.Seconds));
        Assert.Equal([1.0, 0.75], points.Select(p => p.FlopFraction));
        Assert.Equal("m.safetensors: 4 samples per policy, DDIM 10 steps, cfg 4; CPU accelerator", caption);
    }
}
