// The v1 attention row that the grid-stride kernels share: Attention (the DiT's self-attention), RelativeBiasAttention
// (T5's, with a relative-position bias and a key mask) and CrossAttention (PixArt-α's and STDiT's, with the caption's key
// mask). One work item owns one (row b, head h, query i) and runs an online softmax over the keys, the output row itself
// as the accumulator:
//   for each kept key j:  s = score(q·k_j · scale, j);  if s > m: rescale o and l by exp(m − s), m = s
//                         p = exp(s − m);  l += p;  o += p · v_j
//   o *= finish(l)
// What differs between the three is the IAttentionKeys struct: where key j's k lies (v follows k by D), whether key j
// is kept, what the score adds, and the final scale (1/l, or 0 for a row without a kept key). Each kernel passes its
// own struct, so each still compiles to its own code with its own arithmetic, in the same order as before.
using ILGPU;

namespace BlockDance.Kernels;

/// <summary>The keys one query row attends to (see AttentionRow).</summary>
interface IAttentionKeys
{
    /// <summary>Index of key j's k vector (head offset included) in the kv view; its v vector is D further.</summary>
    long Key(int j);
    /// <summary>False for a masked key: it contributes nothing.</summary>
    bool Keep(int j);
    /// <summary>The score of key j from q·k_j · scale.</summary>
    float Score(float scaled, int j);
    /// <summary>The factor of the accumulated row: 1/l, where a row with no kept key may define its own.</summary>
    float Finish(float l);
}

static class AttentionRow
{
    /// <summary>Work item r of the n·heads·t rows: row b, head h, query i (queries fastest).</summary>
    public static void Split(long r, int t, int heads, out int b, out int h, out int i)
    {
        i = (int)(r % t);
        h = (int)(r / t % heads);
        b = (int)(r / t / heads);
    }

    /// <summary>o[outRow .. outRow + hd) = softmax over the kept keys of (q[qRow ..] · k_j) · v_j, online.</summary>
    public static void Run<TKeys>(ArrayView<float> q, long qRow, ArrayView<float> kv, ArrayView<float> o, long outRow,
        int keys, int d, int hd, float scale, TKeys k) where TKeys : struct, IAttentionKeys
    {
        for (int e = 0; e < hd; e++) o[outRow + e] = 0f;
        float m = float.NegativeInfinity, l = 0f;
        for (int j = 0; j < keys; j++)
        {
            if (!k.Keep(j)) continue;
            long kj = k.Key(j);
            float dot = 0;
            for (int e = 0; e < hd; e++) dot += q[qRow + e] * kv[kj + e];
            float s = k.Score(dot * scale, j);
            if (s > m)
            {
                float corr = MathF.Exp(m - s); // 0 on the first kept key (m = −∞)
                l *= corr;
                for (int e = 0; e < hd; e++) o[outRow + e] *= corr;
                m = s;
            }
            float p = MathF.Exp(s - m);
            l += p;
            for (int e = 0; e < hd; e++) o[outRow + e] += p * kv[kj + d + e];
        }
        float inv = k.Finish(l);
        for (int e = 0; e < hd; e++) o[outRow + e] *= inv;
    }
}
