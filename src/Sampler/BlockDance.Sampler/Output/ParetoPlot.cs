// The speed/quality figure of `blockdance eval --plot FILE.png`: two panels, SSIM and PSNR against the
// uncached samples over the measured wall-clock latency per sample, one marker (colour and shape) per
// cache policy, a shared legend, and each panel's Pareto frontier drawn as a line: the policies that no
// other policy beats on both latency and quality. Up and to the left is better.
// v1 drew this by hand (bitmap font, hand-made axes); v2 uses ScottPlot 5 (Figure.cs says why and how).
// The uncached policy's PSNR is +∞ (identical samples): it is drawn on the panel's top edge and the
// legend says so.
using ScottPlot;

namespace BlockDance.Sampler;

/// <summary>One policy's point: latency per sample in ms, SSIM and PSNR (dB, may be +∞) vs the uncached samples.</summary>
public sealed record ParetoPoint(string Label, double LatencyMs, double Ssim, double Psnr);

public static class ParetoPlot
{
    const int Width = 1280, PanelW = 560, PanelH = 460, HeaderH = 40;

    /// <summary>Okabe–Ito colours (distinguishable with colour-blindness), black first for the reference.</summary>
    static readonly string[] Colors = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#0072B2", "#CC79A7", "#F0E442"];
    static readonly MarkerShape[] Shapes =
    [
        MarkerShape.FilledSquare, MarkerShape.FilledCircle, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond,
        MarkerShape.FilledTriangleDown, MarkerShape.FilledCircle, MarkerShape.FilledSquare, MarkerShape.FilledDiamond,
    ];

    /// <summary>Writes `path` (.png or .svg) and its twin; returns both names.</summary>
    public static (string Png, string Svg) Write(string path, IReadOnlyList<ParetoPoint> points, string caption) =>
        Figure.Save(path, Width, HeaderH + PanelH, Panels(points, caption));

    public static byte[] RenderPng(IReadOnlyList<ParetoPoint> points, string caption) =>
        Figure.Png(Width, HeaderH + PanelH, Panels(points, caption));

    static List<FigurePanel> Panels(IReadOnlyList<ParetoPoint> points, string caption)
    {
        if (points.Count == 0) throw new ArgumentException("pareto plot: no points");
        var header = new Plot();
        Figure.UseFont(header);
        header.HideAxesAndGrid();
        header.Title(caption, 15);
        var ssim = Panel(points, p => p.Ssim, "SSIM to the uncached samples (1 = identical)", "SSIM vs uncached (higher and further left is better)", cap: 1, legend: false);
        var psnr = Panel(points, p => p.Psnr, "PSNR to the uncached samples (dB)", "PSNR vs uncached (higher and further left is better)", cap: null, legend: true);
        return
        [
            new FigurePanel(header, 0, 0, Width, HeaderH),
            new FigurePanel(ssim, 0, HeaderH, PanelW, PanelH),
            new FigurePanel(psnr, PanelW, HeaderH, Width - PanelW, PanelH),
        ];
    }

    static Plot Panel(IReadOnlyList<ParetoPoint> points, Func<ParetoPoint, double> metric, string yTitle, string title, double? cap, bool legend)
    {
        var plt = new Plot();
        Figure.UseFont(plt);
        plt.Title(title, 14);
        plt.XLabel("latency per sample (ms, wall-clock)", 13);
        plt.YLabel(yTitle, 13);

        var finite = points.Select(metric).Where(double.IsFinite).ToList();
        var (yMin, yMax, yStep) = finite.Count == 0 ? (0, 1, 0.2) : NiceRange(finite.Min(), finite.Max(), cap);
        var (xMin, xMax, xStep) = NiceRange(points.Min(p => p.LatencyMs), points.Max(p => p.LatencyMs), null);
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(xStep);   // about 5 round ticks
        plt.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(yStep);
        double Y(double v) => double.IsPositiveInfinity(v) ? yMax : v;     // +∞ on the top edge

        // the frontier first, so the markers lie on top of it
        var front = Frontier(points, metric);
        if (front.Count >= 2)
        {
            var line = plt.Add.ScatterLine(front.Select(p => p.LatencyMs).ToArray(), front.Select(p => Y(metric(p))).ToArray(), Color.FromHex("#777777"));
            line.LineWidth = 2;
            // solid: Skia's SVG canvas cannot draw dash patterns, and PNG and SVG must show the same figure
            line.LegendText = "Pareto frontier";
        }
        for (int i = 0; i < points.Count; i++)
        {
            var p = points[i];
            double v = metric(p);
            if (double.IsNaN(v)) continue;
            var m = plt.Add.Marker(p.LatencyMs, Y(v), Shapes[i % Shapes.Length], 12, Color.FromHex(Colors[i % Colors.Length]));
            m.LegendText = p.Label + (double.IsPositiveInfinity(p.Psnr) ? " (PSNR ∞: on the top edge)" : "");
        }
        // 4% headroom above the top so a marker on it (SSIM 1, PSNR ∞) is not cut in half
        // and 3% on the right so the last tick label is not cut at the panel's edge
        plt.Axes.SetLimits(xMin, xMax + 0.03 * (xMax - xMin), yMin, yMax + 0.04 * (yMax - yMin));
        if (legend) plt.ShowLegend(Edge.Right);
        else plt.HideLegend();
        return plt;
    }

    /// <summary>The points no other point beats on both axes (lower latency and higher value), by latency.
    /// +∞ counts as the highest value; NaN points are left out.</summary>
    public static List<ParetoPoint> Frontier(IReadOnlyList<ParetoPoint> points, Func<ParetoPoint, double> metric)
    {
        var front = new List<ParetoPoint>();
        double best = double.NegativeInfinity;
        foreach (var p in points.Where(p => !double.IsNaN(metric(p))).OrderBy(p => p.LatencyMs).ThenByDescending(metric))
            if (metric(p) > best || (front.Count == 0))
            {
                front.Add(p);
                best = metric(p);
            }
        return front;
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
}
