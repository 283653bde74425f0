// The examples for the weight files of the other model parts (VAE, PixArt transformer, T5) and for the
// noise input: non-finite or overflowing weights, integer tensors taken as weights, non-finite stage outputs —
// each one line and exit 2, never a black PNG or a features file with NaN in it.
using Xunit;

namespace BlockDance.Tests;

public class WeightSurfaceTests
{
    /// <summary>Rewrites a safetensors file with `edit` applied to every tensor (name, data) → data.</summary>
    static void EditTensors(string path, Func<string, float[], float[]> edit)
    {
        var (tensors, meta) = HostileFiles.Read(path);
        var dir = Path.GetDirectoryName(path)!;
        var tmp = HostileFiles.Write(dir, "edited.tmp-test", tensors.Select(t => t with { Data = edit(t.Name, t.Data) }), meta);
        File.Move(tmp, path, overwrite: true);
    }

    [Theory]
    [InlineData("nan", "expected finite values, found")]
    [InlineData("1e30", "VAE output: expected finite pixels")]
    public void VaeWeights_NaNOrHuge_AreOneLine_Exit2_NoBlackPng(string kind, string expected)
    {
        var dir = CliRunner.TempDir();
        var model = Surfaces.PixArtFolder(dir);
        var png = Path.Combine(dir, "x.png");
        EditTensors(Path.Combine(model, "vae", "diffusion_pytorch_model.safetensors"), (name, d) =>
            kind == "nan" ? (name == "decoder.conv_out.weight" ? d.Select((v, i) => i == 3 ? float.NaN : v).ToArray() : d)
                          : d.Select(v => v * 1e30f).ToArray());
        var r = Surfaces.SamplePixArt(model, png);
        HostileFiles.AssertOneLineError(r.Code, r.Err, expected);
        Assert.False(File.Exists(png));
    }

    [Fact]
    public void PixArtWeights_WithANaN_AreOneLine_Exit2_NamingTheTensorAndCount()
    {
        var dir = CliRunner.TempDir();
        var model = Surfaces.PixArtFolder(dir);
        EditTensors(Path.Combine(model, "transformer", "diffusion_pytorch_model.safetensors"), (name, d) =>
            name == "transformer_blocks.1.ff.net.2.weight" ? d.Select((v, i) => i < 2 ? float.PositiveInfinity : v).ToArray() : d);
        var r = Surfaces.SamplePixArt(model, Path.Combine(dir, "x.png"));
        HostileFiles.AssertOneLineError(r.Code, r.Err, "found 2 NaN/Inf in 'transformer_blocks.1.ff.net.2.weight'");
    }

    [Theory]
    [InlineData("transformer", "transformer_blocks.0.attn1.to_q.weight")]
    [InlineData("vae", "decoder.conv_in.weight")]
    public void IntegerTensor_AsAWeight_IsRefused(string part, string key)
    {
        var dir = CliRunner.TempDir();
        var model = Surfaces.PixArtFolder(dir);
        var file = Path.Combine(model, part, "diffusion_pytorch_model.safetensors");
        var edited = HostileFiles.EditHeader(file, dir, "w.safetensors", h => h[key]!["dtype"] = "I32");   // same byte size as F32
        File.Move(edited, file, overwrite: true);
        var r = Surfaces.SamplePixArt(model, Path.Combine(dir, "x.png"));
        HostileFiles.AssertOneLineError(r.Code, r.Err, $"tensor '{key}': expected a float dtype");
    }

    [Fact]
    public void T5Weights_ThatOverflow_GiveNoFeaturesFile_OneLine_Exit2()
    {
        var dir = CliRunner.TempDir();
        var model = Surfaces.PixArtFolder(dir, withT5: true);
        foreach (var shard in Directory.GetFiles(Path.Combine(model, "text_encoder"), "*.safetensors"))
            EditTensors(shard, (name, d) => name.Contains("DenseReluDense") ? d.Select(v => v * 1e30f).ToArray() : d);
        var outPath = Path.Combine(dir, "e.safetensors");
        var r = CliRunner.Run("encode", "--model", model, "--prompt", "a red fox", "--device", "cpu", "--out", outPath);
        HostileFiles.AssertOneLineError(r.Code, r.Err, "T5 features: expected finite values");
        Assert.False(File.Exists(outPath));
    }

    [Fact]
    public void NoiseGivenAsI64_IsRefused_NotReadAsFloat()
    {
        var dir = CliRunner.TempDir();
        var noise = HostileFiles.Write(dir, "n.safetensors", [new TensorEntry("noise", [1, 1, 14, 28], new float[392])], new Dictionary<string, string>());
        var i64 = HostileFiles.EditHeader(noise, dir, "n64.safetensors", h =>
        {
            h["noise"]!["dtype"] = "I64";
            h["noise"]!["shape"] = new System.Text.Json.Nodes.JsonArray(1, 1, 14, 14);   // the demo's noise shape: 196 × 8 bytes = 392 × 4
        });
        var r = CliRunner.Run("sample", "--model", HostileFiles.DemoModel, "--device", "cpu", "--steps", "1", "--class", "0", "--cfg", "1",
            "--noise", i64, "--out", Path.Combine(dir, "x.png"));
        HostileFiles.AssertOneLineError(r.Code, r.Err, "expected a float dtype (F32, F16, BF16, F64) for values, found I64");
        Assert.False(File.Exists(Path.Combine(dir, "x.png")));
    }
}
