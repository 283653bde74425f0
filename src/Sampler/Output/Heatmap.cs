// Heatmaps → one PNG (StbImageWriteSharp encodes it). Each panel is a grid of values, rows × columns
// (STSS: blocks × step pairs, block 0 on top), coloured with a viridis-like colormap (perceptually
// even, readable in grey and by colour-blind readers), with axis labels, tick numbers and a colour
// bar showing the min and max. Panels are stacked vertically; text is a built-in 5×7 bitmap font
// drawn at 2× so no font library is needed. Non-finite values (log10 of an MSE of 0) are grey.
using System.Globalization;
using StbImageWriteSharp;

namespace BlockDance.Sampler;

/// <param name="Values">(rows, columns)</param>
/// <param name="FirstRow">label of row 0 (tick numbers)</param>
/// <param name="FirstColumn">label of column 0</param>
/// <param name="BrightIsLow">reverse the colormap so low values are bright (log10 MSE: bright = similar, as cosine)</param>
public sealed record HeatmapPanel(string Title, double[,] Values, string RowLabel, string ColumnLabel,
    int FirstRow = 0, int FirstColumn = 0, bool BrightIsLow = false);

public static class Heatmap
{
    const int Scale = 2;                     // font pixels per glyph pixel
    internal const int GlyphW = 5 * Scale, GlyphH = 7 * Scale, Advance = 6 * Scale;   // also used by ParetoPlot
    const int Margin = 12, BarWidth = 16;
    static readonly (byte, byte, byte) Ink = (30, 30, 30), Missing = (160, 160, 160);

    public static void WritePng(string path, IReadOnlyList<HeatmapPanel> panels, string? caption = null)
    {
        var (rgb, w, h) = Render(panels, caption);
        AtomicFile.Write(path, s => new ImageWriter().WritePng(rgb, w, h, ColorComponents.RedGreenBlue, s));
    }

