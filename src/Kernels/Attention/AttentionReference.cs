// The plain attention reference every attention kernel is checked against (self-, cross- and relative-bias
// attention, the bf16 tensor-core version, the harness's sampled rows), float64 throughout:
//   s_j = scale · q_i·k_j (+ bias(h, i, j))        over the keys j kept by the mask
//   o_i = Σ_j exp(s_j − max_j s) · v_j / Σ_j exp(s_j − max_j s)          (0 when no key is kept)
// Options: a key mask (masked keys contribute nothing), an additive bias, the query rows to evaluate (the
// others are left as they are), bf16 rounding of q, k, v and of P before P·V (the denominator from the
// unrounded P: what AttentionV3 computes), and a caption map (query batch b reads keys of batch KeyBatch[b]).
// Operands are (batch, rows, heads·hd) slices of flat arrays: element (b, r, h, e) of X is at
// X.Offset + b·X.BatchStride + r·X.RowStride + h·hd + e, so q, k and v may live in one packed qkv buffer.
namespace BlockDance.Kernels;

/// <summary>Where an attention operand lives inside a flat array (see AttentionReference).</summary>
public readonly record struct AttentionOperand(float[] Data, long BatchStride, long RowStride, long Offset = 0)
{
    public float this[long b, long r, long h, int hd, int e] => Data[Offset + b * BatchStride + r * RowStride + h * hd + e];
}

/// <summary>Options of AttentionReference.Run; all off by default.</summary>
public sealed record AttentionOptions
{
    /// <summary>keep[keyBatch·keys + j] == 0 masks key j.</summary>
    public float[]? Keep { get; init; }
    /// <summary>Added to the score of (head, query, key).</summary>
    public Func<int, int, int, double>? Bias { get; init; }
    /// <summary>The batch of keys query batch b attends to (null: b itself).</summary>
    public int[]? KeyBatch { get; init; }
    /// <summary>Evaluate only the (b, h, i) rows for which this is true (null: all).</summary>
    public Func<int, int, int, bool>? Rows { get; init; }
    /// <summary>q, k, v and P rounded to bf16 as the tensor-core version does.</summary>
    public bool RoundBf16 { get; init; }
}

public static class AttentionReference
{
    /// <summary>o (n, queries, heads·hd) = attention of q (n, queries) to k, v (keyBatches, keys).</summary>
    public static void Run(AttentionOperand q, AttentionOperand k, AttentionOperand v, float[] o, int n, int queries, int keys,
        int heads, int hd, double scale, AttentionOptions? options = null)
    {
        var opt = options ?? new AttentionOptions();
        long d = (long)heads * hd;
        Func<float, double> op = opt.RoundBf16 ? x => Bf16.Round(x) : x => x;
        var s = new double[keys];
        var kept = new bool[keys];
        for (int b = 0; b < n; b++)
        {
            int kb = opt.KeyBatch?[b] ?? b;
            for (int h = 0; h < heads; h++)
                for (int i = 0; i < queries; i++)
                {
                    if (opt.Rows != null && !opt.Rows(b, h, i)) continue;
                    double max = double.NegativeInfinity;
                    for (int j = 0; j < keys; j++)
                    {
                        kept[j] = opt.Keep == null || opt.Keep[(long)kb * keys + j] != 0f;
                        if (!kept[j]) continue;
                        double dot = 0;
                        for (int e = 0; e < hd; e++) dot += op(q[b, i, h, hd, e]) * op(k[kb, j, h, hd, e]);
                        s[j] = dot * scale + (opt.Bias?.Invoke(h, i, j) ?? 0);
                        max = Math.Max(max, s[j]);
                    }
                    double sum = 0;
                    for (int j = 0; j < keys; j++)
                        if (kept[j]) { s[j] = Math.Exp(s[j] - max); sum += s[j]; }
                    for (int e = 0; e < hd; e++)
                    {
                        double acc = 0;
                        for (int j = 0; j < keys; j++)
                            if (kept[j]) acc += (opt.RoundBf16 ? Bf16.Round((float)s[j]) : s[j]) * op(v[kb, j, h, hd, e]);
                        o[(b * (long)queries + i) * d + h * hd + e] = sum > 0 ? (float)(acc / sum) : 0f;
                    }
                }
        }
    }

    /// <summary>Self-attention over a packed qkv (n, t, 3·heads·hd) = [q | k | v].</summary>
    public static void SelfAttention(float[] qkv, float[] o, int n, int t, int heads, int hd, double scale, AttentionOptions? options = null)
    {
        long d = (long)heads * hd;
        Run(new(qkv, t * 3 * d, 3 * d), new(qkv, t * 3 * d, 3 * d, d), new(qkv, t * 3 * d, 3 * d, 2 * d), o, n, t, t, heads, hd, scale, options);
    }
}
