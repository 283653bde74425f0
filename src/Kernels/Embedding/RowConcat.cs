// Two row-major matrices side by side: each row of a followed by the same row of b,
//   out[i, :] = [ a[i, 0..P) , b[i, 0..Q) ]            out (N, P + Q), a (N, P), b (N, Q)
// The input rows of a caption-conditioned BlockDance-Ada decision network: each sample's flattened latent z_ρ followed
// by its caption summary (the masked mean of its caption features), so that the network's first Linear layer sees both
// in one GEMM. One grid-stride pass; it runs once per sampling run (at the Ada decision step), so there is no faster
// version.
// host: the host backend's version (`--device cpu`): the same copy per element, so the same bytes as the ILGPU kernel;
//     chunks of HostSimd.ElementChunk elements over the threads.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class RowConcat
{
    public static void Reference(float[] a, float[] b, float[] o, int n, int p, int q)
    {
        for (int i = 0; i < n; i++)
            for (int j = 0; j < p + q; j++)
                o[i * (p + q) + j] = j < p ? a[i * p + j] : b[i * q + j - p];
    }

    static void Kernel(Index1D index, ArrayView<float> a, ArrayView<float> b, ArrayView<float> o, int n, int p, int q, int width)
    {
        int row = p + q;
        for (long e = index; e < (long)n * row; e += width)
        {
            int i = (int)(e / row), j = (int)(e % row);
            o[e] = j < p ? a[(long)i * p + j] : b[(long)i * q + j - p];
        }
    }

    /// <summary>o (n, p + q) = [a (n, p), b (n, q)] row by row.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> a, ArrayView<float> b, ArrayView<float> o, int n, int p, int q)
    {
        Check.Size("concat a", a.Length, (long)n * p);
        Check.Size("concat b", b.Length, (long)n * q);
        Check.Size("concat out", o.Length, (long)n * (p + q));
        if (dev.IsHost)
        {
            int row = p + q;
            HostSimd.Elementwise(dev, "row_concat_host", (long)n * row, (s, end) =>
            {
                float* ap = Host.Ptr(a), bp = Host.Ptr(b), op = Host.Ptr(o);
                for (long e = s; e < end; e++)
                {
                    int i = (int)(e / row), j = (int)(e % row);
                    op[e] = j < p ? ap[(long)i * p + j] : bp[(long)i * q + j - p];
                }
            });
            return;
        }
        int width = dev.LaunchWidth((long)n * (p + q));
        dev.Kernels.Get("row_concat", k => k.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, int, int, int, int>(Kernel))
            (width, a, b, o, n, p, q, width);
    }
}
