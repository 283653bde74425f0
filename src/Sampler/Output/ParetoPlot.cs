// The speed/quality picture of `blockdance eval --plot FILE.png`: one scatter panel per quality metric
// (SSIM, PSNR against the uncached samples) over the measured wall-clock latency per sample, one
// coloured square per cache policy, a legend, "nice" axis ticks (1/2/5 × 10^k), light grid lines.
// Up and to the left is better. Text uses Heatmap's 5×7 bitmap font (so it reads upper-case).
// The uncached policy's PSNR is +∞: it is drawn on the top edge and labelled INF.
using System.Globalization;
using StbImageWriteSharp;
using static BlockDance.Sampler.Heatmap;

namespace BlockDance.Sampler;

/// <summary>One policy's point: latency per sample in ms, SSIM and PSNR (dB, may be +∞) vs the uncached samples.</summary>
public sealed record ParetoPoint(string Label, double LatencyMs, double Ssim, double Psnr);

public static class ParetoPlot
{
    const int PlotW = 520, PlotH = 260, Left = 96, Top = 12, Right = 24, LegendW = 170;
    const int PanelH = Top + GlyphH + 10 + PlotH + 10 + GlyphH + 10 + GlyphH + 18;
    static readonly (byte, byte, byte) Grid = (225, 225, 225);

    /// <summary>Okabe–Ito colours (distinguishable with colour-blindness), black first for the reference.</summary>
    static readonly (byte, byte, byte)[] Colors =
    [
        (0, 0, 0), (230, 159, 0), (86, 180, 233), (0, 158, 115), (213, 94, 0), (0, 114, 178), (204, 121, 167), (240, 228, 66),
    ];

    public static void WritePng(string path, IReadOnlyList<ParetoPoint> points, string caption)
    {
        var (rgb, w, h) = Render(points, caption);
        AtomicFile.Write(path, s => new ImageWriter().WritePng(rgb, w, h, ColorComponents.RedGreenBlue, s));
    }

    public static (byte[] Rgb, int Width, int Height) Render(IReadOnlyList<ParetoPoint> points, string caption)
    {
        if (points.Count == 0) throw new ArgumentException("pareto plot: no points");
        int width = Math.Max(Left + PlotW + Right + LegendW, TextWidth(caption) + 24);
        int height = 12 + GlyphH + 8 + 2 * PanelH;
        var img = new Image(width, height);
        img.Text(12, 12, caption);
        int y0 = 12 + GlyphH + 8;
        Panel(img, y0, points, p => p.Ssim, "SSIM VS UNCACHED (HIGHER = BETTER)", upperCap: 1);
        Panel(img, y0 + PanelH, points, p => p.Psnr, "PSNR DB VS UNCACHED (HIGHER = BETTER)", upperCap: null);
        return (img.Rgb, width, height);
    }

