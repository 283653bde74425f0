// Nearest-neighbour upsampling ×2 over NCHW (diffusers Upsample2D: F.interpolate(scale_factor=2,
// mode="nearest"), followed there by a 3×3 conv that the caller runs with Conv2d):
//   y[b, c, oy, ox] = x[b, c, oy / 2, ox / 2]      (integer division)
//
// v1: grid-stride over output elements, no shared memory. (The copy could later be folded into the
//     following conv's index mapping — read x[iy / 2, ix / 2] — saving this pass and its buffer.)
// host: one work item per plane, each input row written twice with every value doubled.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class Upsample
{
    public static void Reference(float[] x, float[] y, int planes, int h, int w)
    {
        int oh = 2 * h, ow = 2 * w;
        for (int p = 0; p < planes; p++)
            for (int oy = 0; oy < oh; oy++)
                for (int ox = 0; ox < ow; ox++)
                    y[((long)p * oh + oy) * ow + ox] = x[((long)p * h + oy / 2) * w + ox / 2];
    }

    static void Kernel(Index1D index, ArrayView<float> x, ArrayView<float> y, long total, int h, int w, int width)
    {
        int ow = 2 * w;
        long planeOut = 4L * h * w;
        for (long i = index; i < total; i += width)
        {
            long p = i / planeOut;
            long r = i % planeOut;
            int oy = (int)(r / ow), ox = (int)(r % ow);
            y[i] = x[(p * h + oy / 2) * w + ox / 2];
        }
    }

    /// <summary>y (planes, 2h, 2w) = nearest ×2 of x (planes, h, w); planes = batch · channels.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float> y, int planes, int h, int w)
    {
        long total = 4L * planes * h * w;
        Check.Size("upsample x", x.Length, (long)planes * h * w);
        Check.Size("upsample y", y.Length, total);
        if (dev.IsHost) { RunHost(dev, x, y, planes, h, w); return; }
        int width = dev.LaunchWidth(total);
        dev.Kernels.Get("upsample_nearest2x", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                long, int, int, int>(Kernel))
            (width, x, y, total, h, w, width);
    }

    static unsafe void RunHost(ComputeDevice dev, ArrayView<float> x, ArrayView<float> y, int planes, int h, int w)
    {
        Host.For(dev, "upsample_nearest2x_host", planes, p =>
        {
            float* src = Host.Ptr(x) + (long)p * h * w, dst = Host.Ptr(y) + 4L * p * h * w;
            for (int iy = 0; iy < h; iy++, src += w, dst += 4 * w)
            {
                for (int ix = 0; ix < w; ix++) dst[2 * ix] = dst[2 * ix + 1] = src[ix];
                new ReadOnlySpan<float>(dst, 2 * w).CopyTo(new Span<float>(dst + 2 * w, 2 * w));
            }
        });
    }
}
