// Multi-head self-attention with an additive relative-position bias and a key padding mask
// (T5's encoder self-attention), online softmax:
//   qkv (N, T, 3D) = [q | k | v], D = heads·hd (T5's inner dim, independent of d_model)
//   score[n, h, i, j] = scale · q_i·k_j + table[bucket[j − i + T − 1], h]     for keys with mask[n, j] = 1
//   out (N, T, D)     = concat_h softmax_j(score) · v_h
// T5 uses scale = 1 (no 1/√hd: its initialisation absorbs it). The bias table (buckets, heads) is
// the layer's relative_attention_bias weight, and bucket (2T − 1) maps each offset j − i to its bucket
// (T5RelativePosition computes it once per sequence length), so the (heads, T, T) bias tensor never
// exists. Masked keys are skipped, which is exactly what adding finfo.min does in fp32 (exp underflows
// to 0). A row whose keys are all masked gets zeros; T5's rows always keep the EOS key.
// Softmax statistics are fp32, as in the HF model (it upcasts the scores to fp32).
//
// This is a separate file from Attention.cs (the DiT's attention) on purpose: the DiT kernels get
// faster versions of their own, and the bias/mask reads would cost them on every step.
//
// v1: one work item per (n, h, query) row; the output row is the accumulator (rescaled when the running
//     max grows), no shared memory, no barriers: AttentionRow over BiasedKeys (the mask and the bias live in
//     the keys struct, so attention_v1, which shares the row, compiles without them).
// host (RelativeBiasAttentionHost.cs): the host backend's version (AttentionHost's flash blocks + bias + mask).
using BlockDance.Kernels.Harness;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class RelativeBiasAttention
{
    /// <summary>The plain reference: AttentionReference with the key mask and the bias table[bucket[j − i + T − 1], h].</summary>
    public static void Reference(float[] qkv, float[] table, int[] bucket, float[] mask, float[] o,
        int n, int t, int heads, int hd, float scale) =>
        AttentionReference.SelfAttention(qkv, o, n, t, heads, hd, scale,
            new AttentionOptions { Keep = mask, Bias = (h, i, j) => table[bucket[j - i + t - 1] * heads + h] });

    /// <summary>T5's keys: the row's own qkv as in self-attention, masked by the row's mask, the score plus the bias of
    /// offset j − i.</summary>
    readonly struct BiasedKeys(long rowBase, int d, ArrayView<float> table, ArrayView<int> bucket, ArrayView<float> mask,
        long maskRow, int offset, int heads, int h) : IAttentionKeys
    {
        readonly long first = rowBase + d, keepRow = maskRow;
        readonly int stride = 3 * d, shift = offset, nHeads = heads, head = h;
        readonly ArrayView<float> bias = table, keep = mask;
        readonly ArrayView<int> buckets = bucket;
        public long Key(int j) => first + (long)j * stride;
        public bool Keep(int j) => keep[keepRow + j] != 0f;
        public float Score(float scaled, int j) => scaled + bias[buckets[j + shift] * nHeads + head];
        public float Finish(float l) => l > 0f ? 1f / l : 0f;
    }

    [GpuKernel("relative_bias_attention_v1")]
    static void KernelV1(Index1D index, ArrayView<float> qkv, ArrayView<float> table, ArrayView<int> bucket, ArrayView<float> mask,
        ArrayView<float> o, int n, int t, int heads, int hd, float scale, int width)
    {
        int d = heads * hd;
        long rows = (long)n * heads * t;
        for (long r = index; r < rows; r += width)
        {
            AttentionRow.Split(r, t, heads, out int b, out int h, out int i);
            long q = ((long)b * t + i) * 3 * d + h * hd;
            long outRow = ((long)b * t + i) * d + h * hd;
            var keys = new BiasedKeys((long)b * t * 3 * d + h * hd, d, table, bucket, mask, (long)b * t, t - 1 - i, heads, h);
            AttentionRow.Run(qkv, q, qkv, o, outRow, t, d, hd, scale, keys);
        }
    }

    /// <summary>o (n, t, heads·hd) = attention(qkv (n, t, 3·heads·hd)) + relative bias, keys masked by mask (n, t).</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> qkv, ArrayView<float> table, ArrayView<int> bucket, ArrayView<float> mask,
        ArrayView<float> o, int n, int t, int heads, int hd, float scale, int numBuckets)
    {
        Check.Size("relative-bias attention qkv", qkv.Length, 3L * n * t * heads * hd);
        Check.Size("relative-bias attention table", table.Length, (long)numBuckets * heads);
        Check.Size("relative-bias attention buckets", bucket.Length, 2L * t - 1);
        Check.Size("relative-bias attention mask", mask.Length, (long)n * t);
        Check.Size("relative-bias attention out", o.Length, (long)n * t * heads * hd);
        if (dev.IsHost) { RelativeBiasAttentionHost.Run(dev, qkv, table, bucket, mask, o, n, t, heads, hd, scale, numBuckets); return; }
        int width = dev.LaunchWidth((long)n * heads * t);
        dev.Kernels.Get("relative_bias_attention_v1", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                ArrayView<int>, ArrayView<float>, ArrayView<float>, int, int, int, int, float, int>(KernelV1))
            (width, qkv, table, bucket, mask, o, n, t, heads, hd, scale, width);
    }

    public static long Flops(long n, long t, long heads, long hd) => 4 * n * heads * t * t * hd;
}
