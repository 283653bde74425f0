// A figure of one or more ScottPlot plots placed side by side or stacked, written as PNG and SVG.
// ScottPlot 5 draws each plot (axes, ticks, titles, legend) with SkiaSharp into a rectangle of a shared
// canvas; the canvas is a raster surface for PNG and Skia's SVG canvas for SVG, so both files hold the
// same drawing. `--plot x.png` (or x.svg) writes both x.png and x.svg, together or not at all (AtomicFile).
using BlockDance.Sampler.Cli;
using ScottPlot;
using SkiaSharp;

namespace BlockDance.Sampler;

/// <summary>A plot and where it goes on the figure, in pixels from the top left.</summary>
public sealed record FigurePanel(Plot Plot, int X, int Y, int Width, int Height);

public static class Figure
{
    /// <summary>The font every figure uses: DejaVu Sans where installed (Debian's default), else ScottPlot's choice.</summary>
    public static void UseFont(Plot plot)
    {
        if (SKFontManager.Default.GetFontFamilies().Contains("DejaVu Sans")) plot.Font.Set("DejaVu Sans");
        else plot.Font.Automatic();
    }

    /// <summary>Checks an output name given to `option`: .png or .svg, both it and its twin writable.</summary>
    public static void CheckOutput(string path, string option)
    {
        var ext = Path.GetExtension(path).ToLowerInvariant();
        if (ext is not (".png" or ".svg")) throw new UsageException($"{option} {path}: expected a .png or .svg file name (both are written)");
        AtomicFile.CheckWritable(path, option);
        AtomicFile.CheckWritable(Twin(path), option);
    }

    /// <summary>x.png ⇄ x.svg.</summary>
    public static string Twin(string path) =>
        Path.ChangeExtension(path, Path.GetExtension(path).Equals(".png", StringComparison.OrdinalIgnoreCase) ? ".svg" : ".png");

    /// <summary>Writes the figure as `path` and its PNG/SVG twin; returns both names.</summary>
    public static (string Png, string Svg) Save(string path, int width, int height, IReadOnlyList<FigurePanel> panels)
    {
        string png = path.EndsWith(".png", StringComparison.OrdinalIgnoreCase) ? path : Twin(path);
        string svg = Twin(png);
        using var group = AtomicFile.BeginGroup();
        AtomicFile.Write(png, s => s.Write(Png(width, height, panels)));
        AtomicFile.Write(svg, s => WriteSvg(s, width, height, panels));
        group.Commit();
        return (png, svg);
    }

    public static byte[] Png(int width, int height, IReadOnlyList<FigurePanel> panels)
    {
        using var surface = SKSurface.Create(new SKImageInfo(width, height, SKColorType.Rgba8888, SKAlphaType.Premul));
        Draw(surface.Canvas, panels);
        using var image = surface.Snapshot();
        using var data = image.Encode(SKEncodedImageFormat.Png, 100);
        return data.ToArray();
    }

    public static void WriteSvg(Stream output, int width, int height, IReadOnlyList<FigurePanel> panels)
    {
        using var ws = new SKManagedWStream(output);
        using (var canvas = SKSvgCanvas.Create(SKRect.Create(width, height), ws)) Draw(canvas, panels);
        ws.Flush();
    }

    static void Draw(SKCanvas canvas, IReadOnlyList<FigurePanel> panels)
    {
        canvas.Clear(SKColors.White);
        foreach (var p in panels)
        {
            // a plot clears its canvas before drawing: clip it to its own rectangle
            canvas.Save();
            canvas.ClipRect(SKRect.Create(p.X, p.Y, p.Width, p.Height));
            canvas.Translate(p.X, p.Y);
            p.Plot.Render(canvas, new PixelRect(new Pixel(0, 0), new Pixel(p.Width, p.Height)));
            canvas.Restore();
        }
    }
}
