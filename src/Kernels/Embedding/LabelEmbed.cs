// Label embedding fused with the condition sum (y_embedder + "c = t + y" in DiT.forward):
//   c[n, :] = temb[n, :] + table[y[n], :]
// table has num_classes + 1 rows; row num_classes is the "null" label used for the unconditional
// half of classifier-free guidance. Labels are validated on the host before they get here.
// host: the host backend's version (`--device cpu`): the same scalar formula per element, so the same bytes
//     as the ILGPU kernel; chunks of HostSimd.ElementChunk elements over the threads.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class LabelEmbed
{
    public static void Reference(float[] temb, float[] table, int[] y, float[] c, int d)
    {
        for (int n = 0; n < y.Length; n++)
            for (int e = 0; e < d; e++) c[n * d + e] = temb[n * d + e] + table[y[n] * d + e];
    }

    static void Kernel(Index1D index, ArrayView<float> temb, ArrayView<float> table, ArrayView<int> y, ArrayView<float> c,
        int n, int d, int width)
    {
        for (long idx = index; idx < (long)n * d; idx += width)
        {
            int e = (int)(idx % d), s = (int)(idx / d);
            c[idx] = temb[idx] + table[(long)y[s] * d + e];
        }
    }

    public static void Run(ComputeDevice dev, ArrayView<float> temb, ArrayView<float> table, ArrayView<int> y, ArrayView<float> c, int n, int d)
    {
        Check.Size("label y", y.Length, n);
        Check.Size("label c", c.Length, (long)n * d);
        if (dev.IsHost)
        {
            HostSimd.Elementwise(dev, "label_embed_host", (long)n * d, (s, e) =>
            {
                float* tp = Host.Ptr(temb), tb = Host.Ptr(table), cp = Host.Ptr(c);
                int* yp = Host.Ptr(y);
                for (long idx = s; idx < e; idx++) cp[idx] = tp[idx] + tb[(long)yp[idx / d] * d + idx % d];
            });
            return;
        }
        int width = dev.LaunchWidth((long)n * d);
        dev.Kernels.Get("label_embed", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                ArrayView<int>, ArrayView<float>, int, int, int>(Kernel))
            (width, temb, table, y, c, n, d, width);
    }
}
