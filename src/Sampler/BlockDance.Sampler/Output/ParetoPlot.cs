// The speed/quality figures of `blockdance eval --plot FILE.png`: two figures, each with two panels (SSIM and PSNR
// against the uncached samples). The first figure's x axis is the measured wall-clock latency per sample (seconds,
// median of the timed runs), the second's the compute, as the fraction of the uncached run's FLOPs. Every method is
// one colour and marker shape, its settings (a --sweep of its main knob) joined by a line in the order of the x axis;
// the grey line is the frontier over all settings: those no other setting beats on both axes. Up and to the left is
// better. The uncached setting's PSNR is +∞ (identical samples): it is drawn on the panel's top edge.
// v2 uses ScottPlot 5 (Figure.cs says why and how).
using ScottPlot;

namespace BlockDance.Sampler;

/// <summary>One setting's point: its method (the line it belongs to), its setting, latency per sample in seconds, the
/// fraction of the uncached FLOPs it computes, SSIM and PSNR (dB, may be +∞; NaN = not measured) vs the uncached samples.</summary>
public sealed record ParetoPoint(string Method, string Setting, double Seconds, double FlopFraction, double Ssim, double Psnr)
{
    public string Label => Setting.Length > 0 ? $"{Method} {Setting}" : Method;
}

public enum ParetoAxis { Latency, Flops }

public static class ParetoPlot
{
    const int Width = 1400, PanelW = 560, PanelH = 520, HeaderH = 40;

    /// <summary>Okabe–Ito colours (distinguishable with colour-blindness) and a few more, black first for the reference.</summary>
    static readonly string[] Colors = ["#000000", "#E69F00", "#56B4E9", "#009E73", "#D55E00", "#0072B2", "#CC79A7", "#B8A000", "#7F3C8D", "#11A579", "#E73F74", "#3969AC", "#80BA5A"];
    static readonly MarkerShape[] Shapes =
    [
        MarkerShape.FilledSquare, MarkerShape.FilledCircle, MarkerShape.FilledTriangleUp, MarkerShape.FilledDiamond,
        MarkerShape.FilledTriangleDown, MarkerShape.OpenCircle, MarkerShape.OpenSquare, MarkerShape.OpenDiamond, MarkerShape.OpenTriangleUp,
    ];

    /// <summary>The FLOP figure's file beside the latency figure's: pareto.png → pareto_flops.png.</summary>
    public static string FlopsPath(string path) =>
        Path.Combine(Path.GetDirectoryName(path) ?? "", Path.GetFileNameWithoutExtension(path) + "_flops" + Path.GetExtension(path));

    /// <summary>Writes both figures (`path` and FlopsPath(path), .png or .svg, each with its twin); returns the PNG names.</summary>
    public static (string Latency, string Flops) Write(string path, IReadOnlyList<ParetoPoint> points, string caption)
    {
        var (png, _) = Figure.Save(path, Width, HeaderH + PanelH, Panels(points, caption, ParetoAxis.Latency));
        var (png2, _) = Figure.Save(FlopsPath(path), Width, HeaderH + PanelH, Panels(points, caption, ParetoAxis.Flops));
        return (png, png2);
    }

    public static byte[] RenderPng(IReadOnlyList<ParetoPoint> points, string caption, ParetoAxis axis = ParetoAxis.Latency) =>
        Figure.Png(Width, HeaderH + PanelH, Panels(points, caption, axis));

    public static Func<ParetoPoint, double> X(ParetoAxis axis) => axis == ParetoAxis.Latency ? p => p.Seconds : p => p.FlopFraction;

    static List<FigurePanel> Panels(IReadOnlyList<ParetoPoint> points, string caption, ParetoAxis axis)
    {
        if (points.Count == 0) throw new ArgumentException("pareto plot: no points");
        var header = new Plot();
        Figure.UseFont(header);
        header.HideAxesAndGrid();
        header.Title(caption, 15);
        var ssim = Panel(points, axis, p => p.Ssim, "SSIM to the uncached samples (1 = identical)", "SSIM vs uncached (up and left is better)", cap: 1, legend: false);
        var psnr = Panel(points, axis, p => p.Psnr, "PSNR to the uncached samples (dB)", "PSNR vs uncached (up and left is better)", cap: null, legend: true);
        return
        [
            new FigurePanel(header, 0, 0, Width, HeaderH),
            new FigurePanel(ssim, 0, HeaderH, PanelW, PanelH),
            new FigurePanel(psnr, PanelW, HeaderH, Width - PanelW, PanelH),
        ];
    }

