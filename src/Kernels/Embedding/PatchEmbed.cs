// Patch embedding (x_embedder.proj: Conv2d with kernel = stride = p) plus the position embedding:
//   out[n, t, d] = b[d] + pos[t, d] + Σ_{c, ky, kx} x[n, c, i·p + ky, j·p + kx] · W[d, c, ky, kx]
// with token t = i·(W/p) + j (row-major over the patch grid, as `flatten(2).transpose(1, 2)`).
//
// v1: one work item per output element, grid-stride. The conv is tiny next to the blocks.
// host: the host backend's version (`--device cpu`): the same scalar formula per element, so the same bytes
//     as the ILGPU kernel; chunks of HostSimd.ElementChunk elements over the threads.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class PatchEmbed
{
    public static void Reference(float[] x, float[] w, float[] b, float[] pos, float[] o, int n, int c, int h, int wd, int p, int d)
    {
        int gw = wd / p, t = (h / p) * gw;
        for (int s = 0; s < n; s++)
            for (int tok = 0; tok < t; tok++)
                for (int e = 0; e < d; e++)
                {
                    int i = tok / gw, j = tok % gw;
                    double acc = b[e] ;
                    for (int ch = 0; ch < c; ch++)
                        for (int ky = 0; ky < p; ky++)
                            for (int kx = 0; kx < p; kx++)
                                acc += (double)x[((s * c + ch) * h + i * p + ky) * wd + j * p + kx] * w[((e * c + ch) * p + ky) * p + kx];
                    o[(s * t + tok) * d + e] = (float)acc + pos[tok * d + e];
                }
    }

    static void Kernel(Index1D index, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> pos,
        ArrayView<float> o, int n, int c, int h, int wd, int p, int d, int width)
    {
        int gw = wd / p, t = (h / p) * gw;
        long total = (long)n * t * d;
        for (long idx = index; idx < total; idx += width)
        {
            int e = (int)(idx % d);
            int tok = (int)(idx / d % t);
            int s = (int)(idx / d / t);
            int i = tok / gw, j = tok % gw;
            float acc = 0;
            for (int ch = 0; ch < c; ch++)
                for (int ky = 0; ky < p; ky++)
                    for (int kx = 0; kx < p; kx++)
                        acc += x[(((long)s * c + ch) * h + i * p + ky) * wd + j * p + kx] * w[(((long)e * c + ch) * p + ky) * p + kx];
            o[idx] = acc + b[e] + pos[(long)tok * d + e];
        }
    }

    /// <summary>The name Run's launches count under on `dev` (KernelCache; tests that count launches ask it).</summary>
    public static string KernelName(ComputeDevice dev) => dev.IsHost ? "patch_embed_host" : "patch_embed";

    /// <summary>o (n, T, d) = conv_p(x (n, c, h, w)) + b + pos (T, d).</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> pos,
        ArrayView<float> o, int n, int c, int h, int wd, int p, int d)
    {
        long t = (long)(h / p) * (wd / p);
        Check.Size("patch_embed x", x.Length, (long)n * c * h * wd);
        Check.Size("patch_embed out", o.Length, n * t * d);
        Check.Size("patch_embed pos", pos.Length, t * d);
        if (dev.IsHost)
        {
            HostSimd.Elementwise(dev, KernelName(dev), n * t * d, (start, end) =>
            {
                float* xp = Host.Ptr(x), wp = Host.Ptr(w), bp = Host.Ptr(b), pp = Host.Ptr(pos), op = Host.Ptr(o);
                int gw = wd / p, tt = (h / p) * gw;
                for (long idx = start; idx < end; idx++)
                {
                    int e = (int)(idx % d), tok = (int)(idx / d % tt), s = (int)(idx / d / tt);
                    int i = tok / gw, j = tok % gw;
                    float acc = 0;
                    for (int ch = 0; ch < c; ch++)
                        for (int ky = 0; ky < p; ky++)
                            for (int kx = 0; kx < p; kx++)
                                acc += xp[(((long)s * c + ch) * h + i * p + ky) * wd + j * p + kx] * wp[(((long)e * c + ch) * p + ky) * p + kx];
                    op[idx] = acc + bp[e] + pp[(long)tok * d + e];
                }
            });
            return;
        }
        int width = dev.LaunchWidth(n * t * d);
        dev.Kernels.Get("patch_embed", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int>(Kernel))
            (width, x, w, b, pos, o, n, c, h, wd, p, d, width);
    }
}
