// blockdance analyze: the STSS observation (BlockDance's Figures 2 and 6) measured on any model.
// Runs one uncached sampling job, records for every block and adjacent step pair the MSE and cosine
// similarity of the block's outputs (whole model batch incl. CFG halves; StssAnalysis), and writes
//   --csv  step_pair,t_prev,t,block,mse,cosine   (step_pair s compares steps s−1 and s)
//   --png  heatmaps blocks × step pairs: cosine, log10 MSE and log10(1 − cosine) (bright = similar in all)
// then prints where reuse looks safest (StssSummary). Outputs are checked writable before sampling.
using System.Globalization;
using System.Text;
using BlockDance.Cache;
using BlockDance.Sampler.Analysis;
using BlockDance.Sampler.Cli;
using BlockDance.Transformer;

namespace BlockDance.Sampler.Commands;

public static class AnalyzeCommand
{

    public static int Run(string[] argv)
    {
        var a = Args.Parse("analyze", argv);
        if (a.Positional.Count > 0) throw new UsageException($"analyze: unexpected argument '{a.Positional[0]}'");
        var csvPath = a.Get("csv")!;
        var pngPath = a.Get("png")!;
        if (!csvPath.EndsWith(".csv", StringComparison.OrdinalIgnoreCase))
            throw new UsageException($"--csv {csvPath}: expected a file name ending in .csv");
        if (!pngPath.EndsWith(".png", StringComparison.OrdinalIgnoreCase))
            throw new UsageException($"--png {pngPath}: expected a file name ending in .png");
        AtomicFile.CheckWritable(csvPath, "--csv");
        Figure.CheckOutput(pngPath, "--png");
        // Cosine ≥ 0.95 as "highly similar": the level the paper's Figure 6 matrices show for the
        // shallow/middle blocks inside the reuse window; the window is BlockDance's default for DiT-XL/2.
        double threshold = a.GetDouble("threshold");
        var modelPath = CommonOptions.ModelPath(a);
        var window = a.ForModel(ModelRun.KindOf(modelPath)).GetDoubleList("window");
        if (window[0] < 0 || window[1] > 1 || window[0] >= window[1])
            throw new UsageException($"--window: expected 0 ≤ start < end ≤ 1, found {window[0]},{window[1]}");
        var run = ModelRun.For(a, modelPath);
        var cfg = run.Shape;
        var opts = run.Options with { Progress = true, ProfileSteps = true };   // reports the model time
        if (opts.Steps < 2)
            throw new UsageException($"--steps: the analysis compares adjacent steps; expected at least 2, found {opts.Steps}");

        using var dev = CommonOptions.Device(a);
        var conditioning = run.Conditioning(dev);
        Console.WriteLine($"model: {modelPath}");
        Console.WriteLine($"       {run.ConfigText}");
        var model = run.Load(dev);
        using var disposeModel = (IDisposable)model;
        var r = StssAnalysis.Run(model, conditioning, opts);

        int n = conditioning.Count, batches = (n + opts.BatchFor(n) - 1) / opts.BatchFor(n);
        Write(r, csvPath, pngPath, run.IsPixArt
            ? $"PixArt-alpha {opts.SamplerName} {r.Steps} steps cfg {opts.Cfg:0.##} {n} prompts"
            : $"{run.Name} {opts.SamplerName} {r.Steps} steps cfg {opts.Cfg:0.##} {conditioning.Describe()}");
        var summary = new StssSummary(r, window[0], window[1], threshold, BlockDanceConfig.DefaultBoundary(cfg.Depth));
        foreach (var line in summary.Lines()) Console.WriteLine(line);
        Console.WriteLine(run.IsPixArt
            ? $"time: {r.AnalysisSeconds:F2} s for {r.Steps} steps on {dev.Describe()}"
            : $"time: {r.AnalysisSeconds:F2} s for {r.Steps} steps × {batches} batch(es) " +
              $"(model {r.Sampling.ModelSeconds:F2} s incl. the analysis kernels), on {dev.Describe()}");
        return 0;
    }

    static void Write(StssResult r, string csvPath, string pngPath, string caption)
    {
        AtomicFile.Write(csvPath, s => s.Write(Encoding.UTF8.GetBytes(Csv(r))));
        var (png, svg) = Heatmap.Write(pngPath,
        [
            new HeatmapPanel("cosine similarity of each block's output, step s−1 vs step s", r.Cosine, "block", "step s", FirstColumn: 1, Unit: "cosine"),
            new HeatmapPanel("mean squared difference, step s−1 vs step s (bright = low)", Log10(r.Mse, 0), "block", "step s", FirstColumn: 1, BrightIsLow: true, Unit: "log10 MSE"),
            // cosines near 1 all look alike on a linear scale: 1 − cos on a log scale separates 0.999 from 0.99999
            new HeatmapPanel("distance from cosine 1 (bright = low = similar)", Log10(r.Cosine, 1), "block", "step s", FirstColumn: 1, BrightIsLow: true, Unit: "log10(1 − cosine)"),
        ], caption: caption);
        Console.WriteLine($"wrote {csvPath}: {r.Depth * r.Pairs} rows ({r.Depth} blocks × {r.Pairs} step pairs)");
        Console.WriteLine($"wrote {png} and {svg}");
    }

    public static string Csv(StssResult r)
    {
        var sb = new StringBuilder("step_pair,t_prev,t,block,mse,cosine\n");
        var inv = CultureInfo.InvariantCulture;
        for (int p = 0; p < r.Pairs; p++)
            for (int b = 0; b < r.Depth; b++)
                sb.Append(inv, $"{p + 1},{r.StepTimesteps[p]},{r.StepTimesteps[p + 1]},{b},{r.Mse[b, p]:R},{r.Cosine[b, p]:R}\n");
        return sb.ToString();
    }

    /// <summary>log10(v) when one = 0, log10(1 − v) when one = 1 (−∞ for 0: drawn grey).</summary>
    static double[,] Log10(double[,] v, double one)
    {
        var o = new double[v.GetLength(0), v.GetLength(1)];
        for (int i = 0; i < v.GetLength(0); i++)
            for (int j = 0; j < v.GetLength(1); j++) o[i, j] = Math.Log10(one == 0 ? v[i, j] : one - v[i, j]);
        return o;
    }
}
