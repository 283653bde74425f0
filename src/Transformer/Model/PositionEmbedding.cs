// Fixed 2-D sin-cos position embedding (get_2d_sincos_pos_embed in the DiT reference), in float64,
// stored as float32. For grid position (row i, col j) of a G×G grid:
//   dims [0, D/2)  encode the COLUMN j,  dims [D/2, D) encode the ROW i
//   each half: [sin(pos·ω_k)]_k then [cos(pos·ω_k)]_k,  ω_k = 10000^(−k/(D/4)), k < D/4
// The official checkpoints store it (pos_embed); the diffusers layout does not, so it is computed.
namespace BlockDance.Transformer;

public static class PositionEmbedding
{
    /// <summary>(G·G, D) row-major, token index = i·G + j.</summary>
    public static float[] SinCos2D(int d, int grid)
    {
        int quarter = d / 4;
        var o = new float[grid * grid * d];
        for (int i = 0; i < grid; i++)
            for (int j = 0; j < grid; j++)
            {
                int tok = i * grid + j;
                for (int k = 0; k < quarter; k++)
                {
                    double omega = 1.0 / Math.Pow(10000, k / (double)quarter);
                    o[tok * d + k] = (float)Math.Sin(j * omega);
                    o[tok * d + quarter + k] = (float)Math.Cos(j * omega);
                    o[tok * d + 2 * quarter + k] = (float)Math.Sin(i * omega);
                    o[tok * d + 3 * quarter + k] = (float)Math.Cos(i * omega);
                }
            }
        return o;
    }
}
