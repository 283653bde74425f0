// `blockdance sample` end to end on the fixture models (CPU accelerator, few steps), and every
// bad-input case: exit code 2, a one-line message naming expected vs found, no output file.
using BlockDance.Transformer.IO;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class SampleCommandTests(ITestOutputHelper output)
{
    static readonly string P4 = CliRunner.Fixture("dit_p4.weights.safetensors");   // 3-channel pixel model → PNG
    static readonly string P2 = CliRunner.Fixture("dit_p2.weights.safetensors");   // 4-channel latent model

    [Fact]
    public void Sample_WritesPng_ForPixelModel()
    {
        var dir = CliRunner.TempDir();
        var png = Path.Combine(dir, "x.png");
        var (code, stdout, stderr) = CliRunner.Run("sample", "--model", P4, "--device", "cpu", "--steps", "3", "--class", "0,4", "--out", png);
        output.WriteLine(stdout + stderr);
        Assert.Equal(0, code);
        var bytes = File.ReadAllBytes(png);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], bytes[..4]);
        Assert.Contains("---- summary ----", stdout);
        Assert.Single(Directory.GetFiles(dir)); // no temporary file left behind
    }

    [Fact]
    public void Sample_SameSeed_IsBitIdentical_AndNoiseFileIsUsed()
    {
        var dir = CliRunner.TempDir();
        string a = Path.Combine(dir, "a.safetensors"), b = Path.Combine(dir, "b.safetensors"), c = Path.Combine(dir, "c.safetensors");
        string[] common = ["sample", "--model", P2, "--device", "cpu", "--steps", "4", "--class", "1,2", "--seed", "7"];
        Assert.Equal(0, CliRunner.Run([.. common, "--out", a]).Code);
        Assert.Equal(0, CliRunner.Run([.. common, "--out", b]).Code);
        Assert.Equal(File.ReadAllBytes(a), File.ReadAllBytes(b));
        using (var f = SafeTensorsFile.Open(a)) Assert.Equal(new long[] { 2, 4, 8, 8 }, f.Get("sample").Shape);

        // --noise: the same starting noise as seed 7 must give the same sample
        var noisePath = Path.Combine(dir, "noise.safetensors");
        var noise = BlockDance.Kernels.GaussianNoise.Reference(7, 0, 2 * 4 * 8 * 8);
        SafeTensorsWriter.Write(noisePath, [("noise", new long[] { 2, 4, 8, 8 }, noise)]);
        Assert.Equal(0, CliRunner.Run(["sample", "--model", P2, "--device", "cpu", "--steps", "4", "--class", "1,2", "--noise", noisePath, "--out", c]).Code);
        using var fa = SafeTensorsFile.Open(a); using var fc = SafeTensorsFile.Open(c);
        var sa = fa.ReadFloat32("sample"); var sc = fc.ReadFloat32("sample");
        Assert.True(Tolerance.MaxAbsError(sa, sc) < 1e-3 * sa.Max(Math.Abs), "given noise equal to the seeded noise gives the same sample");
    }

    [Fact]
    public void Report_HasTimingAndCacheFields()
    {
        var dir = CliRunner.TempDir();
        var report = Path.Combine(dir, "r.json");
        var (code, _, err) = CliRunner.Run("sample", "--model", P2, "--device", "cpu", "--steps", "2", "--class", "0", "--out", Path.Combine(dir, "x.safetensors"), "--report", report);
        Assert.True(code == 0, err);
        var json = File.ReadAllText(report);
        foreach (var field in new[] { "\"wall_seconds\"", "\"model_seconds\"", "\"sampler_seconds\"", "\"blocks_skipped\"", "\"device\"" })
            Assert.Contains(field, json);
    }

    public static TheoryData<string[], string> BadOptions => new()
    {
        { ["--bogus", "1"], "unknown option '--bogus'" },
        { ["--class", "-1"], "--class: expected 0..4 for this model, found -1" },
        { ["--class", "5"], "--class: expected 0..4 for this model, found 5" },
        { ["--class", "a,b"], "--class: expected a comma-separated list of integers" },
        { ["--steps", "0"], "--steps: expected 1..1000, found 0" },
        { ["--steps", "1001"], "--steps: expected 1..1000, found 1001" },
        { ["--cfg", "0.5"], "--cfg: expected a value in [1, 100], found 0.5" },
        { ["--sampler", "euler"], "--sampler: expected ddim or ddpm or dpm++2m, found 'euler'" },
        { ["--device", "tpu"], "--device: expected auto or cuda or cpu or sim, found 'tpu'" },
        { ["--cache", "magic"], "--cache: expected one of none, fora" },
        { ["--cache", "blockdance", "--cache-block", "1"], "--cache-block: expected 0..0 for a 2-block model" },
        { ["--cache", "blockdance", "--cache-n", "0"], "--cache-n: expected N ≥ 1, found 0" },
        { ["--cache", "blockdance", "--cache-window", "0.5,0.5"], "--cache-window: expected 0 ≤ start < end ≤ 1" },
        { ["--cache", "blockdance", "--cache-window", "-0.1,0.9"], "--cache-window: expected 0 ≤ start < end ≤ 1" },
        { ["--cache-n", "2"], "need --cache blockdance" },
    };

    [Theory]
    [MemberData(nameof(BadOptions))]
    public void BadOption_Exit2_NamesExpectedAndFound_NoOutput(string[] extra, string message)
    {
        var dir = CliRunner.TempDir();
        var png = Path.Combine(dir, "x.png");
        var (code, _, err) = CliRunner.Run(["sample", "--model", P4, "--steps", "2", "--out", png, .. extra]);
        output.WriteLine(err);
        Assert.Equal(2, code);
        Assert.Contains(message, err);
        Assert.DoesNotContain("   at ", err); // no stack trace
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public void MissingModel_Exit2()
    {
        var dir = CliRunner.TempDir();
        var (code, _, err) = CliRunner.Run("sample", "--model", Path.Combine(dir, "nope.safetensors"), "--out", Path.Combine(dir, "x.png"));
        Assert.Equal(2, code);
        Assert.Contains("model file not found", err);
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public void MalformedAndTruncatedModel_Exit2()
    {
        var dir = CliRunner.TempDir();
        var bad = Path.Combine(dir, "bad.safetensors");
        File.WriteAllBytes(bad, [1, 2, 3]);
        var (code, _, err) = CliRunner.Run("sample", "--model", bad, "--out", Path.Combine(dir, "x.png"));
        Assert.Equal(2, code);
        Assert.Contains("bad.safetensors", err);

        var truncated = Path.Combine(dir, "trunc.safetensors");
        var full = File.ReadAllBytes(P4);
        File.WriteAllBytes(truncated, full[..(full.Length - 100)]);
        (code, _, err) = CliRunner.Run("sample", "--model", truncated, "--out", Path.Combine(dir, "y.png"));
        Assert.Equal(2, code);
        Assert.Contains("trunc.safetensors", err);
        Assert.Equal(2, Directory.GetFiles(dir).Length); // only the two inputs
    }

    [Fact]
    public void MisShapedOrMissingTensor_Exit2()
    {
        var dir = CliRunner.TempDir();
        using var src = SafeTensorsFile.Open(P2);
        var tensors = src.Tensors.Where(t => t.Name != "final_layer.linear.bias")
            .Select(t => (t.Name, t.Name == "blocks.1.mlp.fc1.bias" ? new long[] { 7 } : t.Shape,
                          t.Name == "blocks.1.mlp.fc1.bias" ? new float[7] : src.ReadFloat32(t.Name))).ToList();
        var broken = Path.Combine(dir, "broken.safetensors");
        SafeTensorsWriter.Write(broken, tensors, src.Metadata.ToDictionary());
        var (code, _, err) = CliRunner.Run("sample", "--model", broken, "--device", "cpu", "--out", Path.Combine(dir, "x.safetensors"));
        output.WriteLine(err);
        Assert.Equal(2, code);
        Assert.True(err.Contains("blocks.1.mlp.fc1.bias") || err.Contains("final_layer.linear.bias"), err);
        Assert.Contains("expected", err);
    }

    [Fact]
    public void NoiseOfWrongShape_Exit2()
    {
        var dir = CliRunner.TempDir();
        var noise = Path.Combine(dir, "n.safetensors");
        SafeTensorsWriter.Write(noise, [("noise", new long[] { 3, 4, 8, 8 }, new float[3 * 4 * 64])]);
        var (code, _, err) = CliRunner.Run("sample", "--model", P2, "--class", "1,2", "--noise", noise, "--out", Path.Combine(dir, "x.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("expected shape [2, 4, 8, 8] (2 samples), found [3, 4, 8, 8]", err);
        Assert.Single(Directory.GetFiles(dir));
    }

    [Fact]
    public void OutputFolderMissing_OrNotWritable_Exit2()
    {
        var dir = CliRunner.TempDir();
        var (code, _, err) = CliRunner.Run("sample", "--model", P4, "--out", Path.Combine(dir, "missing", "x.png"));
        Assert.Equal(2, code);
        Assert.Contains("does not exist", err);
        // /proc refuses new files even for root
        (code, _, err) = CliRunner.Run("sample", "--model", P4, "--out", "/proc/x.png");
        Assert.Equal(2, code);
        Assert.Contains("not writable", err);
    }

    [Fact]
    public void LatentModel_ToPng_Exit2_WithHint()
    {
        var dir = CliRunner.TempDir();
        var (code, _, err) = CliRunner.Run("sample", "--model", P2, "--out", Path.Combine(dir, "x.png"));
        Assert.Equal(2, code);
        Assert.Contains("latent", err);
        Assert.Empty(Directory.GetFiles(dir));
    }
}

public class LatentSampleTests(ITestOutputHelper output)
{
    [Fact]
    public void LatentModel_WithVae_WritesDecodedPng()
    {
        var dir = CliRunner.TempDir();
        var png = Path.Combine(dir, "x.png");
        var (code, stdout, stderr) = CliRunner.Run("sample", "--model", CliRunner.Fixture("dit_p2.weights.safetensors"),
            "--vae", CliRunner.Fixture("vae_tiny.weights.safetensors"), "--device", "cpu", "--steps", "2", "--class", "3,7", "--out", png);
        output.WriteLine(stdout + stderr);
        Assert.Equal(0, code);
        Assert.Contains("decoded by the VAE", stdout);
        Assert.Contains("64×64", stdout); // 8×8 latent, 3 upsamplers
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G'], File.ReadAllBytes(png)[..4]);
    }
}
