// `blockdance sample` on a PixArt-α folder: it writes an image from precomputed embeddings (masks as I64, BOOL
// or float give the same sample), and every bad input named by the issue is one line and exit 2.
using System.Text;
using System.Text.Json;
using BlockDance.Transformer.IO;
using Xunit;

namespace BlockDance.Tests;

public class PixArtCommandTests
{
    static string Model => CliRunner.Fixture("pixart_tiny");
    static string Embeds => CliRunner.Fixture("pixart_traj.safetensors");

    /// <summary>A safetensors file from raw little-endian bytes (the writer only writes F32).</summary>
    static void WriteRaw(string path, params (string Name, string DType, long[] Shape, byte[] Data)[] tensors)
    {
        var header = new Dictionary<string, object>();
        long at = 0;
        foreach (var t in tensors)
        {
            header[t.Name] = new { dtype = t.DType, shape = t.Shape, data_offsets = new[] { at, at + t.Data.Length } };
            at += t.Data.Length;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        using var f = File.Create(path);
        f.Write(BitConverter.GetBytes((ulong)json.Length));
        f.Write(json);
        foreach (var t in tensors) f.Write(t.Data);
    }

    static byte[] F32(float[] a) => a.SelectMany(BitConverter.GetBytes).ToArray();

    /// <summary>The fixture's prompt and negative, with the masks in the given dtype, optionally altered.</summary>
    static string EmbedsFile(string dir, string maskDType, Func<float[], float[]>? mask = null, int? width = null, int? maskLen = null)
    {
        using var f = SafeTensorsFile.Open(Embeds);
        var y = f.ReadFloat32("prompt_embeds"); var ny = f.ReadFloat32("negative_prompt_embeds");
        var m = f.ReadFloat32("prompt_attention_mask"); var nm = f.ReadFloat32("negative_prompt_attention_mask");
        int l = m.Length, c = width ?? 32;
        if (width is int w) y = new float[l * w];
        if (mask != null) m = mask(m);
        int ml = maskLen ?? l;
        m = m.Concat(new float[Math.Max(0, ml - l)]).Take(ml).ToArray();
        byte[] Mask(float[] v) => maskDType switch
        {
            "I64" => v.SelectMany(x => BitConverter.GetBytes((long)x)).ToArray(),
            "BOOL" => v.Select(x => (byte)x).ToArray(),
            _ => F32(v),
        };
        var path = Path.Combine(dir, $"embeds_{maskDType}_{Guid.NewGuid():N}.safetensors");
        WriteRaw(path, ("prompt_embeds", "F32", [1, l, c], F32(y)), ("prompt_attention_mask", maskDType, [1, ml], Mask(m)),
            ("negative_prompt_embeds", "F32", [1, l, 32], F32(ny)), ("negative_prompt_attention_mask", maskDType, [1, l], Mask(nm)));
        return path;
    }

    static void AssertBadInput((int Code, string Out, string Err) r, string expected)
    {
        Assert.True(r.Code == 2, $"exit {r.Code}: {r.Err}{r.Out}");
        Assert.Single(r.Err.Trim().Split('\n'));
        Assert.Contains(expected, r.Err);
    }

    [Fact]
    public void Sample_PixArtFolder_WritesPng_AndMaskDTypesAgree()
    {
        var dir = CliRunner.TempDir();
        var png = Path.Combine(dir, "img.png");
        var r = CliRunner.Run("sample", "--model", Model, "--prompt-embeds", Embeds, "--steps", "4", "--device", "cpu", "--out", png);
        Assert.True(r.Code == 0, r.Err + r.Out);
        Assert.Contains("DPM-Solver++ 2M, 4 steps, cfg 4.5", r.Out);
        Assert.True(new FileInfo(png).Length > 100);
        float[] Latents(string dtype)
        {
            var o = Path.Combine(dir, $"x_{dtype}.safetensors");
            var rr = CliRunner.Run("sample", "--model", Model, "--prompt-embeds", EmbedsFile(dir, dtype), "--steps", "3", "--device", "cpu", "--out", o);
            Assert.True(rr.Code == 0, rr.Err + rr.Out);
            using var f = SafeTensorsFile.Open(o);
            return f.ReadFloat32("sample");
        }
        var i64 = Latents("I64");
        Assert.Equal(i64, Latents("BOOL"));
        Assert.Equal(i64, Latents("F32"));
    }

    [Fact]
    public void Sample_PixArt_BadInputs_OneLineExit2()
    {
        var dir = CliRunner.TempDir();
        var o = Path.Combine(dir, "x.safetensors");
        (int, string, string) Sample(params string[] extra) =>
            CliRunner.Run(["sample", "--model", Model, "--device", "cpu", "--steps", "2", "--out", o, .. extra]);

        AssertBadInput(Sample("--prompt-embeds", EmbedsFile(dir, "I64", maskLen: 5)), "'prompt_attention_mask' shape: expected [1, 8]");
        AssertBadInput(Sample("--prompt-embeds", EmbedsFile(dir, "I64", m => new float[m.Length])), "expected at least one real token (1), found all zeros");
        AssertBadInput(Sample("--prompt-embeds", EmbedsFile(dir, "F32", width: 24)), "width: expected 32 (the model's caption_channels), found 24");
        AssertBadInput(Sample("--prompt-embeds", EmbedsFile(dir, "F32", m => m.Select(v => v * 2).ToArray())), "expected 0 or 1");
        AssertBadInput(Sample(), "--prompt-embeds: expected --prompt TEXT or a safetensors file");
        AssertBadInput(CliRunner.Run("sample", "--model", CliRunner.Fixture("pixart_tiny_ms"), "--prompt-embeds", Embeds, "--out", Path.Combine(dir, "x.png")),
            "no VAE decoder was found");                                     // a folder without vae/ and a .png output
        AssertBadInput(Sample("--prompt-embeds", Embeds, "--class", "1"), "--class: expected --prompt-embeds");
        AssertBadInput(CliRunner.Run("sample", "--model", CliRunner.Fixture("dit_p2_diffusers"), "--prompt-embeds", Embeds, "--out", o), "expected a text-conditional PixArt-α folder");

        // guidance without unconditional captions
        using (var f = SafeTensorsFile.Open(Embeds))
        {
            var only = Path.Combine(dir, "prompt_only.safetensors");
            SafeTensorsWriter.Write(only, [("prompt_embeds", [1, 8, 32], f.ReadFloat32("prompt_embeds"))]);
            AssertBadInput(Sample("--prompt-embeds", only), "needs the unconditional captions");
        }

        // a folder missing its weights; a 1024-MS config whose weights lack the micro-condition embedders
        var broken = Path.Combine(dir, "pixart_broken");
        Directory.CreateDirectory(Path.Combine(broken, "transformer"));
        File.Copy(Path.Combine(Model, "transformer", "config.json"), Path.Combine(broken, "transformer", "config.json"));
        AssertBadInput(CliRunner.Run("sample", "--model", broken, "--prompt-embeds", Embeds, "--device", "cpu", "--out", o), "PixArt weights missing");
        File.Copy(Path.Combine(Model, "transformer", "diffusion_pytorch_model.safetensors"), Path.Combine(broken, "transformer", "diffusion_pytorch_model.safetensors"));
        var cfg = File.ReadAllText(Path.Combine(broken, "transformer", "config.json")).Replace("\"sample_size\": 8", "\"sample_size\": 8, \"use_additional_conditions\": true");
        File.WriteAllText(Path.Combine(broken, "transformer", "config.json"), cfg);
        AssertBadInput(CliRunner.Run("sample", "--model", broken, "--prompt-embeds", Embeds, "--device", "cpu", "--out", o), "micro-conditions");
        Assert.False(File.Exists(o));
    }

    [Fact]
    public void Analyze_PixArt_WritesTheStssMapOverDpmSolverSteps()
    {
        var dir = CliRunner.TempDir();
        string csv = Path.Combine(dir, "stss.csv"), png = Path.Combine(dir, "stss.png");
        var r = CliRunner.Run("analyze", "--model", Model, "--prompt-embeds", Embeds, "--steps", "6", "--device", "cpu", "--csv", csv, "--png", png);
        Assert.True(r.Code == 0, r.Err + r.Out);
        var lines = File.ReadAllLines(csv);
        Assert.Equal(1 + 2 * 5, lines.Length);                               // 2 blocks × 5 step pairs
        Assert.StartsWith("1,999,832,0,", lines[1]);                         // DPM-Solver++ linspace timesteps: 999, 832, 666, …
        Assert.True(new FileInfo(png).Length > 100);
    }
}
