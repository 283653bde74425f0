// The examples for the config surfaces of a PixArt-α folder (transformer, VAE, text encoder, scheduler,
// model_index) and its inputs, as named tests: each bad value is one line and exit 2 naming the field, with
// nothing written; FIFOs and /dev/zero are refused before they are opened.
using System.Text.Json.Nodes;
using Xunit;

namespace BlockDance.Tests;

public class ConfigSurfaceTests
{
    static (string Dir, string Model, string Png) Fresh(bool t5 = false)
    {
        var dir = CliRunner.TempDir();
        return (dir, Surfaces.PixArtFolder(dir, t5), Path.Combine(dir, "x.png"));
    }

    static void AssertRefused((int Code, string Out, string Err) r, string expected, string png)
    {
        HostileFiles.AssertOneLineError(r.Code, r.Err, expected);
        Assert.False(File.Exists(png), "an image was written for a bad input");
        Assert.Empty(Directory.GetFiles(Path.GetDirectoryName(png)!, ".bd-*"));
    }

    [Theory]
    [InlineData("transformer", "num_layers", "1", "the config says 1 blocks, the file holds 2")]
    [InlineData("transformer", "num_layers", "3", "the config says 3 blocks, the file holds 2")]
    [InlineData("transformer", "num_layers", "2147483647", "\"num_layers\": expected an integer in 1..256")]
    [InlineData("transformer", "sample_size", "16384", "\"sample_size\": expected an integer in 1..512")]
    [InlineData("transformer", "norm_type", "12", "\"norm_type\": expected \"ada_norm_single\"")]
    [InlineData("transformer", "activation_fn", "null", "\"activation_fn\": expected \"gelu-approximate\"")]
    [InlineData("transformer", "attention_head_dim", "\"24\"", "\"attention_head_dim\": expected an integer")]
    [InlineData("transformer", "norm_eps", "1e-5", "\"norm_eps\": expected 1e-06")]
    [InlineData("vae", "norm_num_groups", "0", "\"norm_num_groups\": expected an integer in 1..1024")]
    [InlineData("vae", "norm_num_groups", "-4", "\"norm_num_groups\": expected an integer in 1..1024")]
    [InlineData("vae", "norm_num_groups", "3", "norm_num_groups")]
    [InlineData("vae", "scaling_factor", "\"x\"", "\"scaling_factor\": expected a number")]
    [InlineData("vae", "scaling_factor", "0", "\"scaling_factor\": expected a number")]
    [InlineData("vae", "scaling_factor", "-0.18215", "\"scaling_factor\": expected a number")]
    [InlineData("vae", "scaling_factor", "1e-45", "\"scaling_factor\": expected a number")]
    [InlineData("vae", "block_out_channels", "[4, 8, 16]", "block_out_channels")]
    [InlineData("vae", "layers_per_block", "1", "layers_per_block")]
    [InlineData("vae", "shift_factor", "0.5", "\"shift_factor\"")]
    [InlineData("scheduler", "prediction_type", "\"v_prediction\"", "\"prediction_type\": expected \"epsilon\"")]
    [InlineData("scheduler", "beta_schedule", "\"scaled_linear\"", "\"beta_schedule\": expected \"linear\"")]
    [InlineData("scheduler", "num_train_timesteps", "10", "\"num_train_timesteps\": expected 1000")]
    [InlineData("scheduler", "solver_order", "3", "\"solver_order\": expected 2")]
    [InlineData("scheduler", "use_karras_sigmas", "true", "\"use_karras_sigmas\": expected false")]
    [InlineData("scheduler", "beta_start", "-0.0001", "\"beta_start\": expected 0.0001")]
    [InlineData("scheduler", "trained_betas", "[0.1, 0.2]", "\"trained_betas\"")]
    public void BadConfigValue_IsOneLine_Exit2_NothingWritten(string part, string field, string json, string expected)
    {
        var (_, model, png) = Fresh();
        var path = Path.Combine(model, part, part == "scheduler" ? "scheduler_config.json" : "config.json");
        Surfaces.EditJson(path, o => o[field] = JsonNode.Parse(json));
        AssertRefused(Surfaces.SamplePixArt(model, png), expected, png);
    }

    [Theory]
    [InlineData("relative_attention_max_distance", "1", "\"relative_attention_max_distance\": expected an integer in 3..")]
    [InlineData("d_kv", "536870912", "\"d_kv\": expected an integer in 1..1024")]
    [InlineData("num_layers", "1", "the config says 1 blocks, the file holds 2")]
    [InlineData("vocab_size", "\"416\"", "\"vocab_size\": expected an integer")]
    [InlineData("feed_forward_proj", "\"relu\"", "\"feed_forward_proj\": expected \"gated-gelu\"")]
    public void BadT5ConfigValue_IsOneLine_Exit2(string field, string json, string expected)
    {
        var (dir, model, _) = Fresh(t5: true);
        Surfaces.EditJson(Path.Combine(model, "text_encoder", "config.json"), o => o[field] = JsonNode.Parse(json));
        var outPath = Path.Combine(dir, "e.safetensors");
        var r = CliRunner.Run("encode", "--model", model, "--prompt", "a fox", "--device", "cpu", "--out", outPath);
        HostileFiles.AssertOneLineError(r.Code, r.Err, expected);
        Assert.False(File.Exists(outPath));
    }

