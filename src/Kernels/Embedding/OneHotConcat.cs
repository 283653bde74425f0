// The input rows of the BlockDance-Ada decision network: each sample's flattened pixels/latent
// followed by the one-hot code of its class label,
//   out[i, :] = [ x[i, 0..P) , onehot(y[i], K) ]            out (N, P + K), x (N, P), y (N)
// so that the network's first Linear layer sees both in one GEMM. One grid-stride pass; it runs once
// per sampling run (at the Ada decision step), so there is no faster version.
// host: the host backend's version (`--device cpu`): the same scalar formula per element, so the same bytes
//     as the ILGPU kernel; chunks of HostSimd.ElementChunk elements over the threads.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class OneHotConcat
{
    public static void Reference(float[] x, int[] y, float[] o, int p, int k)
    {
        for (int i = 0; i < y.Length; i++)
            for (int j = 0; j < p + k; j++)
                o[i * (p + k) + j] = j < p ? x[i * p + j] : (j - p == y[i] ? 1f : 0f);
    }

    static void Kernel(Index1D index, ArrayView<float> x, ArrayView<int> y, ArrayView<float> o, int n, int p, int k, int width)
    {
        int row = p + k;
        for (long e = index; e < (long)n * row; e += width)
        {
            int i = (int)(e / row), j = (int)(e % row);
            o[e] = j < p ? x[(long)i * p + j] : (j - p == y[i] ? 1f : 0f);
        }
    }

    /// <summary>o (n, p + k) = [x (n, p), onehot(y (n), k)]; labels outside 0..k−1 give an all-zero code.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<int> y, ArrayView<float> o, int n, int p, int k)
    {
        Check.Size("onehot x", x.Length, (long)n * p);
        Check.Size("onehot y", y.Length, n);
        Check.Size("onehot out", o.Length, (long)n * (p + k));
        if (dev.IsHost)
        {
            int row = p + k;
            HostSimd.Elementwise(dev, "onehot_concat_host", (long)n * row, (s, end) =>
            {
                float* xp = Host.Ptr(x), op = Host.Ptr(o);
                int* yp = Host.Ptr(y);
                for (long e = s; e < end; e++)
                {
                    int i = (int)(e / row), j = (int)(e % row);
                    op[e] = j < p ? xp[(long)i * p + j] : (j - p == yp[i] ? 1f : 0f);
                }
            });
            return;
        }
        int width = dev.LaunchWidth((long)n * (p + k));
        dev.Kernels.Get("onehot_concat", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>,
                ArrayView<float>, int, int, int, int>(Kernel))
            (width, x, y, o, n, p, k, width);
    }
}
