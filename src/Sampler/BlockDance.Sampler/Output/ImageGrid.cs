// Samples → a PNG grid (StbImageWriteSharp, the C# port of stb_image_write, encodes the PNG). Pixel-space models with 1 (gray) or 3 (RGB)
// channels; values in [−1, 1] map to [0, 255]. Small images are enlarged by an integer factor
// (nearest neighbour) so a 14×14 digit is visible; the factor is printed.
using StbImageWriteSharp;

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
        var rgb = new byte[width * height * 3];
        Array.Fill(rgb, (byte)255);
        for (int i = 0; i < n; i++)
        {
            int ox = gap + (i % columns) * (cw + gap), oy = gap + (i / columns) * (ch + gap);
            for (int y = 0; y < ch; y++)
                for (int x = 0; x < cw; x++)
                {
                    int sy = y / scale, sx = x / scale;
                    byte V(int ch_) => ToByte(images[((long)(i * c + ch_) * h + sy) * w + sx], lo, hi);
                    byte r = V(0), g = c == 3 ? V(1) : r, b = c == 3 ? V(2) : r;
                    int o = ((oy + y) * width + ox + x) * 3;
                    rgb[o] = r; rgb[o + 1] = g; rgb[o + 2] = b;
                }
        }
        AtomicFile.Write(path, s => new ImageWriter().WritePng(rgb, width, height, ColorComponents.RedGreenBlue, s));
    }

    public static byte ToByte(float v, float lo, float hi) =>
        (byte)Math.Clamp(Math.Round((v - lo) / (hi - lo) * 255.0), 0, 255);
}