    [Fact]
    public void SchedulerConfig_AsDiffusersWritesIt_WithMinusInfinity_IsAccepted()
    {
        var (_, model, png) = Fresh();
        var path = Path.Combine(model, "scheduler", "scheduler_config.json");
        File.WriteAllText(path, File.ReadAllText(path).TrimEnd().TrimEnd('}') + ",\n  \"lambda_min_clipped\": -Infinity,\n  \"use_karras_sigmas\": false\n}");
        var r = Surfaces.SamplePixArt(model, png);
        Assert.True(r.Code == 0, r.Err);
        Assert.True(File.Exists(png));
    }

    [Theory]
    [InlineData("{\"_class_name\": \"PixArtSigmaPipeline\"}", "\"_class_name\": expected \"PixArtAlphaPipeline\"")]
    [InlineData("{\"vae\": [\"diffusers\", \"AutoencoderTiny\"]}", "\"vae\": expected [\"diffusers\", \"AutoencoderKL\"]")]
    [InlineData("[1, 2]", "expected a JSON object, found a JSON array")]
    public void BadModelIndex_IsOneLine_Exit2(string json, string expected)
    {
        var (_, model, png) = Fresh();
        File.WriteAllText(Path.Combine(model, "model_index.json"), json);
        AssertRefused(Surfaces.SamplePixArt(model, png), expected, png);
    }

    [Theory]
    [InlineData("transformer/config.json", "fifo")]
    [InlineData("vae/config.json", "fifo")]
    [InlineData("vae/diffusion_pytorch_model.safetensors", "fifo")]
    [InlineData("scheduler/scheduler_config.json", "fifo")]
    [InlineData("transformer/config.json", "zero")]
    [InlineData("vae/config.json", "zero")]
    [InlineData("model_index.json", "zero")]
    public void FifoOrDevZero_InAPixArtFolder_IsRefusedBeforeOpening(string file, string kind)
    {
        var (_, model, png) = Fresh();
        var path = Path.Combine(model, file);
        if (kind == "fifo") Surfaces.MakeFifo(path); else Surfaces.DevZero(path);
        var r = Surfaces.Within(60, () => Surfaces.SamplePixArt(model, png), file);
        AssertRefused(r, kind == "fifo" ? "expected a regular file, found a FIFO" : "expected a regular file, found a character device", png);
        if (file.StartsWith("vae/")) return;   // analyze does not decode: it never reads the VAE
        var d = Path.GetDirectoryName(png)!;
        var a = Surfaces.Within(60, () => CliRunner.Run("analyze", "--model", model, "--prompt-embeds", Surfaces.PixArtEmbeds, "--steps", "2",
            "--device", "cpu", "--csv", Path.Combine(d, "s.csv"), "--png", Path.Combine(d, "s.png")), "analyze " + file);
        HostileFiles.AssertOneLineError(a.Code, a.Err, "expected a regular file");
    }

    [Theory]
    [InlineData("text_encoder/config.json")]
    [InlineData("tokenizer/spiece.model")]
    [InlineData("text_encoder/model.safetensors.index.json")]
    public void FifoInTheTextEncoder_IsRefusedBeforeOpening(string file)
    {
        var (dir, model, _) = Fresh(t5: true);
        Surfaces.MakeFifo(Path.Combine(model, file));
        var r = Surfaces.Within(60, () => CliRunner.Run("encode", "--model", model, "--prompt", "a fox", "--device", "cpu",
            "--out", Path.Combine(dir, "e.safetensors")), file);
        HostileFiles.AssertOneLineError(r.Code, r.Err, "expected a regular file, found a FIFO");
    }

    [Fact]
    public void EncodeOut_NamingOneOfTheModelsWeightShards_IsRefused_AndTheShardKept()
    {
        var (_, model, _) = Fresh(t5: true);
        var shard = Path.Combine(model, "text_encoder", "model-00001-of-00002.safetensors");
        var before = File.ReadAllBytes(shard);
        var r = CliRunner.Run("encode", "--model", model, "--prompt", "a fox", "--device", "cpu", "--out", shard);
        HostileFiles.AssertOneLineError(r.Code, r.Err, "one of its own files");
        Assert.Equal(before, File.ReadAllBytes(shard));
    }

    [Fact]
    public void DevZeroAsCalibrationFile_AndFifoAsPlotTable_AreOneLineErrors()
    {
        var dir = CliRunner.TempDir();
        var fifo = Path.Combine(dir, "table.md");
        Surfaces.MakeFifo(fifo);
        var r = Surfaces.Within(60, () => CliRunner.Run("eval", "--plot-from", fifo, "--plot", Path.Combine(dir, "p.png")), "eval --plot-from");
        HostileFiles.AssertOneLineError(r.Code, r.Err, "expected a regular file, found a FIFO");
        var e = Assert.ThrowsAny<BlockDance.Kernels.InputException>(() => BlockDance.Cache.CacheCalibration.Load("/dev/zero", "teacache",
            p => BlockDance.Transformer.IO.InputFile.ReadText(p, "calibration file")));
        Assert.Contains("expected a regular file, found a character device", e.Message);
    }
}
