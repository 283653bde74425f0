// PixArt-α's fixed 2-D sin-cos position table, "interpolated": for a grid of gh × gw tokens, base size
// B = sample_size / patch and scale s (lewei_scale / interpolation_scale), the coordinates are
//   row r → r / (gh / B) / s,   column c → c / (gw / B) / s
// and each token gets [sin(col·ω_k) | cos(col·ω_k) | sin(row·ω_k) | cos(row·ω_k)], ω_k = 10000^(−k/(D/4)),
// k < D/4 (first half the column, second half the row; token = r·gw + c). At the trained size and s = 1 this
// is the DiT table; the 1024-MS model (s = 2) steps by ½. Computed in float64 on the host, rounded once.
namespace BlockDance.Transformer;

public static class PixArtPosition
{
    /// <summary>(gh·gw, d) row-major.</summary>
    public static float[] Table(int d, int gh, int gw, int baseSize, double scale)
    {
        int quarter = d / 4;
        var o = new float[(long)gh * gw * d];
        for (int r = 0; r < gh; r++)
            for (int c = 0; c < gw; c++)
            {
                double row = r / (gh / (double)baseSize) / scale, col = c / (gw / (double)baseSize) / scale;
                long tok = (long)r * gw + c;
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
}