    static Plot Panel(IReadOnlyList<ParetoPoint> points, ParetoAxis axis, Func<ParetoPoint, double> metric, string yTitle, string title, double? cap, bool legend)
    {
        var plt = new Plot();
        Figure.UseFont(plt);
        plt.Title(title, 14);
        plt.XLabel(axis == ParetoAxis.Latency ? "latency per sample (s, wall-clock, median of runs)" : "compute (fraction of the uncached FLOPs)", 13);
        plt.YLabel(yTitle, 13);
        var x = X(axis);

        var finite = points.Select(metric).Where(double.IsFinite).ToList();
        var (yMin, yMax, yStep) = finite.Count == 0 ? (0, 1, 0.2) : NiceRange(finite.Min(), finite.Max(), cap);
        var (xMin, xMax, xStep) = NiceRange(points.Min(x), points.Max(x), null);
        plt.Axes.Bottom.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(xStep);   // about 5 round ticks
        plt.Axes.Left.TickGenerator = new ScottPlot.TickGenerators.NumericFixedInterval(yStep);
        double Y(double v) => double.IsPositiveInfinity(v) ? yMax : v;     // +∞ on the top edge

        // the frontier first, so the methods' lines and markers lie on top of it
        var front = Frontier(points, x, metric);
        if (front.Count >= 2)
        {
            var line = plt.Add.ScatterLine(front.Select(x).ToArray(), front.Select(p => Y(metric(p))).ToArray(), Color.FromHex("#BBBBBB"));
            line.LineWidth = 6;
            // solid: Skia's SVG canvas cannot draw dash patterns, and PNG and SVG must show the same figure
            line.LegendText = "frontier (all settings)";
        }
        var methods = points.Select(p => p.Method).Distinct().ToList();
        for (int i = 0; i < methods.Count; i++)
        {
            var pts = points.Where(p => p.Method == methods[i] && !double.IsNaN(metric(p))).OrderBy(x).ToList();
            if (pts.Count == 0) continue;
            var color = Color.FromHex(Colors[i % Colors.Length]);
            var s = plt.Add.Scatter(pts.Select(x).ToArray(), pts.Select(p => Y(metric(p))).ToArray(), color);
            s.LineWidth = pts.Count > 1 ? 1.5f : 0;
            s.MarkerShape = Shapes[i % Shapes.Length];
            s.MarkerSize = 10;
            s.LegendText = methods[i] + (pts.Count > 1 ? $" ({pts.Count} settings)" : "") + (pts.Any(p => double.IsPositiveInfinity(metric(p))) ? " (∞: top edge)" : "");
        }
        // 4% headroom above the top so a marker on it (SSIM 1, PSNR ∞) is not cut in half
        // and 3% on the right so the last tick label is not cut at the panel's edge
        plt.Axes.SetLimits(xMin, xMax + 0.03 * (xMax - xMin), yMin, yMax + 0.04 * (yMax - yMin));
        if (legend) plt.ShowLegend(Edge.Right);
        else plt.HideLegend();
        return plt;
    }

    /// <summary>The points no other point beats on both axes (lower x and higher value), by x.
    /// +∞ counts as the highest value; NaN points are left out.</summary>
    public static List<ParetoPoint> Frontier(IReadOnlyList<ParetoPoint> points, Func<ParetoPoint, double> x, Func<ParetoPoint, double> metric)
    {
        var front = new List<ParetoPoint>();
        double best = double.NegativeInfinity;
        foreach (var p in points.Where(p => !double.IsNaN(metric(p))).OrderBy(x).ThenByDescending(metric))
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
