// Multi-head self-attention over a packed qkv tensor, online softmax (flash-style):
//   qkv (N, T, 3D) = [q | k | v], head h owns dims h·hd … (h+1)·hd−1 inside each D-block
//   out (N, T, D)  = concat_h softmax(q_h · k_hᵀ · scale) · v_h,  scale = 1/√hd by default
// The T×T score matrix never exists in memory: each query row keeps a running max m, a running
// denominator l and its output accumulator, rescaled by exp(m_old − m_new) when the max grows.
//
// v1: one work item per (n, h, query) row; the accumulator is the output row itself (owned by the
//     work item), so there is no shared memory and no barrier and any head dim works (XL: 72).
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class Attention
{
    public static void Reference(float[] qkv, float[] o, int n, int t, int heads, int hd, float scale)
    {
        int d = heads * hd;
        var s = new double[t];
        for (int b = 0; b < n; b++)
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < t; i++)
                {
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < t; j++)
                    {
                        double dot = 0;
                        for (int e = 0; e < hd; e++)
                            dot += (double)qkv[(b * t + i) * 3 * d + h * hd + e] * qkv[(b * t + j) * 3 * d + d + h * hd + e];
                        s[j] = dot * scale;
                        max = Math.Max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < t; j++) { s[j] = Math.Exp(s[j] - max); sum += s[j]; }
                    for (int e = 0; e < hd; e++)
                    {
                        double acc = 0;
                        for (int j = 0; j < t; j++) acc += s[j] * qkv[(b * t + j) * 3 * d + 2 * d + h * hd + e];
                        o[(b * t + i) * d + h * hd + e] = (float)(acc / sum);
                    }
                }
    }

    static void Kernel(Index1D index, ArrayView<float> qkv, ArrayView<float> o, int n, int t, int heads, int hd, float scale, int width)
    {
        int d = heads * hd;
        long rows = (long)n * heads * t;
        for (long r = index; r < rows; r += width)
        {
            int i = (int)(r % t);
            int h = (int)(r / t % heads);
            int b = (int)(r / t / heads);
            long q = ((long)b * t + i) * 3 * d + h * hd;
            long outRow = ((long)b * t + i) * d + h * hd;
            for (int e = 0; e < hd; e++) o[outRow + e] = 0f;
            float m = float.NegativeInfinity, l = 0f;
            for (int j = 0; j < t; j++)
            {
                long kv = ((long)b * t + j) * 3 * d + h * hd;
                float dot = 0;
                for (int e = 0; e < hd; e++) dot += qkv[q + e] * qkv[kv + d + e];
                float s = dot * scale;
                if (s > m)
                {
                    float corr = MathF.Exp(m - s); // 0 on the first key (m = −∞)
                    l *= corr;
                    for (int e = 0; e < hd; e++) o[outRow + e] *= corr;
                    m = s;
                }
                float p = MathF.Exp(s - m);
                l += p;
                for (int e = 0; e < hd; e++) o[outRow + e] += p * qkv[kv + 2 * d + e];
            }
            float inv = 1f / l;
            for (int e = 0; e < hd; e++) o[outRow + e] *= inv;
        }
    }

    /// <summary>o (n, t, heads·hd) = attention(qkv (n, t, 3·heads·hd)).</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> qkv, ArrayView<float> o, int n, int t, int heads, int hd, float scale)
    {
        Check.Size("attention qkv", qkv.Length, 3L * n * t * heads * hd);
        Check.Size("attention out", o.Length, (long)n * t * heads * hd);
        int width = dev.LaunchWidth((long)n * heads * t);
        dev.Kernels.Get("attention_v1", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                int, int, int, int, float, int>(Kernel))
            (width, qkv, o, n, t, heads, hd, scale, width);
    }

    public static long Flops(long n, long t, long heads, long hd) => 4 * n * heads * t * t * hd;
}
