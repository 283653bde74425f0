// Multi-head self-attention along the frame axis of a video token tensor, read in place (Open-Sora 1.0's
// attn_temp): tokens are stored frame-major, (B, T, S, ·) with S spatial tokens per frame, and the sequences
// are the B·S columns (b, s), each of T tokens (one per frame):
//   qkv (B, T, S, 3D) = [q | k | v] per token, head h owns dims h·hd … (h+1)·hd−1 inside each D-block
//   out (B, T, S, D)  [b, i, s] = concat_h softmax_j(q_h[b, i, s] · k_h[b, j, s]ᵀ · scale) · v_h[b, j, s]
//
// Why a strided kernel instead of a layout change: the official model rearranges "B (T S) C -> (B S) T C"
// (a full transpose copy) before the temporal attention and back after it, every block. Here the token of
// frame j in column s sits S·3D floats after frame j − 1, so a work item simply strides by S rows: no copy of
// the (B, T, S, 3D) qkv nor of the output, and the spatial and temporal branches share one token layout. T is
// short (16 frames), so the per-query loop over T keys is cheap and needs no tiling; each key row read is one
// contiguous hd-float head slice.
//
// v1 (this file, the only version): one work item per (b, s, h, i) query row, online softmax, the output row as
// the accumulator (no shared memory, no barrier; any head dim).
using BlockDance.Kernels.Harness;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class TemporalAttention
{
    /// <summary>Plain reference (two-pass softmax in float64) of the same contract.</summary>
    public static void Reference(float[] qkv, float[] o, int b, int t, int s, int heads, int hd, float scale)
    {
        int d = heads * hd;
        var p = new double[t];
        for (int n = 0; n < b; n++)
            for (int col = 0; col < s; col++)
                for (int h = 0; h < heads; h++)
                    for (int i = 0; i < t; i++)
                    {
                        long q = (((long)n * t + i) * s + col) * 3 * d + h * hd;
                        double max = double.NegativeInfinity;
                        for (int j = 0; j < t; j++)
                        {
                            long k = (((long)n * t + j) * s + col) * 3 * d + d + h * hd;
                            double dot = 0;
                            for (int e = 0; e < hd; e++) dot += (double)qkv[q + e] * qkv[k + e];
                            p[j] = dot * scale;
                            max = Math.Max(max, p[j]);
                        }
                        double sum = 0;
                        for (int j = 0; j < t; j++) { p[j] = Math.Exp(p[j] - max); sum += p[j]; }
                        long outRow = (((long)n * t + i) * s + col) * d + h * hd;
                        for (int e = 0; e < hd; e++)
                        {
                            double acc = 0;
                            for (int j = 0; j < t; j++) acc += p[j] * qkv[(((long)n * t + j) * s + col) * 3 * d + 2 * d + h * hd + e];
                            o[outRow + e] = (float)(acc / sum);
                        }
                    }
    }

    [GpuKernel("temporal_attention_v1")]
    static void Kernel(Index1D index, ArrayView<float> qkv, ArrayView<float> o, int b, int t, int s, int heads, int hd, float scale, int width)
    {
        int d = heads * hd;
        long rows = (long)b * s * heads * t;
        for (long r = index; r < rows; r += width)
        {
            int i = (int)(r % t);
            int h = (int)(r / t % heads);
            long col = r / t / heads % s;
            long n = r / t / heads / s;
            long frame0 = n * t * s + col;                      // token row of (n, frame 0, col)
            long q = (frame0 + (long)i * s) * 3 * d + h * hd;
            long outRow = (frame0 + (long)i * s) * d + h * hd;
            for (int e = 0; e < hd; e++) o[outRow + e] = 0f;
            float m = float.NegativeInfinity, l = 0f;
            for (int j = 0; j < t; j++)
            {
                long kv = (frame0 + (long)j * s) * 3 * d + h * hd;
                float dot = 0;
                for (int e = 0; e < hd; e++) dot += qkv[q + e] * qkv[kv + d + e];
                float sc = dot * scale;
                if (sc > m)
                {
                    float corr = MathF.Exp(m - sc);              // 0 on the first key (m = −∞)
                    l *= corr;
                    for (int e = 0; e < hd; e++) o[outRow + e] *= corr;
                    m = sc;
                }
                float p = MathF.Exp(sc - m);
                l += p;
                for (int e = 0; e < hd; e++) o[outRow + e] += p * qkv[kv + 2 * d + e];
            }
            float inv = 1f / l;
            for (int e = 0; e < hd; e++) o[outRow + e] *= inv;
        }
    }

    /// <summary>o (b, t, s, D) = attention over the t frames of each (b, s) column of qkv (b, t, s, 3D).</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> qkv, ArrayView<float> o, int b, int t, int s, int heads, int hd, float scale)
    {
        Check.Size("temporal attention qkv", qkv.Length, 3L * b * t * s * heads * hd);
        Check.Size("temporal attention out", o.Length, (long)b * t * s * heads * hd);
        int width = dev.LaunchWidth((long)b * s * heads * t);
        dev.Kernels.Get("temporal_attention_v1", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                int, int, int, int, int, float, int>(Kernel))
            (width, qkv, o, b, t, s, heads, hd, scale, width);
    }

    public static long Flops(long b, long t, long s, long heads, long hd) => 4 * b * s * heads * t * t * hd;
}
