// `sample --prompt TEXT` on a PixArt-layout folder runs tokenizer → T5 → PixArt → (VAE) in one command. The folder
// is assembled from the tiny fixtures (pixart_tiny: transformer/, vae/; t5_tiny: text_encoder/, tokenizer/; both
// 32-wide captions). Claim: the in-process route gives the same bytes as `encode` to a file and then
// `sample --prompt-embeds` with that file — the features are the T5 encoder's, checked against PyTorch in T5 tests.
using BlockDance.Transformer.IO;
using Xunit;

namespace BlockDance.Tests;

public class PromptSampleTests
{
    internal static string PixArtWithT5()
    {
        var dir = CliRunner.TempDir();
        void Copy(string from, string to)
        {
            foreach (var f in Directory.GetFiles(from, "*", SearchOption.AllDirectories))
            {
                var target = Path.Combine(to, Path.GetRelativePath(from, f));
                Directory.CreateDirectory(Path.GetDirectoryName(target)!);
                File.Copy(f, target);
            }
        }
        Copy(CliRunner.Fixture("pixart_tiny"), dir);
        Copy(CliRunner.Fixture("t5_tiny/text_encoder"), Path.Combine(dir, "text_encoder"));
        Copy(CliRunner.Fixture("t5_tiny/tokenizer"), Path.Combine(dir, "tokenizer"));
        return dir;
    }

    [Fact]
    public void SamplePrompt_EqualsEncodeThenPromptEmbeds()
    {
        var model = PixArtWithT5();
        var work = CliRunner.TempDir();
        string embeds = Path.Combine(work, "e.safetensors"), viaFile = Path.Combine(work, "a.safetensors"), direct = Path.Combine(work, "b.safetensors");
        var enc = CliRunner.Run("encode", "--model", model, "--prompt", "a red fox in snow", "--negative-prompt", "", "--device", "cpu", "--out", embeds);
        Assert.True(enc.Code == 0, enc.Err);
        var a = CliRunner.Run("sample", "--model", model, "--prompt-embeds", embeds, "--steps", "3", "--device", "cpu", "--out", viaFile);
        Assert.True(a.Code == 0, a.Err);
        var b = CliRunner.Run("sample", "--model", model, "--prompt", "a red fox in snow", "--steps", "3", "--device", "cpu", "--out", direct);
        Assert.True(b.Code == 0, b.Err);
        using var fa = SafeTensorsFile.Open(viaFile);
        using var fb = SafeTensorsFile.Open(direct);
        Assert.Equal(fa.ReadFloat32("sample"), fb.ReadFloat32("sample"));   // bit-identical latents (metadata names the source)
    }

    [Fact]
    public void SamplePrompts_Repeated_OneSampleEach_EqualsEncodeOfBoth()
    {
        var model = PixArtWithT5();
        var work = CliRunner.TempDir();
        string embeds = Path.Combine(work, "e.safetensors"), viaFile = Path.Combine(work, "a.safetensors"), direct = Path.Combine(work, "b.safetensors");
        string one = Path.Combine(work, "c.safetensors");
        var enc = CliRunner.Run("encode", "--model", model, "--prompt", "a red fox", "--prompt", "a blue owl at night", "--negative-prompt", "",
            "--device", "cpu", "--out", embeds);
        Assert.True(enc.Code == 0, enc.Err);
        Assert.Contains("prompt_embeds (2, 120, 32)", enc.Out);
        var a = CliRunner.Run("sample", "--model", model, "--prompt-embeds", embeds, "--steps", "3", "--device", "cpu", "--out", viaFile);
        Assert.True(a.Code == 0, a.Err);
        var b = CliRunner.Run("sample", "--model", model, "--prompt", "a red fox", "--prompt", "a blue owl at night", "--steps", "3", "--device", "cpu", "--out", direct);
        Assert.True(b.Code == 0, b.Err);
        var c = CliRunner.Run("sample", "--model", model, "--prompt", "a red fox", "--steps", "3", "--device", "cpu", "--out", one);
        Assert.True(c.Code == 0, c.Err);
        using var fa = SafeTensorsFile.Open(viaFile);
        using var fb = SafeTensorsFile.Open(direct);
        using var fc = SafeTensorsFile.Open(one);
        var both = fb.ReadFloat32("sample");
        Assert.Equal([2, 4, 8, 8], fb.Get("sample").Shape.Select(d => (int)d));
        Assert.Equal(fa.ReadFloat32("sample"), both);                     // the same two captions, in order
        Assert.Equal(fc.ReadFloat32("sample"), both[..(both.Length / 2)]); // sample 0 does not depend on the prompts after it
        Assert.Equal("a red fox|a blue owl at night", fb.Metadata["prompt"]);
    }

    [Fact]
    public void SamplePrompt_WithPromptEmbedsToo_IsOneLineExit2()
    {
        var model = PixArtWithT5();
        var outPath = Path.Combine(CliRunner.TempDir(), "x.safetensors");
        var r = CliRunner.Run("sample", "--model", model, "--prompt", "fox", "--prompt-embeds", "e.safetensors", "--device", "cpu", "--out", outPath);
        Assert.Equal(2, r.Code);
        Assert.Contains("--prompt", r.Err);
        Assert.Single(r.Err.Trim().Split('\n'));
        Assert.False(File.Exists(outPath));
    }

    [Fact]
    public void SamplePrompt_OnAClassConditionalDiT_IsOneLineExit2()
    {
        var outPath = Path.Combine(CliRunner.TempDir(), "x.png");
        var r = CliRunner.Run("sample", "--model", CliRunner.Fixture("dit_p2.weights.safetensors"), "--prompt", "fox", "--device", "cpu", "--out", outPath);
        Assert.Equal(2, r.Code);
        Assert.Contains("--prompt", r.Err);
        Assert.False(File.Exists(outPath));
    }
}
