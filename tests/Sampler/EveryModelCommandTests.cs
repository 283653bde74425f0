// The commands that take a model accept every model kind through ModelRun (the DiT, a PixArt-α folder, Open-Sora 1.0's
// STDiT): `calibrate` on a caption model, then `sample --cache M` for every method M on that folder (TeaCache and
// MagCache read the calibration just written); `bench` on each kind (`train-ada` on the caption models: AdaCaptionTests).
// The tiny fixtures are copied to a temporary folder, because a
// calibration is written beside the model.
using Xunit;

namespace BlockDance.Tests;

public class EveryModelCommandTests
{
    static readonly string[] Methods =
        ["none", "blockdance", "bd3", "bd-adaptive", "bd-taylor", "fora", "delta-dit", "teacache", "fbcache", "dbcache", "magcache", "taylorseer"];

    static string CopyOf(string fixture)
    {
        var dst = Path.Combine(CliRunner.TempDir(), fixture);
        Directory.CreateDirectory(dst);
        foreach (var f in Directory.GetFiles(CliRunner.Fixture(fixture), "*", SearchOption.AllDirectories))
        {
            var to = Path.Combine(dst, Path.GetRelativePath(CliRunner.Fixture(fixture), f));
            Directory.CreateDirectory(Path.GetDirectoryName(to)!);
            File.Copy(f, to);
        }
        return dst;
    }

    [Theory]
    [InlineData("pixart_tiny", "pixart_traj.safetensors")]
    [InlineData("stdit_tiny", "stdit_traj.safetensors", "--frames", "3")]
    public void Calibrate_ThenSample_EveryMethod_OnACaptionModel(string fixture, string embeds, params string[] extra)
    {
        var model = CopyOf(fixture);
        string[] common = ["--model", model, "--prompt-embeds", CliRunner.Fixture(embeds), "--device", "cpu", "--steps", "8", .. extra];
        var (code, stdout, err) = CliRunner.Run(["calibrate", .. common, "--samples", "2"]);
        Assert.True(code == 0, err + stdout);
        Assert.True(File.Exists(BlockDance.Cache.CacheCalibration.PathFor(model)), stdout);
        var cal = BlockDance.Cache.CacheCalibration.Load(BlockDance.Cache.CacheCalibration.PathFor(model), "magcache");
        Assert.Equal(8, cal.Steps);
        Assert.Equal(2, cal.Samples);
        foreach (var m in Methods)
        {
            var outPath = Path.Combine(CliRunner.TempDir(), "x.safetensors");
            (code, stdout, err) = CliRunner.Run(["sample", .. common, "--cache", m, "--out", outPath]);
            Assert.True(code == 0, $"{m}: {err}{stdout}");
            Assert.True(File.Exists(outPath), m);
        }
        // the calibrated methods at the calibration's suggested thresholds really skip
        foreach (var m in new[] { "teacache", "magcache" })
        {
            var delta = cal.SuggestedThresholds![m].ToString("R", System.Globalization.CultureInfo.InvariantCulture);
            (code, stdout, err) = CliRunner.Run(["sample", .. common, "--cache", $"{m}:delta={delta}", "--out", Path.Combine(CliRunner.TempDir(), "x.safetensors")]);
            Assert.True(code == 0, err + stdout);
            Assert.DoesNotContain(" 0 skipped of", stdout);
        }
    }

    [Fact]
    public void Calibrate_OnADiT_WritesTheSameCalibrationThroughModelRun()
    {
        // 2 samples of the fixture DiT: classes 0, 1 in turn (its default classes), the DiT's DDIM; a second run with the
        // classes given explicitly is the same file
        var m = CliRunner.Fixture("dit_p4.weights.safetensors");
        var a = Path.Combine(CliRunner.TempDir(), "a.json");
        var b = Path.Combine(CliRunner.TempDir(), "b.json");
        Assert.Equal(0, CliRunner.Run("calibrate", "--model", m, "--device", "cpu", "--samples", "2", "--steps", "5", "--out", a).Code);
        var (code, stdout, err) = CliRunner.Run("calibrate", "--model", m, "--device", "cpu", "--samples", "2", "--steps", "5", "--class", "0,1", "--out", b);
        Assert.True(code == 0, err + stdout);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
    }

    [Theory]
    [InlineData("pixart_tiny", "pixart_traj.safetensors")]
    [InlineData("stdit_tiny", "stdit_traj.safetensors", "--frames", "3")]
    public void Bench_RunsACaptionModel(string fixture, string embeds, params string[] extra)
    {
        var (code, stdout, err) = CliRunner.Run(["bench", "--model", CliRunner.Fixture(fixture), "--prompt-embeds", CliRunner.Fixture(embeds),
            "--device", "cpu", "--iters", "1", "--warmup", "0", "--steps", "3", .. extra]);
        Assert.True(code == 0, err + stdout);
        Assert.Contains("forward: batch 1 (model batch 2)", stdout);
        Assert.Contains("blockdance N=3", stdout);
    }
}
