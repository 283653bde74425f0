// blockdance encode on the tiny PixArt-layout fixture folder (text_encoder/ + tokenizer/): the written
// features match the PyTorch encoder run on SentencePiece's ids; bad input exits 2 with one line.
using BlockDance.Transformer.IO;
using BlockDance.Transformer.T5;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests.T5;

public class EncodeCommandTests(ITestOutputHelper output)
{
    static readonly string Folder = CliRunner.Fixture("t5_tiny");

    [Fact]
    public void Encode_WritesDiffusersNames_MatchingPyTorch()
    {
        var outPath = Path.Combine(CliRunner.TempDir(), "embeds.safetensors");
        var (code, stdout, err) = CliRunner.Run("encode", "--model", Folder, "--prompt", "a red fox in snow",
            "--negative-prompt", "", "--max-length", "16", "--device", "cpu", "--out", outPath);
        output.WriteLine(stdout + err);
        Assert.Equal(0, code);
        Assert.Contains("empty prompt", err);          // the empty negative prompt is logged, not refused
        Assert.Contains("T5 encoder freed", err);      // the encoder is freed after encoding
        using var f = SafeTensorsFile.Open(outPath);
        using var r = SafeTensorsFile.Open(Path.Combine(Folder, "t5_ref.safetensors"));
        Assert.Equal("I64", f.Get("prompt_attention_mask").DType);
        foreach (var prefix in new[] { "", "negative_" })
        {
            string key = prefix == "" ? "prompt" : "negative";
            var e = PromptEmbeddingsFile.Read(f, prefix);
            Assert.Equal((1, 16, 32), (e.Batch, e.Length, e.Dim));
            Assert.Equal(Array.ConvertAll(r.ReadFloat32($"{key}.mask"), v => (long)v), e.Mask);
            Tolerance.AssertClose(r.ReadFloat32($"{key}.embeds"), e.Embeds, 1e-4, 0, $"{prefix}prompt_embeds", output);
        }
    }

    [Fact]
    public void Encode_LongPrompt_IsTruncatedAndLogged()
    {
        var outPath = Path.Combine(CliRunner.TempDir(), "embeds.safetensors");
        var (code, _, err) = CliRunner.Run("encode", "--model", Path.Combine(Folder, "text_encoder"), "--max-length", "4",
            "--prompt", "an astronaut riding a horse, oil painting", "--device", "cpu", "--out", outPath);
        Assert.Equal(0, code);
        Assert.Contains("kept the first 3 tokens + EOS", err);
        using var f = SafeTensorsFile.Open(outPath);
        Assert.Equal([1f, 1f, 1f, 1f], f.ReadFloat32("prompt_attention_mask"));
        Assert.False(f.Contains("negative_prompt_embeds"));
    }

    [Fact]
    public void Encode_MissingShard_Exits2NamingIt()
    {
        var dir = CopyFolder();
        File.Delete(Path.Combine(dir, "text_encoder", "model-00001-of-00002.safetensors"));
        var outPath = Path.Combine(dir, "embeds.safetensors");
        var (code, _, err) = CliRunner.Run("encode", "--model", dir, "--prompt", "a fox", "--device", "cpu", "--out", outPath);
        Assert.Equal(2, code);
        Assert.Contains("model-00001-of-00002.safetensors", err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.False(File.Exists(outPath));
    }

    [Fact]
    public void Encode_CorruptTokenizer_Exits2()
    {
        var dir = CopyFolder();
        File.WriteAllBytes(Path.Combine(dir, "tokenizer", "spiece.model"), [0x0a, 0xff, 0xff, 0x01]);
        var (code, _, err) = CliRunner.Run("encode", "--model", dir, "--prompt", "a fox", "--device", "cpu",
            "--out", Path.Combine(dir, "e.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("expected a SentencePiece Unigram model", err);
    }

    [Fact]
    public void Encode_MissingTokenizer_Exits2()
    {
        var dir = CopyFolder();
        File.Delete(Path.Combine(dir, "tokenizer", "spiece.model"));
        var (code, _, err) = CliRunner.Run("encode", "--model", dir, "--prompt", "a fox", "--out", Path.Combine(dir, "e.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("tokenizer/spiece.model", err);
    }

    [Theory]
    [InlineData("--max-length", "0")]
    [InlineData("--out", "embeds.png")]
    public void Encode_BadOption_Exits2(string option, string value)
    {
        var (code, _, err) = CliRunner.Run("encode", "--model", Folder, "--prompt", "a fox", option, value);
        Assert.Equal(2, code);
        Assert.StartsWith("error:", err);
    }

    [Fact]
    public void Encode_WithoutPrompt_Exits2()
    {
        var (code, _, err) = CliRunner.Run("encode", "--model", Folder);
        Assert.Equal(2, code);
        Assert.Contains("--prompt", err);
    }

    static string CopyFolder()
    {
        var dir = CliRunner.TempDir();
        foreach (var sub in new[] { "text_encoder", "tokenizer" })
        {
            Directory.CreateDirectory(Path.Combine(dir, sub));
            foreach (var f in Directory.GetFiles(Path.Combine(Folder, sub))) File.Copy(f, Path.Combine(dir, sub, Path.GetFileName(f)));
        }
        return dir;
    }
}