    /// <summary>RGB bytes (row-major, 3 per pixel) of the stacked panels.</summary>
    public static (byte[] Rgb, int Width, int Height) Render(IReadOnlyList<HeatmapPanel> panels, string? caption = null)
    {
        var layouts = panels.Select(p => new Layout(p)).ToList();
        int width = Math.Max(layouts.Max(l => l.Width), caption == null ? 0 : TextWidth(caption) + 2 * Margin);
        int height = (caption == null ? 0 : GlyphH + Margin) + layouts.Sum(l => l.Height) + Margin;
        var img = new Image(width, height);
        int y = Margin;
        if (caption != null) { img.Text(Margin, y, caption); y += GlyphH + Margin; }
        foreach (var l in layouts) { l.Draw(img, y); y += l.Height; }
        return (img.Rgb, width, height);
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

    /// <summary>Significant digits (5..9) that tell min and max apart and do not round a non-integer to an
    /// integer (a cosine of 0.9999986 reads 0.999999, not 1).</summary>
    static int Digits(double min, double max)
    {
        bool RoundsToInteger(double v, int d) => v != Math.Round(v) && Format(v, d).All(c => char.IsDigit(c) || c == '-');
        int d = 5;
        while (d < 9 && ((min != max && Format(min, d) == Format(max, d)) || RoundsToInteger(min, d) || RoundsToInteger(max, d))) d++;
        return d;
    }

    /// <summary>One panel's geometry: title, then [row label | row ticks | grid | colour bar + labels], then column ticks and label.</summary>
    sealed class Layout
    {
        readonly HeatmapPanel p;
        readonly int rows, cols, cellW, cellH, gridX, gridW, gridH, barX;
        readonly double min, max;
        readonly int digits;
        public int Width { get; }
        public int Height { get; }

        public Layout(HeatmapPanel panel)
        {
            p = panel;
            rows = p.Values.GetLength(0);
            cols = p.Values.GetLength(1);
            if (rows == 0 || cols == 0) throw new ArgumentException($"heatmap '{p.Title}': no values ({rows}×{cols})");
            // Cells 8–48 px: about 600 px wide and 300 px tall at most, never smaller than 8 px.
            cellW = Math.Clamp(600 / cols, 8, 48);
            cellH = Math.Clamp(300 / rows, 8, 48);
            var finite = p.Values.Cast<double>().Where(double.IsFinite).ToList();
            (min, max) = finite.Count == 0 ? (0, 1) : (finite.Min(), finite.Max());
            int rowTickW = TextWidth((p.FirstRow + rows - 1).ToString(CultureInfo.InvariantCulture));
            gridX = Margin + GlyphW + Margin + rowTickW + 6;
            gridW = cols * cellW;
            gridH = rows * cellH;
            barX = gridX + gridW + 16;
            digits = Digits(min, max);
            int labelW = Math.Max(TextWidth(Format(min, digits)), TextWidth(Format(max, digits)));
            Width = Math.Max(barX + BarWidth + 6 + labelW + Margin, gridX + TextWidth(p.Title));
            Height = GlyphH + 10 + Math.Max(gridH, 3 * GlyphH) + 4 + 4 + GlyphH + 6 + GlyphH + 2 * Margin;
        }

        double T(double v) => max > min ? (v - min) / (max - min) : 0.5;
        (byte, byte, byte) Color(double t) => Viridis(p.BrightIsLow ? 1 - t : t);

        public void Draw(Image img, int top)
        {
            img.Text(gridX, top, p.Title);
            int gridY = top + GlyphH + 10;
            for (int r = 0; r < rows; r++)
                for (int c = 0; c < cols; c++)
                {
                    double v = p.Values[r, c];
                    img.Fill(gridX + c * cellW, gridY + r * cellH, cellW, cellH, double.IsFinite(v) ? Color(T(v)) : Missing);
                }
            img.Frame(gridX - 1, gridY - 1, gridW + 2, gridH + 2);

            // Row label: letters stacked vertically at the left, centred on the grid.
            int labelH = p.RowLabel.Length * (GlyphH + Scale);
            for (int i = 0; i < p.RowLabel.Length; i++)
                img.Text(Margin, gridY + Math.Max(0, (gridH - labelH) / 2) + i * (GlyphH + Scale), p.RowLabel[i].ToString());
            foreach (int r in Ticks(rows, cellH, GlyphH + 2, p.FirstRow))
            {
                var s = (p.FirstRow + r).ToString(CultureInfo.InvariantCulture);
                int cy = gridY + r * cellH + cellH / 2;
                img.Text(gridX - 6 - TextWidth(s), cy - GlyphH / 2, s);
                img.Fill(gridX - 4, cy, 3, 1, Ink);
            }

            // Column ticks and label below the grid.
            int tickY = gridY + gridH + 1;
            int maxLabel = TextWidth((p.FirstColumn + cols - 1).ToString(CultureInfo.InvariantCulture));
            foreach (int c in Ticks(cols, cellW, maxLabel + 6, p.FirstColumn))
            {
                var s = (p.FirstColumn + c).ToString(CultureInfo.InvariantCulture);
                int cx = gridX + c * cellW + cellW / 2;
                img.Fill(cx, tickY, 1, 4, Ink);
                img.Text(Math.Max(0, cx - TextWidth(s) / 2), tickY + 8, s);
            }
            img.Text(gridX + (gridW - TextWidth(p.ColumnLabel)) / 2, tickY + 8 + GlyphH + 6, p.ColumnLabel);

            // Colour bar: max on top, min at the bottom, labelled with the values.
            int barH = Math.Max(gridH, 3 * GlyphH);
            for (int y = 0; y < barH; y++)
                img.Fill(barX, gridY + y, BarWidth, 1, Color(1 - y / (double)Math.Max(1, barH - 1)));
            img.Frame(barX - 1, gridY - 1, BarWidth + 2, barH + 2);
            img.Text(barX + BarWidth + 6, gridY, Format(max, digits));
            img.Text(barX + BarWidth + 6, gridY + barH - GlyphH, Format(min, digits));
            if (barH >= 6 * GlyphH)
            {
                double mid = (min + max) / 2;
                img.Text(barX + BarWidth + 6, gridY + barH / 2 - GlyphH / 2, Format(mid, digits));
            }
        }
    }

    /// <summary>Indices to label: the first, every k-th label value (k = 1, 2, 5, 10, 20, 50, …, chosen so
    /// labels `need` px apart fit), and the last, skipping any that would overlap the previous one.</summary>
    static IEnumerable<int> Ticks(int count, int cell, int need, int first)
    {
        int k = 1;
        for (int i = 0; k * cell < need; i++) k = (i % 3) switch { 0 => k * 2, 1 => k * 5 / 2, _ => k * 2 };  // 1, 2, 5, 10, 20, 50, …
        var picks = new SortedSet<int> { 0, count - 1 };
        for (int i = 0; i < count; i++) if ((first + i) % k == 0) picks.Add(i);
        int lastPos = int.MinValue;
        foreach (int i in picks)
        {
            if ((long)i * cell - lastPos < need) continue;
            lastPos = i * cell;
            yield return i;
        }
    }

    internal static int TextWidth(string s) => s.Length == 0 ? 0 : s.Length * Advance - Scale;

    /// <summary>An RGB canvas with the bitmap font (shared with ParetoPlot).</summary>
    internal sealed class Image(int width, int height)
    {
        public byte[] Rgb { get; } = Enumerable.Repeat((byte)255, width * height * 3).ToArray();

        public void Fill(int x0, int y0, int w, int h, (byte R, byte G, byte B) c)
        {
            for (int y = Math.Max(0, y0); y < Math.Min(height, y0 + h); y++)
                for (int x = Math.Max(0, x0); x < Math.Min(width, x0 + w); x++)
                {
                    int o = (y * width + x) * 3;
                    Rgb[o] = c.R; Rgb[o + 1] = c.G; Rgb[o + 2] = c.B;
                }
        }

        public void Frame(int x, int y, int w, int h)
        {
            Fill(x, y, w, 1, Ink); Fill(x, y + h - 1, w, 1, Ink);
            Fill(x, y, 1, h, Ink); Fill(x + w - 1, y, 1, h, Ink);
        }

        /// <summary>Upper-cased text, top-left at (x, y); characters outside the font draw as '?'.</summary>
        public void Text(int x, int y, string s)
        {
            foreach (char ch in s.ToUpperInvariant())
            {
                var g = Font.GetValueOrDefault(ch) ?? Font['?'];
                for (int gy = 0; gy < 7; gy++)
                    for (int gx = 0; gx < 5; gx++)
                        if (g[gy * 5 + gx] == '#') Fill(x + gx * Scale, y + gy * Scale, Scale, Scale, Ink);
                x += Advance;
            }
        }
    }

    // 5×7 glyphs, rows top to bottom, '#' = ink.
    static readonly Dictionary<char, string> Font = new()
    {
        ['0'] = ".###.#...##..###.#.###..##...#.###.", ['1'] = "..#...##....#....#....#....#...###.",
        ['2'] = ".###.#...#....#...#...#...#...#####", ['3'] = "#####...#...#.....#.....##...#.###.",
        ['4'] = "...#...##..#.#.#..#.#####...#....#.", ['5'] = "######....####.....#....##...#.###.",
        ['6'] = "..##..#...#....####.#...##...#.###.", ['7'] = "#####....#...#...#...#....#....#...",
        ['8'] = ".###.#...##...#.###.#...##...#.###.", ['9'] = ".###.#...##...#.####....#...#..##..",
        ['A'] = ".###.#...##...#######...##...##...#", ['B'] = "####.#...##...#####.#...##...#####.",
        ['C'] = ".###.#...##....#....#....#...#.###.", ['D'] = "###..#..#.#...##...##...##..#.###..",
        ['E'] = "######....#....####.#....#....#####", ['F'] = "######....#....####.#....#....#....",
        ['G'] = ".###.#...##....#.####...##...#.####", ['H'] = "#...##...##...#######...##...##...#",
        ['I'] = ".###...#....#....#....#....#...###.", ['J'] = "..###...#....#....#....#.#..#..##..",
        ['K'] = "#...##..#.#.#..##...#.#..#..#.#...#", ['L'] = "#....#....#....#....#....#....#####",
        ['M'] = "#...###.###.#.##.#.##...##...##...#", ['N'] = "#...##...###..##.#.##..###...##...#",
        ['O'] = ".###.#...##...##...##...##...#.###.", ['P'] = "####.#...##...#####.#....#....#....",
        ['Q'] = ".###.#...##...##...##.#.##..#..##.#", ['R'] = "####.#...##...#####.#.#..#..#.#...#",
        ['S'] = ".#####....#.....###.....#....#####.", ['T'] = "#####..#....#....#....#....#....#..",
        ['U'] = "#...##...##...##...##...##...#.###.", ['V'] = "#...##...##...##...##...#.#.#...#..",
        ['W'] = "#...##...##...##.#.##.#.##.#.#.#.#.", ['X'] = "#...##...#.#.#...#...#.#.#...##...#",
        ['Y'] = "#...##...#.#.#...#....#....#....#..", ['Z'] = "#####....#...#...#...#...#....#####",
        ['.'] = ".........................##...##...", ['-'] = "...............###.................",
        ['+'] = ".......#....#..#####..#....#.......", [','] = "....................##....#...#....",
        ['('] = "...#...#...#....#....#.....#.....#.", [')'] = ".#.....#.....#....#....#...#...#...",
        ['['] = ".###..#....#....#....#....#....###.", [']'] = ".###....#....#....#....#....#..###.",
        ['='] = "..........#####.....#####..........", [':'] = "......##...##.........##...##......",
        ['/'] = ".........#...#...#...#...#.........", ['%'] = "##...##..#...#...#...#...#..##...##",
        ['>'] = ".#.....#.....#.....#...#...#...#...", ['<'] = "...#...#...#...#.....#.....#.....#.",
        ['?'] = ".###.#...#....#...#...#.........#..", [' '] = "...................................",
    };
}
