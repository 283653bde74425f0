// `--help` on every command lists every option the command accepts (CommandTable: the list Args.Parse enforces) and exits 0;
// a mistyped option gets a suggestion; --quiet silences the progress bar.
using Xunit;

namespace BlockDance.Tests;

public class HelpTests
{
    [Theory]
    [InlineData("sample", "--model", "--cache-window", "--vae")]
    [InlineData("sample --out-dir x", "--shard", "--classes-file", "--per-class")]
    [InlineData("inspect", "--heads")]
    [InlineData("selftest", "--fixtures", "--device")]
    [InlineData("analyze", "--csv", "--png", "--threshold")]
    [InlineData("eval", "--plot", "--plot-from", "--quick")]
    [InlineData("bench", "--preset", "--iters", "--no-sampling")]
    [InlineData("train-ada", "--rho", "--lambda")]
    [InlineData("merge", "--npz")]
    [InlineData("encode", "--prompt", "--max-length")]
    public void Help_EveryCommand_ListsItsOptions_ExitsZero(string command, params string[] options)
    {
        var (code, stdout, err) = CliRunner.Run([.. command.Split(' '), "--help"]);
        Assert.True(code == 0, err);
        foreach (var o in options) Assert.Contains(o, stdout);
        Assert.False(Directory.Exists("x"));
    }

    [Fact]
    public void Help_ShowsDefaultsAndRanges()
    {
        var (_, stdout, _) = CliRunner.Run("sample", "--help");
        Assert.Contains("sampling steps, 1..1000 (default 50; PixArt-α: 20; STDiT: 100)", stdout);
        Assert.Contains("classifier-free guidance scale in [1, 100]; 1 = off (default 4; PixArt-α: 4.5; STDiT: 7)", stdout);
    }

    [Fact]
    public void MistypedOption_SuggestsNearest_ExitsTwo()
    {
        var (code, _, err) = CliRunner.Run("sample", "--stpes", "3");
        Assert.Equal(2, code);
        Assert.Contains("unknown option '--stpes' (did you mean '--steps'?)", err);
    }

    [Fact]
    public void Quiet_SilencesProgressBar()
    {
        var dir = CliRunner.TempDir();
        string[] args = ["sample", "--model", CliRunner.Fixture("dit_p4.weights.safetensors"), "--device", "cpu", "--steps", "2",
                         "--class", "0", "--out", Path.Combine(dir, "x.safetensors")];
        var (code, _, err) = CliRunner.Run(args);
        Assert.True(code == 0, err);
        Assert.Contains("it/s", err);
        var (code2, _, err2) = CliRunner.Run([.. args, "--quiet"]);
        Assert.True(code2 == 0, err2);
        Assert.DoesNotContain("it/s", err2);
        BlockDance.Sampling.ProgressBar.Quiet = false;
    }
}
