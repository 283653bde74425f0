// Host version of T5's relative-bias attention with a key mask (host backend, `--device cpu`): the
// AttentionHost core with the key mask and the bias of each offset j − i, looked up per work item:
//   biasByOffset[h, j − i + T − 1] = table[bucket[j − i + T − 1], h]            (heads, 2T − 1)
// One work item per (n, h, block of 32 query rows). Same contract as RelativeBiasAttention.Run: masked keys
// contribute nothing, a row whose keys are all masked is 0.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class RelativeBiasAttentionHost
{
    public const string Kernel = "relative_bias_attention_host";

    /// <summary>o (n, t, heads·hd) from qkv (n, t, 3·heads·hd) + relative bias, keys masked by mask (n, t)
    /// (sizes checked by RelativeBiasAttention.Run).</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> qkv, ArrayView<float> table, ArrayView<int> bucket, ArrayView<float> mask,
        ArrayView<float> o, int n, int t, int heads, int hd, float scale, int numBuckets)
    {
        int offsets = 2 * t - 1;
        long d = (long)heads * hd;
        AttentionHost.ForEachBlock(dev, Kernel, n, t, heads, t, hd, scale, (b, h, run) =>
        {
            fixed (float* bias = HostSimd.Scratch(6, offsets))
            {
                int* bk = Host.Ptr(bucket);
                float* tb = Host.Ptr(table);
                for (int off = 0; off < offsets; off++)
                {
                    if ((uint)bk[off] >= numBuckets) throw new ArgumentException($"relative-bias attention: bucket {bk[off]} at offset {off - t + 1}, the table has {numBuckets}");
                    bias[off] = tb[(long)bk[off] * heads + h];
                }
                float* q = Host.Ptr(qkv) + (long)b * t * 3 * d + h * hd;
                run(new AttentionHost.Slice(q, 3 * d, q + d, q + 2 * d, 3 * d, Host.Ptr(o) + (long)b * t * d + h * hd, d,
                    keep: Host.Ptr(mask) + (long)b * t, biasByOffset: bias));
            }
        });
    }
}
