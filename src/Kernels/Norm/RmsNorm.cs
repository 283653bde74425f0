// RMS norm without mean subtraction (T5's T5LayerNorm, also called "RMSNorm"):
//   y[r, :] = w ⊙ x[r, :] / √(mean(x[r, :]²) + eps)
// No mean subtraction and no bias, unlike LayerNorm. T5 accumulates the mean of squares in fp32
// even when it runs in half precision; here everything is fp32. eps is the model's
// layer_norm_epsilon (1e-6 for every T5 v1.1 checkpoint), passed in by the caller.
//
// v1: one work item per row, two passes over D (sum of squares, then scale); grid-stride, no shared
//     memory, no barriers — the version the CPU accelerator runs acceptably.
// host: the host backend's version, one work item per block of 8 rows, Vector256 Σx² (lane sums, then the
//     lanes in order) and scale.
using System.Runtime.Intrinsics;
using BlockDance.Kernels.Harness;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class RmsNorm
{
    public static void Reference(float[] x, float[] w, float[] y, int rows, int d, float eps)
    {
        for (int r = 0; r < rows; r++)
        {
            double sq = 0;
            for (int i = 0; i < d; i++) sq += (double)x[r * d + i] * x[r * d + i];
            double inv = 1.0 / Math.Sqrt(sq / d + eps);
            for (int i = 0; i < d; i++) y[r * d + i] = (float)(w[i] * (x[r * d + i] * inv));
        }
    }

    [GpuKernel("rmsnorm_v1")]
    static void KernelV1(Index1D index, ArrayView<float> x, ArrayView<float> w, ArrayView<float> y, int rows, int d, float eps, int width)
    {
        for (int r = index; r < rows; r += width)
        {
            long o = (long)r * d;
            float sq = 0;
            for (int i = 0; i < d; i++) sq += x[o + i] * x[o + i];
            float inv = 1f / MathF.Sqrt(sq / d + eps);
            for (int i = 0; i < d; i++) y[o + i] = w[i] * (x[o + i] * inv);
        }
    }

    /// <summary>y (rows, d) = w ⊙ x / rms(x); x and y may be the same buffer.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float> w, ArrayView<float> y, int rows, int d, float eps)
    {
        Check.Size("rmsnorm x", x.Length, (long)rows * d);
        Check.Size("rmsnorm weight", w.Length, d);
        Check.Size("rmsnorm y", y.Length, (long)rows * d);
        if (dev.IsHost) { RunHost(dev, x, w, y, rows, d, eps); return; }
        int width = dev.LaunchWidth(rows);
        dev.Kernels.Get("rmsnorm_v1", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, int, int, float, int>(KernelV1))
            (width, x, w, y, rows, d, eps, width);
    }

    static unsafe void RunHost(ComputeDevice dev, ArrayView<float> x, ArrayView<float> w, ArrayView<float> y, int rows, int d, float eps)
    {
        const int rowBlock = 8;
        Host.For(dev, "rmsnorm_host", (rows + rowBlock - 1) / rowBlock, blk =>
        {
            float* wp = Host.Ptr(w);
            for (int r = blk * rowBlock, end = Math.Min(rows, r + rowBlock); r < end; r++)
            {
                float* xr = Host.Ptr(x) + (long)r * d, yr = Host.Ptr(y) + (long)r * d;
                float inv = 1f / MathF.Sqrt(HostSimd.SumSquaredDeviation(xr, d, 0f) / d + eps);
                var vi = Vector256.Create(inv);
                int i = 0;
                for (; i + HostSimd.Lanes <= d; i += HostSimd.Lanes)
                    (Vector256.Load(wp + i) * (Vector256.Load(xr + i) * vi)).Store(yr + i);
                for (; i < d; i++) yr[i] = wp[i] * (xr[i] * inv);
            }
        });
    }
}
