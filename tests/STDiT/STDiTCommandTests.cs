// blockdance sample on the tiny STDiT: the README's command (--prompt-embeds, --frames, --out clip.png) writes an
// animated PNG of the model's frames (acTL frame count, one fcTL per frame); --out latents.safetensors keeps
// (B, 4, T, H, W); --noise + --step-noise make the run reproducible from files; bad inputs are one line, exit 2
// (a step-noise tensor of the wrong shape, video options on a DiT, an .mp4 without ffmpeg on the search path).
using System.Buffers.Binary;
using System.Text;
using BlockDance.Sampler;
using BlockDance.Sampler.Cli;
using BlockDance.Transformer.IO;
using Xunit;

namespace BlockDance.Tests;

public class STDiTCommandTests
{
    static string F(string n) => CliRunner.Fixture(n);
    static string[] Base(string outPath, params string[] more) =>
        ["sample", "--model", F("stdit_tiny"), "--prompt-embeds", F("stdit_traj.safetensors"), "--frames", "3", "--steps", "4",
         "--vae", F("pixart_tiny/vae"), "--out", outPath, .. more];

    static List<string> ChunkTypes(byte[] file, out int frames)
    {
        var types = new List<string>();
        frames = -1;
        for (int at = 8; at < file.Length;)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(at));
            var type = Encoding.ASCII.GetString(file, at + 4, 4);
            if (type == "acTL") frames = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(at + 8));
            types.Add(type);
            at += 12 + len;
        }
        return types;
    }

    [Fact]
    public void Sample_OutPng_IsAnAnimatedPngOfTheFrames()
    {
        var path = Path.Combine(CliRunner.TempDir(), "clip.png");
        var (code, stdout, err) = CliRunner.Run(Base(path, "--cache", "blockdance", "--cache-block", "1"));
        Assert.True(code == 0, err);
        Assert.Contains("animated PNG, 3 frames", stdout);
        var types = ChunkTypes(File.ReadAllBytes(path), out int frames);
        Assert.Equal(3, frames);
        Assert.Equal(3, types.Count(t => t == "fcTL"));
        Assert.Equal(2, types.Count(t => t == "fdAT"));
    }

    [Fact]
    public void Sample_Latents_FromNoiseAndStepNoiseFiles_AreReproducible()
    {
        var dir = CliRunner.TempDir();
        string[] files = ["--noise", F("stdit_traj.safetensors"), "--step-noise", F("stdit_traj.safetensors"), "--steps", "10"];
        var (c1, _, e1) = CliRunner.Run(Base(Path.Combine(dir, "a.safetensors"), files));
        Assert.True(c1 == 0, e1);
        var (c2, _, e2) = CliRunner.Run(Base(Path.Combine(dir, "b.safetensors"), [.. files, "--seed", "5"]));
        Assert.True(c2 == 0, e2);
        using var a = SafeTensorsFile.Open(Path.Combine(dir, "a.safetensors"));
        using var b = SafeTensorsFile.Open(Path.Combine(dir, "b.safetensors"));
        Assert.Equal(new long[] { 1, 4, 3, 8, 8 }, a.Get("sample").Shape);
        Assert.Equal(a.ReadFloat32("sample"), b.ReadFloat32("sample"));      // every noise came from the files: the seed is unused
    }

    [Fact]
    public void BadVideoInputs_OneLineExit2()
    {
        var dir = CliRunner.TempDir();
        var (code, _, err) = CliRunner.Run(Base(Path.Combine(dir, "x.safetensors"), "--step-noise", F("stdit_tiny.ref.safetensors")));
        Assert.Equal(2, code);
        Assert.Contains("'step_noise'", err);
        Assert.Single(err.Trim().Split('\n'));
        (code, _, err) = CliRunner.Run("sample", "--model", F("dit_p2.weights.safetensors"), "--frames", "16", "--out", Path.Combine(dir, "y.png"));
        Assert.Equal(2, code);
        Assert.Contains("--frames", err);
        var ex = Assert.Throws<UsageException>(() => VideoWriter.Preflight(Path.Combine(dir, "clip.mp4"), searchPath: dir));
        Assert.Contains("'ffmpeg'", ex.Message);
        Assert.False(File.Exists(Path.Combine(dir, "x.safetensors")));
    }
}
