// Multi-head cross-attention of image tokens to caption tokens with a key-padding mask (PixArt-α's attn2):
//   q    (N, T, D)        queries of the N model rows (heads h own dims h·hd … (h+1)·hd−1)
//   kv   (C, L, 2D)       [k | v] of C captions of L tokens each, projected once per caption set
//   keep (C, L)          1 = real token, 0 = padding (a masked key contributes nothing)
//   cap  (N)             the caption row each model row attends to (several rows may share one)
//   out  (N, T, D)       = concat_h softmax_{j: keep[cap, j]}(q_h · k_hjᵀ · scale) · v_hj
// A query row whose caption has no kept token is DEFINED: its output is 0 (no key, no contribution),
// never NaN. (Diffusers' additive −10000 bias would turn such a row into unmasked attention over the
// padding; the engine rejects an all-zero prompt mask at the input instead, so the rule only matters for
// direct callers.) Masked keys are skipped, not given −∞, so no exp(−∞ − −∞) can arise.
//
// v1 (this file): one work item per (n, h, query) row with an online softmax over the L keys, the output
//     row itself as the accumulator; no shared memory, no barrier (the CPU accelerator's version). L is
//     short (120 for PixArt), so this is a small share of a block; faster versions are left to later work.
//     The row is AttentionRow's over CaptionKeys (the caption's keys and mask).
// host (CrossAttentionHost.cs): the host backend's version (AttentionHost's flash blocks with the key mask).
using BlockDance.Kernels.Harness;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class CrossAttention
{
    /// <summary>The plain reference: AttentionReference with the caption map and the key mask.</summary>
    public static void Reference(float[] q, float[] kv, float[] keep, int[] cap, float[] o, int n, int t, int l, int heads, int hd, float scale)
    {
        long d = (long)heads * hd;
        AttentionReference.Run(new(q, t * d, d), new(kv, l * 2 * d, 2 * d), new(kv, l * 2 * d, 2 * d, d), o, n, t, l, heads, hd, scale,
            new AttentionOptions { Keep = keep, KeyBatch = cap });
    }

    /// <summary>A caption's keys: token j of caption c at (c·L + j)·2D (v D further), kept where keep[c, j] = 1.</summary>
    readonly struct CaptionKeys(long first, int d, ArrayView<float> keep, long keepRow) : IAttentionKeys
    {
        readonly long k0 = first, row = keepRow;
        readonly int stride = 2 * d;
        readonly ArrayView<float> mask = keep;
        public long Key(int j) => k0 + (long)j * stride;
        public bool Keep(int j) => mask[row + j] != 0f;
        public float Score(float scaled, int j) => scaled;
        public float Finish(float l) => l > 0f ? 1f / l : 0f;   // no kept key: the row stays 0
    }

    [GpuKernel("cross_attention_v1")]
    static void Kernel(Index1D index, ArrayView<float> q, ArrayView<float> kv, ArrayView<float> keep, ArrayView<int> cap,
        ArrayView<float> o, int n, int t, int l, int heads, int hd, float scale, int width)
    {
        int d = heads * hd;
        long rows = (long)n * heads * t;
        for (long r = index; r < rows; r += width)
        {
            AttentionRow.Split(r, t, heads, out int b, out int h, out int i);
            int c = cap[b];
            long qRow = ((long)b * t + i) * d + h * hd;
            AttentionRow.Run(q, qRow, kv, o, qRow, l, d, hd, scale, new CaptionKeys((long)c * l * 2 * d + h * hd, d, keep, (long)c * l));
        }
    }

    /// <summary>o (n, t, heads·hd) = masked cross-attention of q (n, t, D) to the captions kv (c, l, 2D), row b using caption cap[b].</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> q, ArrayView<float> kv, ArrayView<float> keep, ArrayView<int> cap,
        ArrayView<float> o, int n, int t, int l, int heads, int hd, float scale)
    {
        long d = (long)heads * hd;
        Check.Size("cross-attention q", q.Length, n * t * d);
        Check.Size("cross-attention out", o.Length, n * t * d);
        if (kv.Length % (2 * d * l) != 0 || keep.Length != kv.Length / (2 * d))
            throw new ArgumentException($"cross-attention: kv of {kv.Length} and keep of {keep.Length} values do not hold whole captions of {l} tokens × {2 * d}");
        if (cap.Length < n) throw new ArgumentException($"cross-attention: {cap.Length} caption indices for {n} rows");
        if (dev.IsHost) { CrossAttentionHost.Run(dev, q, kv, keep, cap, o, n, t, l, heads, hd, scale); return; }
        int width = dev.LaunchWidth((long)n * heads * t);
        dev.Kernels.Get("cross_attention_v1", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<int>, ArrayView<float>, int, int, int, int, int, float, int>(Kernel))
            (width, q, kv, keep, cap, o, n, t, l, heads, hd, scale, width);
    }

    public static long Flops(long n, long t, long l, long heads, long hd) => 4 * n * heads * t * l * hd;
}
