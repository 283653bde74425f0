// The VAE decoder's output, [−1, 1], mapped to pixel values [0, 255] as float:
//   y = clamp((x + 1) / 2, 0, 1) · 255
// This is torchvision's save_image(normalize=True, value_range=(−1, 1)) up to its final
// "+0.5, truncate to uint8" step, which belongs to the image writer.
//
// v1: grid-stride elementwise.
// host: the host backend's version (`--device cpu`): the same scalar formula per element, so the same bytes
//     as the ILGPU kernel; chunks of HostSimd.ElementChunk elements over the threads.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class ImageOutput
{
    /// <summary>One pixel; shared by the kernel and the reference so both compute the same formula.</summary>
    public static float ToPixel(float v) => IntrinsicMath.Clamp((v + 1f) * 0.5f, 0f, 1f) * 255f;

    public static void Reference(float[] x, float[] y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = ToPixel(x[i]);
    }

    static void Kernel(Index1D index, ArrayView<float> x, ArrayView<float> y, long total, int width)
    {
        for (long i = index; i < total; i += width)
            y[i] = ToPixel(x[i]);
    }

    /// <summary>y[i] = clamp((x[i] + 1) / 2, 0, 1) · 255 for the first `total` elements; y may be x.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float> y, long total)
    {
        Check.Size("image x", x.Length, total);
        Check.Size("image y", y.Length, total);
        if (dev.IsHost)
        {
            HostSimd.Elementwise(dev, "image_output_host", total, (s, e) =>
            {
                float* xp = Host.Ptr(x), yp = Host.Ptr(y);
                for (long i = s; i < e; i++) yp[i] = ToPixel(xp[i]);
            });
            return;
        }
        int width = dev.LaunchWidth(total);
        dev.Kernels.Get("image_output", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, long, int>(Kernel))
            (width, x, y, total, width);
    }
}
