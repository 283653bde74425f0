// Open-Sora 1.0's fixed sin-cos tables, in the official orders (opensora/models/layers/blocks.py):
//   spatial  (S, D), S = g²: coordinates arange(g) / space_scale (numpy float32, then float64 math); the first D/2
//            channels encode the column, the second D/2 the row, each 1-D half [sin | cos] with ω_k = 10000^(−k/(D/4)).
//            The same table as PixArt-α's at base size g (PixArtPosition.Table), with the coordinates rounded to
//            float32 first as numpy does.
//   temporal (T, D): positions arange(T) / time_scale in float64, [sin | cos] with ω_k = 10000^(−k/(D/2)).
// Both are recomputed for the frames and size in use; the buffers a checkpoint may store are not read.
namespace BlockDance.Transformer;

public static class STDiTPosition
{
    /// <summary>(g·g, d) row-major, token = row·g + col.</summary>
    public static float[] Spatial(int d, int g, double scale)
    {
        int quarter = d / 4;
        var o = new float[(long)g * g * d];
        for (int r = 0; r < g; r++)
            for (int c = 0; c < g; c++)
            {
                double row = (float)(r / (float)scale), col = (float)(c / (float)scale);
                long tok = (long)r * g + c;
                for (int k = 0; k < quarter; k++)
                {
                    double omega = 1.0 / Math.Pow(10000, k / (double)quarter);
                    o[tok * d + k] = (float)Math.Sin(col * omega);
                    o[tok * d + quarter + k] = (float)Math.Cos(col * omega);
                    o[tok * d + 2 * quarter + k] = (float)Math.Sin(row * omega);
                    o[tok * d + 3 * quarter + k] = (float)Math.Cos(row * omega);
                }
            }
        return o;
    }

    /// <summary>(frames, d) row-major.</summary>
    public static float[] Temporal(int d, int frames, double scale)
    {
        int half = d / 2;
        var o = new float[(long)frames * d];
        for (int f = 0; f < frames; f++)
        {
            double pos = f / scale;
            for (int k = 0; k < half; k++)
            {
                double omega = 1.0 / Math.Pow(10000, k / (double)half);
                o[(long)f * d + k] = (float)Math.Sin(pos * omega);
                o[(long)f * d + half + k] = (float)Math.Cos(pos * omega);
            }
        }
        return o;
    }
}
