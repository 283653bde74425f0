// Unpatchify: final-layer tokens back to an image.
//   out[n, ch, i·p + py, j·p + px] = tok[n, i·(W/p) + j, (py·p + px)·C + ch]
// Note the channel-LAST order inside a token (einsum "nhwpqc->nchpwq" in the reference), unlike
// the conv weight's (ch, ky, kx) order in the patch embedding.
// host: the host backend's version (`--device cpu`): the same scalar formula per element, so the same bytes
//     as the ILGPU kernel; chunks of HostSimd.ElementChunk elements over the threads.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class Unpatchify
{
    public static void Reference(float[] tok, float[] o, int n, int c, int h, int w, int p)
    {
        int gw = w / p, t = (h / p) * gw;
        for (int s = 0; s < n; s++)
            for (int ch = 0; ch < c; ch++)
                for (int y = 0; y < h; y++)
                    for (int x = 0; x < w; x++)
                        o[((s * c + ch) * h + y) * w + x] =
                            tok[(s * t + (y / p) * gw + x / p) * p * p * c + ((y % p) * p + x % p) * c + ch];
    }

    static void Kernel(Index1D index, ArrayView<float> tok, ArrayView<float> o, int n, int c, int h, int w, int p, int width)
    {
        int gw = w / p, t = (h / p) * gw;
        for (long idx = index; idx < (long)n * c * h * w; idx += width)
        {
            int x = (int)(idx % w), y = (int)(idx / w % h), ch = (int)(idx / w / h % c), s = (int)(idx / w / h / c);
            o[idx] = tok[((long)s * t + (y / p) * gw + x / p) * p * p * c + ((y % p) * p + x % p) * c + ch];
        }
    }

    /// <summary>o (n, c, h, w) from tok (n, T, p·p·c).</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> tok, ArrayView<float> o, int n, int c, int h, int w, int p)
    {
        Check.Size("unpatchify tokens", tok.Length, (long)n * c * h * w);
        Check.Size("unpatchify out", o.Length, (long)n * c * h * w);
        if (dev.IsHost)
        {
            int gw = w / p, t = (h / p) * gw;
            HostSimd.Elementwise(dev, "unpatchify_host", (long)n * c * h * w, (start, end) =>
            {
                float* tp = Host.Ptr(tok), op = Host.Ptr(o);
                for (long idx = start; idx < end; idx++)
                {
                    int x = (int)(idx % w), y = (int)(idx / w % h), ch = (int)(idx / w / h % c), s = (int)(idx / w / h / c);
                    op[idx] = tp[((long)s * t + (y / p) * gw + x / p) * p * p * c + ((y % p) * p + x % p) * c + ch];
                }
            });
            return;
        }
        int width = dev.LaunchWidth((long)n * c * h * w);
        dev.Kernels.Get("unpatchify", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                int, int, int, int, int, int>(Kernel))
            (width, tok, o, n, c, h, w, p, width);
    }
}