    static void Panel(Image img, int top, IReadOnlyList<ParetoPoint> points, Func<ParetoPoint, double> metric, string title, double? upperCap)
    {
        img.Text(Left, top + Top, title);
        int px = Left, py = top + Top + GlyphH + 10;

        var finite = points.Select(metric).Where(double.IsFinite).ToList();
        bool anyInf = points.Any(p => double.IsPositiveInfinity(metric(p)));
        var (xMin, xMax, xStep) = NiceRange(points.Min(p => p.LatencyMs), points.Max(p => p.LatencyMs), null);
        var (yMin, yMax, yStep) = finite.Count == 0 ? (0, 1, 0.2) : NiceRange(finite.Min(), finite.Max(), upperCap);
        int X(double v) => px + (int)Math.Round((v - xMin) / (xMax - xMin) * (PlotW - 1));
        int Y(double v) => py + PlotH - 1 - (int)Math.Round((Math.Min(v, yMax) - yMin) / (yMax - yMin) * (PlotH - 1));

        // grid, ticks and tick labels
        for (double v = xMin; v <= xMax + xStep / 2; v += xStep)
        {
            int x = X(v);
            img.Fill(x, py, 1, PlotH, Grid);
            img.Fill(x, py + PlotH, 1, 4, (30, 30, 30));
            var s = Tick(v, xStep);
            img.Text(x - TextWidth(s) / 2, py + PlotH + 8, s);
        }
        for (double v = yMin; v <= yMax + yStep / 2; v += yStep)
        {
            int y = Y(v);
            img.Fill(px, y, PlotW, 1, Grid);
            img.Fill(px - 4, y, 4, 1, (30, 30, 30));
            var s = Tick(v, yStep);
            img.Text(px - 8 - TextWidth(s), y - GlyphH / 2, s);
        }
        img.Frame(px - 1, py - 1, PlotW + 2, PlotH + 2);
        const string xTitle = "LATENCY PER SAMPLE, MS (WALL-CLOCK)";
        img.Text(px + (PlotW - TextWidth(xTitle)) / 2, py + PlotH + 8 + GlyphH + 8, xTitle);

        // points (9×9 squares with a dark outline), each labelled where the label hits no marker or earlier label
        var centres = points.Select(p => double.IsNaN(metric(p)) ? (X: -100, Y: -100)
            : (X: X(p.LatencyMs), Y: double.IsPositiveInfinity(metric(p)) ? py : Y(metric(p)))).ToList();
        var taken = centres.Select(c => (X: c.X - 6, Y: c.Y - 6, W: 13, H: 13)).ToList();
        for (int i = 0; i < points.Count; i++)
        {
            var (x, y) = centres[i];
            if (x < 0) continue;
            img.Fill(x - 5, y - 5, 11, 11, (30, 30, 30));
            img.Fill(x - 4, y - 4, 9, 9, Colors[i % Colors.Length]);
            var label = points[i].Label + (double.IsPositiveInfinity(metric(points[i])) ? " INF" : "");
            int w = TextWidth(label);
            (int X, int Y)[] spots = [(x + 10, y - GlyphH / 2), (x - 10 - w, y - GlyphH / 2), (x - w / 2, y + 10), (x - w / 2, y - 10 - GlyphH),
                                      (x + 10, y + 8), (x - 10 - w, y + 8), (x + 10, y - 8 - GlyphH), (x - 10 - w, y - 8 - GlyphH)];
            var spot = spots.FirstOrDefault(s => s.X >= px && s.X + w <= px + PlotW && s.Y >= py && s.Y + GlyphH <= py + PlotH
                && !taken.Any(t => s.X < t.X + t.W && t.X < s.X + w && s.Y < t.Y + t.H && t.Y < s.Y + GlyphH), spots[0]);
            img.Text(spot.X, spot.Y, label);
            taken.Add((spot.X - 2, spot.Y - 2, w + 4, GlyphH + 4));
        }

        // legend
        int ly = py;
        for (int i = 0; i < points.Count; i++)
        {
            var p = points[i];
            var color = Colors[i % Colors.Length];
            img.Fill(px + PlotW + 20, ly + 2, 11, 11, (30, 30, 30));
            img.Fill(px + PlotW + 21, ly + 3, 9, 9, color);
            img.Text(px + PlotW + 38, ly, p.Label);
            ly += GlyphH + 8;
        }
        if (anyInf) img.Text(px + PlotW + 20, ly + 4, "INF = IDENTICAL");
    }

    /// <summary>Axis range padded by 8% and widened to multiples of a 1/2/5·10^k step (about 5 ticks); an upper cap
    /// (SSIM ≤ 1) is respected when the data reach it.</summary>
    public static (double Min, double Max, double Step) NiceRange(double lo, double hi, double? cap)
    {
        if (!(hi > lo)) { double d = Math.Max(Math.Abs(lo) * 0.05, 1e-3); lo -= d; hi += d; }
        double pad = (hi - lo) * 0.08;
        double a = lo - pad, b = hi + pad;
        if (cap is double c && hi <= c) b = Math.Min(b, c);
        double raw = (b - a) / 5, mag = Math.Pow(10, Math.Floor(Math.Log10(raw)));
        double step = raw / mag <= 1 ? mag : raw / mag <= 2 ? 2 * mag : raw / mag <= 5 ? 5 * mag : 10 * mag;
        double min = Math.Floor(a / step) * step, max = Math.Ceiling(b / step) * step;
        if (cap is double c2 && hi <= c2 && max > c2) max = c2;
        if (max <= min) max = min + step;
        return (min, max, step);
    }

    static string Tick(double v, double step)
    {
        int decimals = Math.Max(0, (int)-Math.Floor(Math.Log10(step) + 1e-9));
        return Math.Round(v, decimals).ToString("F" + decimals, CultureInfo.InvariantCulture);
    }
}
