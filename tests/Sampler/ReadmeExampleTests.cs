// The README's library examples are this file's Example (the DiT demo model) and PixArtExample (PixArt-α from text,
// on a folder assembled from the tiny fixtures) methods, compiled with the tests and run; a test checks that the
// README shows exactly this code (its k-th ```csharp block = the k-th marked region here; lines compared trimmed).
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampling;
using BlockDance.Transformer.IO;
using Xunit;

namespace BlockDance.Tests;

public class ReadmeExampleTests
{
    const string Begin = "// README example: begin", End = "// README example: end";

    static (SamplingResult, IReadOnlyList<SampleImage>) Example()
    {
        // README example: begin
        using var pipe = DiTPipeline.Load("models/dit_mnist.safetensors", DeviceKind.Cpu);
        var result = pipe.Sample(new SamplingOptions
        {
            Classes = [3, 5],                          // one digit of each class
            Steps = 10,                                // DDIM, guidance scale 4 (the defaults)
            Policy = () => new BlockDancePolicy(new BlockDanceConfig(N: 2)),
        });
        float[] x0 = result.Samples;                   // (2, 1, 14, 14) in [−1, 1]
        IReadOnlyList<SampleImage> digits = pipe.Images(result);   // 8-bit pixels, one image per sample
        Console.WriteLine($"{result.Policy}: {result.BlocksSkipped} of {result.BlocksTotal} block evaluations skipped per sample");
        // README example: end
        return (result, digits);
    }

    static (SamplingResult, IReadOnlyList<SampleImage>) PixArtExample(string folder)
    {
        // README example: begin
        using var pipe = PixArtPipeline.Load(folder, DeviceKind.Cpu);
        PromptEmbeds captions = pipe.Encode("a red fox in snow");   // tokenizer + T5 on the pipeline's device; negative ""
        var result = pipe.Sample(captions, PixArtPipeline.DefaultOptions with
        {
            Steps = 3,                                 // DPM-Solver++ 2M, guidance 4.5 (diffusers' defaults)
            Policy = () => new BlockDancePolicy(new BlockDanceConfig(N: 2)),
        });
        float[] latents = result.Samples;              // (1, 4, h, w) VAE latents
        IReadOnlyList<SampleImage> pictures = pipe.Images(result);   // decoded by the folder's VAE
        // README example: end
        return (result, pictures);
    }

    static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "BlockDance.sln"))) return d.FullName;
        throw new DirectoryNotFoundException($"no BlockDance.sln above {AppContext.BaseDirectory}");
    }

    static string[] Lines(IEnumerable<string> lines) => lines.Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();

    [Fact]
    public void Readme_ShowsTheLibraryExamples_ThisTestCompiles()
    {
        var root = RepoRoot();
        var readme = File.ReadAllLines(Path.Combine(root, "README.md"));
        var source = File.ReadAllLines(Path.Combine(root, "tests", "Sampler", "ReadmeExampleTests.cs"));
        int open = -1, b = -1;
        for (int k = 0; k < 2; k++)
        {
            open = Array.FindIndex(readme, open + 1, l => l.Trim() == "```csharp");
            Assert.True(open >= 0, $"README.md has no ```csharp block {k + 1}");
            int close = Array.FindIndex(readme, open + 1, l => l.Trim() == "```");
            var shown = Lines(readme[(open + 1)..close]);
            var usings = shown.TakeWhile(l => l.StartsWith("using ") && l.EndsWith(';') && !l.Contains('(')).ToArray();
            if (k == 0) Assert.NotEmpty(usings);
            foreach (var u in usings) Assert.Contains(u, source);   // the README's usings are this file's
            b = Array.FindIndex(source, b + 1, l => l.Trim() == Begin);
            int e = Array.FindIndex(source, b, l => l.Trim() == End);
            Assert.Equal(Lines(source[(b + 1)..e]), shown[usings.Length..]);
        }
    }

    [Fact]
    public void ReadmePixArtExample_FromText_EqualsTheProgramsSamplePrompt()
    {
        var folder = PromptSampleTests.PixArtWithT5();
        var (result, pictures) = PixArtExample(folder);
        var cfg = BlockDance.Transformer.PixArtConfig.Read(folder);
        Assert.Equal([1, 4, cfg.LatentSize, cfg.LatentSize], result.Shape);
        Assert.Single(pictures);
        Assert.Equal((pictures[0].Height, 3), (pictures[0].Width, pictures[0].Channels));
        Assert.Equal(3L * cfg.Depth, result.BlocksTotal);
        // the library path is the program's: `sample --prompt` with the same settings writes the same latents
        var outPath = Path.Combine(CliRunner.TempDir(), "x.safetensors");
        var r = CliRunner.Run("sample", "--model", folder, "--prompt", "a red fox in snow", "--steps", "3", "--cache", "blockdance", "--cache-window", "0.25,0.95",
            "--device", "cpu", "--out", outPath);
        Assert.True(r.Code == 0, r.Err);
        using var f = SafeTensorsFile.Open(outPath);
        Assert.Equal(f.ReadFloat32("sample"), result.Samples);
    }

    [Fact]
    public void ReadmeExample_SamplesTwoDigits_AndSkipsBlocks()
    {
        var cwd = Environment.CurrentDirectory;
        Environment.CurrentDirectory = RepoRoot();   // the example names the demo model relative to the repository
        try
        {
            var (result, digits) = Example();
            Assert.Equal([2, 1, 14, 14], result.Shape);
            Assert.Equal(2, digits.Count);
            Assert.All(digits, d => Assert.Equal((14, 14, 1, 196), (d.Width, d.Height, d.Channels, d.Pixels.Length)));
            // 10 steps, window [0.25, 0.95): steps 4, 6, 8 reuse blocks 0..3 of 6 → 12 of 60 skipped
            Assert.Equal((12.0, 60L), (result.BlocksSkipped, result.BlocksTotal));
            // the images are the samples mapped [−1, 1] → [0, 255]
            Assert.Equal((byte)Math.Clamp(Math.Round((result.Samples[0] + 1) / 2 * 255.0), 0, 255), digits[0].Pixels[0]);
        }
        finally { Environment.CurrentDirectory = cwd; }
    }
}
