// Adds a per-frame table to frame-major video tokens (Open-Sora 1.0's temporal position embedding, added to
// the temporal-attention input of block 0 only):
//   out[n, f, s, j] = x[n, f, s, j] + table[f, j]        x, out (N, T, S, D); table (T, D); out may be x
// The official model adds it after rearranging to (B·S) T D; on the frame-major layout it is this broadcast.
//
// v1 (the only version): grid-stride over the N·T·S·D outputs, no shared memory.
using BlockDance.Kernels.Harness;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class FramePositionAdd
{
    public static void Reference(float[] x, float[] table, float[] o, int n, int t, int s, int d)
    {
        for (long r = 0; r < (long)n * t * s; r++)
        {
            long f = r / s % t;
            for (int j = 0; j < d; j++) o[r * d + j] = x[r * d + j] + table[f * d + j];
        }
    }

    [GpuKernel("frame_position_add")]
    static void Kernel(Index1D index, ArrayView<float> x, ArrayView<float> table, ArrayView<float> o, int t, int s, int d, long total, int width)
    {
        for (long e = index; e < total; e += width)
        {
            long f = e / d / s % t;
            o[e] = x[e] + table[f * d + e % d];
        }
    }

    /// <summary>out (n, t, s, d) = x + table (t, d) broadcast over n and s.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float> table, ArrayView<float> o, int n, int t, int s, int d)
    {
        long total = (long)n * t * s * d;
        Check.Size("frame position x", x.Length, total);
        Check.Size("frame position out", o.Length, total);
        Check.Size("frame position table", table.Length, (long)t * d);
        int width = dev.LaunchWidth(total);
        dev.Kernels.Get("frame_position_add", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                int, int, int, long, int>(Kernel))
            (width, x, table, o, t, s, d, total, width);
    }
}
