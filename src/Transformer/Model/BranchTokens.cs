// ToCa's token-subset path of the MLP branch, shared by the DiT, PixArt-α and STDiT blocks (their MLPs are the same:
// LN(x)·(1 + scale) + shift → fc1 → GELU(tanh) → fc2, gated):
//
//   xs = gather(x, subset)                      (N, K, D)     the K chosen tokens of each row (GatherRows)
//   Ms = fc2(GELU(fc1(LN(xs)·(1 + sc) + sh)))   (N, K, D)     the row's modulation, as in the full branch
//   stored[subset] = Ms                         (N, T, D)     the other tokens keep their cached MLP output
//   x += gate · stored                          (N, T, D)     every token, with the current gate
//
// The cross-attention branch (PixArt-α, STDiT: q = x, no norm, gate 1) takes the same path: the K tokens' queries attend
// to their row's caption (CrossAttention on (N, K, D)), their projected outputs replace those tokens of the stored output,
// and x += stored.
//
// A token's output is computed from that token alone, so a recomputed token gets the value the full branch would give
// it (within the GEMM's precision for a different row count).
using BlockDance.Kernels;

namespace BlockDance.Transformer;

public static class BranchTokens
{
    /// <param name="x">The residual stream (N, T, D), updated in place.</param>
    /// <param name="stored">The branch's cached output (N, T, D).</param>
    /// <param name="t">Tokens per row of x.</param>
    /// <param name="shift">Offsets of the branch's shift, scale and gate in the (N, 6D) modulation ws.Mod.</param>
    public static void Mlp(Tensor x, Tensor stored, TokenSubset sub, Workspace ws, int n, int t, int d, Linear fc1, Linear fc2,
        int shift, int scale, int gate)
    {
        var dev = ws.Device;
        int k = sub.PerRow, m = n * k, modStride = 6 * d;
        if (k < 1 || k > t) throw new InvalidOperationException($"token subset of {k} per row for rows of {t} tokens");
        GatherRows.Gather(dev, x.View, sub.Rows, ws.Attn.View, m, d);                                // (N, K, D)
        LayerNormModulate.Run(dev, ws.Attn.View, ws.Mod.View, ws.Norm.View, m, d, k, modStride, shift, scale);
        fc1.Forward(ws.Norm, ws.Hidden, m, Epilogue.Gelu);                                          // (N, K, 4D)
        fc2.Forward(ws.Hidden, ws.Attn, m);                                                         // (N, K, D)
        GatherRows.Scatter(dev, ws.Attn.View, sub.Rows, stored.View, m, d);                          // into (N, T, D)
        GatedResidual.Run(dev, x.View, stored.View, ws.Mod.View, x.View, n, t, d, modStride, gate);
    }

    /// <summary>The cross-attention branch on a token subset: kv (C, L, 2D) the caption keys/values, captionRows (N) each
    /// row's caption, keep (C, L) the caption mask; ones a (D) gate of ones.</summary>
    public static void Cross(Tensor x, Tensor stored, TokenSubset sub, Workspace ws, int n, int t, int d, int heads, int headDim,
        Linear q, Linear proj, Tensor kv, ILGPU.ArrayView<int> captionRows, Tensor keep, int captionTokens, Tensor ones)
    {
        var dev = ws.Device;
        int k = sub.PerRow, m = n * k;
        if (k < 1 || k > t) throw new InvalidOperationException($"token subset of {k} per row for rows of {t} tokens");
        GatherRows.Gather(dev, x.View, sub.Rows, ws.Qkv.View, m, d);                                 // (N, K, D)
        q.Forward(ws.Qkv, ws.Norm, m);                                                              // (N, K, D)
        CrossAttention.Run(dev, ws.Norm.View, kv.View, keep.View, captionRows, ws.Attn.View, n, k, captionTokens, heads, headDim,
            1f / MathF.Sqrt(headDim));
        proj.Forward(ws.Attn, ws.Norm, m);                                                          // (N, K, D)
        GatherRows.Scatter(dev, ws.Norm.View, sub.Rows, stored.View, m, d);                          // into (N, T, D)
        GatedResidual.Run(dev, x.View, stored.View, ones.View, x.View, n, t, d, 0, 0);
    }
}
