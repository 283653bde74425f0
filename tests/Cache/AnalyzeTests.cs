// `blockdance analyze` end to end on the 2-block fixture model: the CSV has one finite row per
// (block, step pair), its values equal a float64 recomputation from block outputs recorded on the
// host through DiT.OnBlockOutput (pooled over the whole model batch, CFG halves and batches
// included), the PNG is written, and bad output paths fail with exit 2 before any sampling.
using System.Globalization;
using BlockDance.Sampler;
using BlockDance.Sampler.Analysis;
using BlockDance.Transformer;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class AnalyzeTests(ITestOutputHelper output)
{
    static readonly string P2 = CliRunner.Fixture("dit_p2.weights.safetensors");   // depth 2, D 64, 16 tokens
    const int Steps = 4;

    sealed record Row(int Pair, int TPrev, int T, int Block, double Mse, double Cosine);

    static List<Row> ReadCsv(string path)
    {
        var lines = File.ReadAllLines(path);
        Assert.Equal("step_pair,t_prev,t,block,mse,cosine", lines[0]);
        return lines.Skip(1).Select(l => l.Split(',')).Select(f => new Row(int.Parse(f[0]), int.Parse(f[1]), int.Parse(f[2]), int.Parse(f[3]),
            double.Parse(f[4], CultureInfo.InvariantCulture), double.Parse(f[5], CultureInfo.InvariantCulture))).ToList();
    }

    [SkippableTheory]
    [InlineData("cpu", "1", "1")]        // one batch of 1 sample, CFG → model batch 2
    [InlineData("cpu", "1,2", "1")]      // two batches of 1: sums pooled over both
    [InlineData("cuda", "1,2", "2")]  // one batch of 2 samples
    public void Analyze_CsvAndPng_MatchHostRecomputation(string kind, string classes, string batch)
    {
        var dev = TestDevices.Get(kind);
        var dir = CliRunner.TempDir();
        string csv = Path.Combine(dir, "stss.csv"), png = Path.Combine(dir, "stss.png");
        var (code, stdout, stderr) = CliRunner.Run("analyze", "--model", P2, "--device", kind, "--steps", $"{Steps}",
            "--class", classes, "--batch", batch, "--csv", csv, "--png", png);
        output.WriteLine(stdout + stderr);
        Assert.True(code == 0, stderr);
        Assert.Contains("reuse boundary:", stdout);
        Assert.Equal(3, Directory.GetFiles(dir).Length); // csv, png, svg: no temporary file left behind

        var rows = ReadCsv(csv);
        Assert.Equal(2 * (Steps - 1), rows.Count);
        foreach (var r in rows)
        {
            Assert.True(double.IsFinite(r.Mse) && double.IsFinite(r.Cosine), $"row {r}");
            Assert.True(r.Mse >= 0, $"mse < 0 in {r}");
            Assert.InRange(r.Cosine, -1, 1);
        }
        Assert.Equal([999, 666, 333], rows.Where(r => r.Block == 0).Select(r => r.TPrev));
        Assert.Equal([666, 333, 0], rows.Where(r => r.Block == 0).Select(r => r.T));
        var bytes = File.ReadAllBytes(png);
        Assert.Equal([0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A], bytes[..8]);
        Assert.Contains("<svg", File.ReadAllText(Path.ChangeExtension(png, ".svg")));   // the SVG twin

        // The same run in-process, with every block output copied to the host as it is produced.
        using var model = ModelLoader.Load(dev, P2);
        var recorded = new List<(int Block, float[] Output)>();
        model.OnBlockOutput = (b, t) => recorded.Add((b, t.ToHost()));
        var opts = new SamplingOptions { Classes = classes.Split(',').Select(int.Parse).ToList(), Steps = Steps, Batch = int.Parse(batch) };
        var result = StssAnalysis.Run(model, opts);
        Assert.NotNull(model.OnBlockOutput); // the test's handler is restored
        int depth = model.Config.Depth;
        Assert.Equal(Steps * depth * (opts.Classes.Count / opts.EffectiveBatch), recorded.Count);

        // Host recomputation in float64: sums over all batches' model rows, per (pair, block).
        var sums = new double[Steps - 1, depth, 4];
        long elements = 0;
        for (int i = 0; i < recorded.Count; i++)
        {
            int step = i / depth % Steps, block = recorded[i].Block;
            if (block == 0 && step == 1) elements += recorded[i].Output.Length;
            if (step == 0) continue;
            float[] cur = recorded[i].Output, prev = recorded[i - depth].Output;
            for (int e = 0; e < cur.Length; e++)
            {
                double x = cur[e], y = prev[e];
                sums[step - 1, block, 0] += (x - y) * (x - y);
                sums[step - 1, block, 1] += x * y;
                sums[step - 1, block, 2] += x * x;
                sums[step - 1, block, 3] += y * y;
            }
        }
        Assert.Equal(elements, result.ElementsPerPair);
        foreach (var r in rows)
        {
            int p = r.Pair - 1;
            double mse = sums[p, r.Block, 0] / elements;
            double cos = sums[p, r.Block, 1] / Math.Sqrt(sums[p, r.Block, 2] * sums[p, r.Block, 3]);
            output.WriteLine($"pair {r.Pair} block {r.Block}: mse {r.Mse:R} (host {mse:R}), cosine {r.Cosine:R} (host {cos:R})");
            // float64 sums of the same float32 values in another order: agreement to ~1e-12; 1e-9 leaves room.
            Assert.True(Math.Abs(r.Mse - mse) <= 1e-9 * mse, $"mse pair {r.Pair} block {r.Block}: csv {r.Mse:R}, host {mse:R}");
            Assert.True(Math.Abs(r.Cosine - cos) <= 1e-9, $"cosine pair {r.Pair} block {r.Block}: csv {r.Cosine:R}, host {cos:R}");
            Assert.Equal(r.Mse, result.Mse[r.Block, p], 1e-9 * mse);
        }
    }

    [Fact]
    public void Analyze_BadOutputs_Exit2_NoFiles()
    {
        var dir = CliRunner.TempDir();
        string csv = Path.Combine(dir, "s.csv"), png = Path.Combine(dir, "s.png");
        foreach (var (args, message) in new (string[], string)[]
        {
            (["--csv", Path.Combine(dir, "missing", "s.csv"), "--png", png], "does not exist"),
            (["--csv", csv, "--png", Path.Combine(dir, "missing", "s.png")], "does not exist"),
            (["--csv", csv, "--png", "/proc/s.png"], "not writable"),           // /proc refuses new files even for root
            (["--csv", Path.Combine(dir, "s.txt"), "--png", png], "--csv"),
            (["--csv", csv, "--png", Path.Combine(dir, "s.jpg")], "--png"),
            (["--csv", csv, "--png", png, "--steps", "1"], "expected at least 2"),
            (["--csv", csv, "--png", png, "--window", "0.9,0.2"], "--window"),
            (["--csv", csv, "--png", png, "--cache", "blockdance"], "unknown option '--cache'"),
        })
        {
            var (code, _, err) = CliRunner.Run(["analyze", "--model", P2, "--device", "cpu", .. args]);
            output.WriteLine(err);
            Assert.Equal(2, code);
            Assert.Contains(message, err);
            Assert.DoesNotContain("   at ", err);
            Assert.Empty(Directory.GetFileSystemEntries(dir));
        }
    }

    [Fact]
    public void Heatmap_DrawsColormapEnds_AndGreyForNonFinite()
    {
        var v = new double[,] { { 0, 1 }, { double.NegativeInfinity, 0.5 } };
        using var bmp = SkiaSharp.SKBitmap.Decode(Heatmap.RenderPng([new HeatmapPanel("test", v, "block", "step")]));
        var colours = bmp.Pixels.Select(c => (c.Red, c.Green, c.Blue)).ToHashSet();
        Assert.Contains(Heatmap.Viridis(0), colours);
        Assert.Contains(Heatmap.Viridis(1), colours);
        Assert.Contains(((byte)160, (byte)160, (byte)160), colours);
        Assert.Equal(((byte)68, (byte)1, (byte)84), Heatmap.Viridis(0));
        Assert.Equal(((byte)253, (byte)231, (byte)37), Heatmap.Viridis(1));
    }
}
