// Swaps the two middle axes of a 4-D tensor: y[a, j, i, e] = x[a, i, j, e],  x (A, R, S, E) → y (A, S, R, E).
// Video latents change layout with it: the model's (B, C, T, H·W) ↔ the per-frame (B, T, C, H·W) that the
// patch embedding, the unpatchify and the VAE (frames as a batch) work on. E = H·W keeps the inner copy contiguous.
//
// v1 (the only version): grid-stride over output elements (writes contiguous, reads contiguous within E).
using BlockDance.Kernels.Harness;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class SwapAxes
{
    public static void Reference(float[] x, float[] y, int a, int r, int s, int e)
    {
        for (long n = 0; n < a; n++)
            for (long i = 0; i < r; i++)
                for (long j = 0; j < s; j++)
                    for (long k = 0; k < e; k++)
                        y[((n * s + j) * r + i) * e + k] = x[((n * r + i) * s + j) * e + k];
    }

    [GpuKernel("swap_axes")]
    static void Kernel(Index1D index, ArrayView<float> x, ArrayView<float> y, int r, int s, int e, long total, int width)
    {
        for (long o = index; o < total; o += width)
        {
            long k = o % e, i = o / e % r, j = o / e / r % s, n = o / e / r / s;
            y[o] = x[((n * r + i) * s + j) * e + k];
        }
    }

    /// <summary>y (a, s, r, e) = x (a, r, s, e) with the middle axes swapped; y must not overlap x.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float> y, int a, int r, int s, int e)
    {
        long total = (long)a * r * s * e;
        Check.Size("swap axes x", x.Length, total);
        Check.Size("swap axes y", y.Length, total);
        int width = dev.LaunchWidth(total);
        dev.Kernels.Get("swap_axes", k => k.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                int, int, int, long, int>(Kernel))
            (width, x, y, r, s, e, total, width);
    }
}
