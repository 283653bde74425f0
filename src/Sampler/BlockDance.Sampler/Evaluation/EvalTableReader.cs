// Reads back the table that `blockdance eval --out-md FILE` wrote, for `eval --plot-from FILE --plot x.png`:
// the figures of a finished (long) evaluation are redrawn without sampling again. Columns are found by their
// header names (method, setting, s/sample, speedup FLOP, PSNR dB [95% CI], SSIM [95% CI]); a cell's first
// number is the estimate, "inf" is +∞, "n/a" is NaN (not drawn).
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
        int h = Array.FindIndex(lines, l => l.StartsWith("| method |", StringComparison.Ordinal));
        if (h < 0 && Array.FindIndex(lines, l => l.StartsWith("| policy |", StringComparison.Ordinal)) is int old and >= 0) return (ReadV1(path, lines, old), Caption(lines, path));
        if (h < 0) throw new UsageException($"--plot-from {path}: expected an eval table with a '| method |' header, found none");
        var head = Cells(lines[h]);
        int Col(string name) => head.IndexOf(name) is int i and >= 0 ? i
            : throw new UsageException($"--plot-from {path}: expected a '{name}' column, found {string.Join(", ", head)}");
        int method = Col("method"), setting = Col("setting"), lat = Col("s/sample"), flop = Col("speedup FLOP"),
            psnr = Col("PSNR dB [95% CI]"), ssim = Col("SSIM [95% CI]");
        var points = new List<ParetoPoint>();
        for (int i = h + 2; i < lines.Length && lines[i].StartsWith('|'); i++)
        {
            var c = Cells(lines[i]);
            if (c.Count != head.Count) throw new UsageException($"--plot-from {path}: line {i + 1}: expected {head.Count} cells, found {c.Count}");
            double Num(int col)
            {
                var first = c[col].Split(' ')[0].TrimEnd('×');
                return first == "inf" ? double.PositiveInfinity : first == "n/a" ? double.NaN
                    : double.TryParse(first, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v
                    : throw new UsageException($"--plot-from {path}: line {i + 1}, column {head[col]}: expected a number, found '{c[col]}'");
            }
            string m = c[method].TrimEnd('★', ' ');
            points.Add(new ParetoPoint(m, c[setting], Num(lat), 1 / Num(flop), Num(ssim), Num(psnr)));
        }
        if (points.Count == 0) throw new UsageException($"--plot-from {path}: expected at least one table row, found none");
        return (points, Caption(lines, path));
    }

    /// <summary>The first table format (before the intervals): policy, wall-clock s, blocks skipped "k of n", PSNR dB, SSIM,
    /// samples; the FLOP axis reads the fraction of blocks computed.</summary>
    static List<ParetoPoint> ReadV1(string path, string[] lines, int h)
    {
        var head = Cells(lines[h]);
        int Col(string name) => head.IndexOf(name) is int i and >= 0 ? i
            : throw new UsageException($"--plot-from {path}: expected a '{name}' column, found {string.Join(", ", head)}");
        int policy = Col("policy"), wall = Col("wall-clock s"), blocks = Col("blocks skipped"), psnr = Col("PSNR dB"), ssim = Col("SSIM"), samples = Col("samples");
        var points = new List<ParetoPoint>();
        for (int i = h + 2; i < lines.Length && lines[i].StartsWith('|'); i++)
        {
            var c = Cells(lines[i]);
            if (c.Count != head.Count) throw new UsageException($"--plot-from {path}: line {i + 1}: expected {head.Count} cells, found {c.Count}");
            double Num(string cell, string col) => cell == "inf" ? double.PositiveInfinity
                : double.TryParse(cell, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) ? v
                : throw new UsageException($"--plot-from {path}: line {i + 1}, column {col}: expected a number, found '{cell}'");
            var b = c[blocks].Split(' ');
            double frac = b.Length >= 3 ? 1 - Num(b[0], "blocks skipped") / Num(b[2], "blocks skipped") : 1;
            string label = c[policy].TrimEnd('★', ' ');
            points.Add(new ParetoPoint(label, "", Num(c[wall], "wall-clock s") / Num(c[samples], "samples"), frac, Num(c[ssim], "SSIM"), Num(c[psnr], "PSNR dB")));
        }
        if (points.Count == 0) throw new UsageException($"--plot-from {path}: expected at least one table row, found none");
        return points;
    }

    static string Caption(string[] lines, string path)
    {
        // "**blockdance eval**: 50 samples per setting (…), DDIM 50 steps, cfg 4, seed 0, …; model…; device"
        var first = lines.FirstOrDefault(l => l.StartsWith("**blockdance eval**", StringComparison.Ordinal)) ?? "";
        var parts = first.Replace("**blockdance eval**: ", "").Split("; ");
        return parts.Length >= 3 ? $"{parts[1].Split(' ')[0]}: {parts[0]}; {parts[^1].Split(':')[0]}" : Path.GetFileName(path);
    }

    static List<string> Cells(string line) => line.Trim().Trim('|').Split('|').Select(s => s.Trim()).ToList();
}
