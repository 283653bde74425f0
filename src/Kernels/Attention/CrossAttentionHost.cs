// Host version of PixArt's masked cross-attention (host backend, `--device cpu`): the AttentionHost core with
// the caption's key mask, one work item per (n, h, block of 32 query rows). Same contract as
// CrossAttention.Run: masked keys contribute nothing, a query row whose caption has no kept token is 0.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class CrossAttentionHost
{
    public const string Kernel = "cross_attention_host";

    /// <summary>o (n, t, D) = masked cross-attention of q (n, t, D) to kv (c, l, 2D), row b using caption cap[b]
    /// (sizes checked by CrossAttention.Run).</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> q, ArrayView<float> kv, ArrayView<float> keep, ArrayView<int> cap,
        ArrayView<float> o, int n, int t, int l, int heads, int hd, float scale)
    {
        long d = (long)heads * hd;
        long captions = keep.Length / l;
        AttentionHost.ForEachBlock(dev, Kernel, n, t, heads, l, hd, scale, (b, h, run) =>
        {
            int c = Host.Ptr(cap)[b];
            if ((uint)c >= captions) throw new ArgumentException($"cross-attention: row {b} uses caption {c}, there are {captions}");
            float* k = Host.Ptr(kv) + (long)c * l * 2 * d + h * hd;
            run(new AttentionHost.Slice(Host.Ptr(q) + (long)b * t * d + h * hd, d, k, k + d, 2 * d,
                Host.Ptr(o) + (long)b * t * d + h * hd, d, keep: Host.Ptr(keep) + (long)c * l));
        });
    }
}
