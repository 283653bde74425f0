// Reads back the table that `blockdance eval --out-md FILE` wrote, for `eval --plot-from FILE --plot x.png`:
// the figure of a finished (long) evaluation is redrawn without sampling again. Columns are found by their
// header names (policy, wall-clock s, PSNR dB, SSIM, samples); PSNR "inf" is +∞.
using System.Globalization;
using BlockDance.Sampler.Cli;

namespace BlockDance.Sampler.Evaluation;

public static class EvalTableReader
{
    /// <summary>The points and a caption (the table's first line, up to the model) of an eval markdown file.</summary>
    public static (List<ParetoPoint> Points, string Caption) Read(string path)
    {
        if (!File.Exists(path)) throw new UsageException($"--plot-from {path}: file not found (expected a table written by eval --out-md)");
        var lines = Transformer.IO.InputFile.ReadLines(path, "--plot-from");   // a FIFO or device is refused, not read
        int h = Array.FindIndex(lines, l => l.StartsWith("| policy |", StringComparison.Ordinal));
        if (h < 0) throw new UsageException($"--plot-from {path}: expected an eval table with a '| policy |' header, found none");
        var head = Cells(lines[h]);
        int Col(string name) => head.IndexOf(name) is int i and >= 0 ? i
            : throw new UsageException($"--plot-from {path}: expected a '{name}' column, found {string.Join(", ", head)}");
        int policy = Col("policy"), wall = Col("wall-clock s"), psnr = Col("PSNR dB"), ssim = Col("SSIM"), samples = Col("samples");
        var points = new List<ParetoPoint>();
        for (int i = h + 2; i < lines.Length && lines[i].StartsWith('|'); i++)
        {
            var c = Cells(lines[i]);
            double Num(int col) => c[col] == "inf" ? double.PositiveInfinity
                : double.TryParse(c[col], NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v
                : throw new UsageException($"--plot-from {path}: line {i + 1}, column {head[col]}: expected a number, found '{c[col]}'");
            if (c.Count != head.Count) throw new UsageException($"--plot-from {path}: line {i + 1}: expected {head.Count} cells, found {c.Count}");
            points.Add(new ParetoPoint(c[policy], 1e3 * Num(wall) / Num(samples), Num(ssim), Num(psnr)));
        }
        if (points.Count == 0) throw new UsageException($"--plot-from {path}: expected at least one table row, found none");
        // "**blockdance eval**: 50 samples per policy (…), DDIM 50 steps, cfg 4, seed 0, model batch 100; model…; device"
        var first = lines.FirstOrDefault(l => l.StartsWith("**blockdance eval**", StringComparison.Ordinal)) ?? "";
        var parts = first.Replace("**blockdance eval**: ", "").Split("; ");
        string caption = parts.Length >= 3 ? $"{parts[1].Split(' ')[0]}: {parts[0]}; {parts[^1].Split(':')[0]}" : Path.GetFileName(path);
        return (points, caption);
    }

    static List<string> Cells(string line) => line.Trim().Trim('|').Split('|').Select(s => s.Trim()).ToList();
}
