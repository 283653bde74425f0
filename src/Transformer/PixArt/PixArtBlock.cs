// One PixArt-α block (Chen et al. 2023, Fig. 4; diffusers BasicTransformerBlock with norm_type "ada_norm_single"):
//
//   (sh1, sc1, g1, sh2, sc2, g2) = scale_shift_table (6, D) + t0 (N, 6, D)     adaLN-single: t0 shared by all blocks
//   x = x + g1 · SelfAttn(LN(x)·(1 + sc1) + sh1)
//   x = x + CrossAttn(q = x, k/v = caption features c, key-padding mask)        no norm, no modulation, no gate
//   x = x + g2 · MLP(LN(x)·(1 + sc2) + sh2),  MLP = fc1 → GELU(tanh) → fc2
//
// Out-of-place like the DiT block (reads `input`, writes `output`), so a stored feature is handed to the next
// block where it lies. The caption keys/values do not depend on the step: they are projected once per caption
// set (SetCaptions) and kept per block (KvCaptions, (C, L, 2D)).
using BlockDance.Kernels;

namespace BlockDance.Transformer;

public sealed class PixArtBlock(int index, PixArtConfig cfg, Tensor table, Linear qkv, Linear proj, Linear crossQ, Linear crossKv,
    Linear crossProj, Linear fc1, Linear fc2) : IDisposable
{
    public int Index { get; } = index;
    public Tensor ScaleShiftTable { get; } = table;   // transformer_blocks.i.scale_shift_table      (6, D)
    public Linear AttnQkv { get; } = qkv;             // attn1.to_q | to_k | to_v                    [3D, D]
    public Linear AttnProj { get; } = proj;           // attn1.to_out.0                              [D, D]
    public Linear CrossQ { get; } = crossQ;           // attn2.to_q                                  [D, D]
    public Linear CrossKv { get; } = crossKv;         // attn2.to_k | to_v                           [2D, D]
    public Linear CrossProj { get; } = crossProj;     // attn2.to_out.0                              [D, D]
    public Linear MlpFc1 { get; } = fc1;              // ff.net.0.proj                               [4D, D]
    public Linear MlpFc2 { get; } = fc2;              // ff.net.2                                    [D, 4D]
    /// <summary>(C, L, 2D) [k | v] of the current captions (set by PixArt.SetCaptions).</summary>
    public Tensor? KvCaptions { get; set; }

    public static PixArtBlock Load(ComputeDevice dev, IWeightSource w, PixArtConfig cfg, int i)
    {
        int d = cfg.Hidden;
        string k = $"transformer_blocks.{i}.";
        Linear Lin(string name, int o, int inF) => Linear.Load(dev, w, k + name, o, inF);
        float[] Rows(string a, string[] parts, string kind, params long[] shape) =>                  // parts stacked along dim 0
            parts.SelectMany(p => w.Read(k + a + "." + p + "." + kind, shape)).ToArray();
        Linear Stacked(string a, string[] parts) => Linear.FromHost(dev, k + a,
            Rows(a, parts, "weight", d, d), Rows(a, parts, "bias", d), parts.Length * d, d);
        return new PixArtBlock(i, cfg,
            Tensor.FromHost(dev, k + "scale_shift_table", w.Read(k + "scale_shift_table", 6, d), 6 * d),
            Stacked("attn1", ["to_q", "to_k", "to_v"]), Lin("attn1.to_out.0", d, d),
            Lin("attn2.to_q", d, d), Stacked("attn2", ["to_k", "to_v"]), Lin("attn2.to_out.0", d, d),
            Lin("ff.net.0.proj", cfg.MlpHidden, d), Lin("ff.net.2", d, cfg.MlpHidden));
    }

    /// <summary>output (n, T, D) = block(input (n, T, D)); t0 (n, 6D) the shared adaLN-single output of these rows,
    /// captionRows (n) the caption each row attends to, keep (C, L) the caption mask. With outputs (FORA, PAB, ToCa) each of the
    /// three branches (self-attention "attn", cross-attention "cross", MLP "mlp", each output taken after its projection)
    /// follows outputs.Use: Store — stored and added by GatedResidual (the fused epilogue's arithmetic); Reuse — the stored
    /// output is added with the current gate (the cross-attention's gate is 1); Tokens (cross, MLP) — a token subset
    /// recomputes its part of the stored output, which is then added.</summary>
    public void Forward(Tensor input, Tensor output, PixArtWorkspace pw, int n, Tensor t0, ILGPU.ArrayView<int> captionRows,
        Tensor keep, int captionTokens, BlockOutputs? outputs = null)
    {
        var ws = pw.Base;
        var dev = ws.Device;
        int d = cfg.Hidden, t = cfg.Tokens, rows = n * t, modStride = 6 * d;
        float scale = 1f / MathF.Sqrt(cfg.HeadDim);
        var kv = KvCaptions ?? throw new InvalidOperationException("PixArt block run before SetCaptions");
        var ones = new GateSpec(pw.Ones.View, rows, 0, 0);

        // (sh1, sc1, g1, sh2, sc2, g2) = table + t0                                              (N, 6D)
        StridedAdd.Run(dev, new(ScaleShiftTable.View, 0, 0), new(t0.View, modStride, 0), new(ws.Mod.View, modStride, 0), n, modStride);

        // x = x + g1 · SelfAttn(LN(x)·(1 + sc1) + sh1)
        switch (outputs?.Use(Index, "attn"))
        {
            case BranchUse.Reuse:
                GatedResidual.Run(dev, input.View, outputs!.Slot(Index, "attn").View, ws.Mod.View, output.View, n, t, d, modStride, 2 * d);
                break;
            case BranchUse.Tokens:
                throw new InvalidOperationException($"block {Index}: self-attention cannot recompute a token subset (every token attends to all)");
            default:
                LayerNormModulate.Run(dev, input.View, ws.Mod.View, ws.Norm.View, rows, d, t, modStride, 0, d);       // (N, T, D)
                AttnQkv.Forward(ws.Norm, ws.Qkv, rows);                                                             // (N, T, 3D)
                Attention.Run(dev, ws.Qkv.View, ws.Attn.View, n, t, cfg.Heads, cfg.HeadDim, scale, dev.Precision); // (N, T, D)
                Branch(AttnProj, ws.Attn, input, output, n, new GateSpec(ws.Mod.View, t, modStride, 2 * d), outputs?.StoreSlot(Index, "attn"));
                break;
        }

        // x = x + CrossAttn(x, c, mask): the residual add through the gated epilogue with a gate of ones
        switch (outputs?.Use(Index, "cross"))
        {
            case BranchUse.Reuse:
                GatedResidual.Run(dev, output.View, outputs!.Slot(Index, "cross").View, pw.Ones.View, output.View, n, t, d, 0, 0);
                break;
            case BranchUse.Tokens:
                BranchTokens.Cross(output, outputs!.Slot(Index, "cross"), outputs.TokensOf(Index, "cross"), ws, n, t, d, cfg.Heads, cfg.HeadDim,
                    CrossQ, CrossProj, kv, captionRows, keep, captionTokens, pw.Ones);
                break;
            default:
                CrossQ.Forward(output, ws.Norm, rows);                                                              // (N, T, D)
                CrossAttention.Run(dev, ws.Norm.View, kv.View, keep.View, captionRows, ws.Attn.View, n, t, captionTokens, cfg.Heads, cfg.HeadDim, scale);
                Branch(CrossProj, ws.Attn, output, output, n, ones, outputs?.StoreSlot(Index, "cross"));
                break;
        }

        // x = x + g2 · fc2(GELU(fc1(LN(x)·(1 + sc2) + sh2)))
        switch (outputs?.Use(Index, "mlp"))
        {
            case BranchUse.Reuse:
                GatedResidual.Run(dev, output.View, outputs!.Slot(Index, "mlp").View, ws.Mod.View, output.View, n, t, d, modStride, 5 * d);
                break;
            case BranchUse.Tokens:
                BranchTokens.Mlp(output, outputs!.Slot(Index, "mlp"), outputs.TokensOf(Index, "mlp"), ws, n, t, d, MlpFc1, MlpFc2, 3 * d, 4 * d, 5 * d);
                break;
            default:
                LayerNormModulate.Run(dev, output.View, ws.Mod.View, ws.Norm.View, rows, d, t, modStride, 3 * d, 4 * d);
                MlpFc1.Forward(ws.Norm, ws.Hidden, rows, Epilogue.Gelu);                                            // (N, T, 4D)
                Branch(MlpFc2, ws.Hidden, output, output, n, new GateSpec(ws.Mod.View, t, modStride, 5 * d), outputs?.StoreSlot(Index, "mlp"));
                break;
        }
    }

    /// <summary>output = residual + gate · proj(x): fused into the GEMM's epilogue, or (stored given) proj(x) written to
    /// stored first and added by GatedResidual (the same arithmetic).</summary>
    void Branch(Linear proj, Tensor x, Tensor residual, Tensor output, int n, GateSpec gate, Tensor? stored)
    {
        int d = cfg.Hidden, t = cfg.Tokens, rows = n * t;
        if (stored is null)
        {
            proj.Forward(x, output, rows, Epilogue.GatedResidual, residual, gate);
            return;
        }
        proj.Forward(x, stored, rows);                                                                          // (N, T, D)
        GatedResidual.Run(output.Device, residual.View, stored.View, gate.Gate, output.View, n, t, d, gate.GateStride, gate.GateOffset);
    }

    /// <summary>pw.Base.Norm (n, T, D) = LN(input)·(1 + sc1) + sh1: the block's self-attention input, without running the
    /// block. Overwrites the workspace's Mod and Norm.</summary>
    public void ModulatedInput(Tensor input, PixArtWorkspace pw, int n, Tensor t0)
    {
        var ws = pw.Base;
        int d = cfg.Hidden, t = cfg.Tokens, modStride = 6 * d;
        StridedAdd.Run(ws.Device, new(ScaleShiftTable.View, 0, 0), new(t0.View, modStride, 0), new(ws.Mod.View, modStride, 0), n, modStride);
        LayerNormModulate.Run(ws.Device, input.View, ws.Mod.View, ws.Norm.View, n * t, d, t, modStride, 0, d);  // (N, T, D)
    }

    /// <summary>FLOPs of one residual branch ("attn", "cross", "mlp") on n rows with captions of l tokens.</summary>
    public long BranchFlops(string part, int n, int l)
    {
        long rows = (long)n * cfg.Tokens;
        return part switch
        {
            "attn" => AttnQkv.Flops(rows) + Attention.Flops(n, cfg.Tokens, cfg.Heads, cfg.HeadDim) + AttnProj.Flops(rows),
            "cross" => CrossQ.Flops(rows) + CrossAttention.Flops(n, cfg.Tokens, l, cfg.Heads, cfg.HeadDim) + CrossProj.Flops(rows),
            "mlp" => MlpFc1.Flops(rows) + MlpFc2.Flops(rows),
            _ => 0,
        };
    }

    /// <summary>FLOPs of the block on n rows with captions of l tokens (the caption k/v projection is per caption set, not counted).</summary>
    public long Flops(int n, int l)
    {
        long rows = (long)n * cfg.Tokens;
        return AttnQkv.Flops(rows) + Attention.Flops(n, cfg.Tokens, cfg.Heads, cfg.HeadDim) + AttnProj.Flops(rows)
               + CrossQ.Flops(rows) + CrossAttention.Flops(n, cfg.Tokens, l, cfg.Heads, cfg.HeadDim) + CrossProj.Flops(rows)
               + MlpFc1.Flops(rows) + MlpFc2.Flops(rows);
    }

    public void Dispose()
    {
        ScaleShiftTable.Dispose(); KvCaptions?.Dispose();
        foreach (var l in new[] { AttnQkv, AttnProj, CrossQ, CrossKv, CrossProj, MlpFc1, MlpFc2 }) l.Dispose();
    }
}
