// The README's library example is this file's Example method, compiled with the tests and run on the
// demo model; a second test checks that the README shows exactly this code (lines compared trimmed).
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler;
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

    static string RepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, "BlockDance.sln"))) return d.FullName;
        throw new DirectoryNotFoundException($"no BlockDance.sln above {AppContext.BaseDirectory}");
    }

    static string[] Lines(IEnumerable<string> lines) => lines.Select(l => l.Trim()).Where(l => l.Length > 0).ToArray();

    [Fact]
    public void Readme_ShowsTheLibraryExample_ThisTestCompiles()
    {
        var root = RepoRoot();
        var readme = File.ReadAllLines(Path.Combine(root, "README.md"));
        int open = Array.FindIndex(readme, l => l.Trim() == "```csharp");
        Assert.True(open >= 0, "README.md has no ```csharp block");
        int close = Array.FindIndex(readme, open + 1, l => l.Trim() == "```");
        var shown = Lines(readme[(open + 1)..close]);

        var source = File.ReadAllLines(Path.Combine(root, "tests", "Sampler", "ReadmeExampleTests.cs"));
        var usings = shown.TakeWhile(l => l.StartsWith("using ") && l.EndsWith(';') && !l.Contains('(')).ToArray();
        Assert.NotEmpty(usings);
        foreach (var u in usings) Assert.Contains(u, source);   // the README's usings are this file's
        int b = Array.FindIndex(source, l => l.Trim() == Begin), e = Array.FindIndex(source, l => l.Trim() == End);
        Assert.Equal(Lines(source[(b + 1)..e]), shown[usings.Length..]);
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
