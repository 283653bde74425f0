// Samples → a PNG grid (BigGustave writes the PNG). Pixel-space models with 1 (gray) or 3 (RGB)
// channels; values in [−1, 1] map to [0, 255]. Small images are enlarged by an integer factor
// (nearest neighbour) so a 14×14 digit is visible; the factor is printed.
using BigGustave;

namespace BlockDance.Sampler;

public static class ImageGrid
{
    /// <summary>images (N, C, H, W) in [lo, hi] → one PNG, `columns` per row, 2-px gaps.</summary>
    public static void WritePng(string path, float[] images, int[] shape, float lo = -1f, float hi = 1f, int columns = 0, int scale = 0)
    {
        int n = shape[0], c = shape[1], h = shape[2], w = shape[3];
        if (c != 1 && c != 3) throw new ArgumentException($"PNG output needs 1 or 3 channels, the samples have {c}");
        if (columns <= 0) columns = Math.Min(n, 10);
        if (scale <= 0) scale = Math.Max(1, 64 / Math.Max(h, w));
        int rows = (n + columns - 1) / columns, gap = 2;
        int cw = w * scale, ch = h * scale;
        int width = columns * cw + (columns + 1) * gap, height = rows * ch + (rows + 1) * gap;
        var png = PngBuilder.Create(width, height, false);
        for (int yy = 0; yy < height; yy++)
            for (int xx = 0; xx < width; xx++) png.SetPixel(255, 255, 255, xx, yy);
        for (int i = 0; i < n; i++)
        {
            int ox = gap + (i % columns) * (cw + gap), oy = gap + (i / columns) * (ch + gap);
            for (int y = 0; y < ch; y++)
                for (int x = 0; x < cw; x++)
                {
                    int sy = y / scale, sx = x / scale;
                    byte V(int ch_) => ToByte(images[((long)(i * c + ch_) * h + sy) * w + sx], lo, hi);
                    byte r = V(0), g = c == 3 ? V(1) : r, b = c == 3 ? V(2) : r;
                    png.SetPixel(r, g, b, ox + x, oy + y);
                }
        }
        AtomicFile.Write(path, s => png.Save(s));
    }

    public static byte ToByte(float v, float lo, float hi) =>
        (byte)Math.Clamp(Math.Round((v - lo) / (hi - lo) * 255.0), 0, 255);
}
