// The STSS heatmaps of `blockdance analyze --png FILE`: one panel per quantity, each a grid of values,
// rows × columns (STSS: blocks × step s, block 0 on top), coloured with viridis (perceptually even,
// readable in grey and by colour-blind readers) and a colour bar with its numbers. Panels are stacked
// vertically under a caption. Non-finite values (log10 of an MSE of 0) are grey.
// v1 drew this by hand (bitmap font); v2 uses ScottPlot 5 (Figure.cs), PNG and SVG.
using System.Globalization;
using ScottPlot;

namespace BlockDance.Sampler;

/// <param name="Values">(rows, columns)</param>
/// <param name="FirstRow">label of row 0 (tick numbers)</param>
/// <param name="FirstColumn">label of column 0</param>
/// <param name="BrightIsLow">reverse the colormap so low values are bright (log10 MSE: bright = similar, as cosine)</param>
/// <param name="Unit">what the colour bar measures, for its title</param>
public sealed record HeatmapPanel(string Title, double[,] Values, string RowLabel, string ColumnLabel,
    int FirstRow = 0, int FirstColumn = 0, bool BrightIsLow = false, string Unit = "");

public static class Heatmap
{
    const int Width = 1100, PanelH = 300, HeaderH = 40;
    public static readonly (byte R, byte G, byte B) Missing = (160, 160, 160);

    /// <summary>Writes `path` (.png or .svg) and its twin; returns both names.</summary>
    public static (string Png, string Svg) Write(string path, IReadOnlyList<HeatmapPanel> panels, string? caption = null) =>
        Figure.Save(path, Width, Height(panels, caption), Panels(panels, caption));

    public static byte[] RenderPng(IReadOnlyList<HeatmapPanel> panels, string? caption = null) =>
        Figure.Png(Width, Height(panels, caption), Panels(panels, caption));

    static int Height(IReadOnlyList<HeatmapPanel> panels, string? caption) => (caption == null ? 0 : HeaderH) + panels.Count * PanelH;

    static List<FigurePanel> Panels(IReadOnlyList<HeatmapPanel> panels, string? caption)
    {
        var list = new List<FigurePanel>();
        int y = 0;
        if (caption != null)
        {
            var header = new Plot();
            Figure.UseFont(header);
            header.HideAxesAndGrid();
            header.Title(caption, 15);
            list.Add(new FigurePanel(header, 0, 0, Width, HeaderH));
            y = HeaderH;
        }
        foreach (var p in panels)
        {
            list.Add(new FigurePanel(Panel(p), 0, y, Width, PanelH));
            y += PanelH;
        }
        return list;
    }

    static Plot Panel(HeatmapPanel p)
    {
        int rows = p.Values.GetLength(0), cols = p.Values.GetLength(1);
        if (rows == 0 || cols == 0) throw new ArgumentException($"heatmap '{p.Title}': no values ({rows}×{cols})");
        var v = new double[rows, cols];
        for (int r = 0; r < rows; r++)
            for (int c = 0; c < cols; c++)
                v[r, c] = double.IsFinite(p.Values[r, c]) ? p.Values[r, c] : double.NaN;   // NaN cells are drawn grey

        var plt = new Plot();
        Figure.UseFont(plt);
        plt.Title(p.Title, 14);
        plt.XLabel(p.ColumnLabel, 13);
        plt.YLabel(p.RowLabel, 13);
        var hm = plt.Add.Heatmap(v);
        hm.Colormap = new ViridisMap(p.BrightIsLow);
        hm.NaNCellColor = new Color(Missing.R, Missing.G, Missing.B);
        // cell (r, c) is centred on (FirstColumn + c, FirstRow + r); row 0 is drawn at the top
        hm.Extent = new CoordinateRect(p.FirstColumn - 0.5, p.FirstColumn + cols - 0.5, p.FirstRow - 0.5, p.FirstRow + rows - 0.5);
        plt.Axes.SetLimits(p.FirstColumn - 0.5, p.FirstColumn + cols - 0.5, p.FirstRow + rows - 0.5, p.FirstRow - 0.5);
        plt.Axes.Left.TickGenerator = IntegerTicks(rows, p.FirstRow, 12);
        plt.Axes.Bottom.TickGenerator = IntegerTicks(cols, p.FirstColumn, 25);
        plt.HideGrid();
        var bar = plt.Add.ColorBar(hm);
        bar.Label = p.Unit;
        return plt;
    }

    /// <summary>Integer ticks on whole rows/columns: every one when few, else a 1/2/5·10^k stride.</summary>
    static ScottPlot.TickGenerators.NumericManual IntegerTicks(int count, int first, int most)
    {
        int stride = 1;
        foreach (var s in new[] { 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000 }) { stride = s; if (count / s < most) break; }
        var ticks = new ScottPlot.TickGenerators.NumericManual();
        for (int i = first; i < first + count; i++)
            if (i % stride == 0 || count <= most) ticks.AddMajor(i, i.ToString(CultureInfo.InvariantCulture));
        return ticks;
    }

    /// <summary>Viridis through our own control points (the colour bar and the cells agree by construction).</summary>
    sealed class ViridisMap(bool reversed) : IColormap
    {
        public string Name => reversed ? "viridis (reversed)" : "viridis";
        public Color GetColor(double t)
        {
            var (r, g, b) = Viridis(reversed ? 1 - t : t);
            return new Color(r, g, b);
        }
    }

    /// <summary>Viridis, 9 control points (matplotlib's values at 0, 1/8, …, 1), linear in between.</summary>
    static readonly (double R, double G, double B)[] ViridisPoints =
    [
        (68, 1, 84), (71, 44, 122), (59, 81, 139), (44, 113, 142), (33, 144, 141),
        (39, 173, 129), (92, 200, 99), (170, 220, 50), (253, 231, 37),
    ];

    public static (byte R, byte G, byte B) Viridis(double t)
    {
        t = Math.Clamp(double.IsNaN(t) ? 0 : t, 0, 1) * (ViridisPoints.Length - 1);
        int i = Math.Min((int)t, ViridisPoints.Length - 2);
        double f = t - i;
        var (a, b) = (ViridisPoints[i], ViridisPoints[i + 1]);
        return ((byte)Math.Round(a.R + f * (b.R - a.R)), (byte)Math.Round(a.G + f * (b.G - a.G)), (byte)Math.Round(a.B + f * (b.B - a.B)));
    }

    public static string Format(double v, int digits = 5) => v.ToString("G" + digits, CultureInfo.InvariantCulture);
}
