// One STDiT block of Open-Sora 1.0 (opensora/models/stdit/stdit.py, STDiTBlock; docs/opensora.md), on frame-major
// tokens (N, T·S, D):
//
//   (sh1, sc1, g1, sh2, sc2, g2) = scale_shift_table (6, D) + t0 (N, 6, D)       adaLN-single, t0 shared by all blocks
//   x = x + g1 · SpatialAttn(LN(x)·(1 + sc1) + sh1)        sequences (N·T) × S: the ordinary Attention kernel
//   x = x + g1 · TemporalAttn(x [+ tpe in block 0])        sequences (N·S) × T, read in place (TemporalAttention);
//                                                          the input is NOT normalised or modulated, and the gate is
//                                                          the spatial one (1.0 has no temporal modulation)
//   x = x + CrossAttn(q = x, k/v = caption features, key-padding mask)            no norm, no gate (PixArt-α's kernel)
//   x = x + g2 · MLP(LN(x)·(1 + sc2) + sh2),  MLP = fc1 → GELU(tanh) → fc2
//
// Everything but the temporal branch is PixArt-α's block (same kernels, same GEMM epilogues). Out-of-place (reads
// `input`, writes `output`) so a cached feature is handed to the next block where it lies; caption keys/values are
// projected once per caption set (STDiT.SetCaptions).
using BlockDance.Kernels;

namespace BlockDance.Transformer;

public sealed class STDiTBlock(int index, STDiTConfig cfg, Tensor table, Linear qkv, Linear proj, Linear tQkv, Linear tProj,
    Linear crossQ, Linear crossKv, Linear crossProj, Linear fc1, Linear fc2) : IDisposable
{
    public int Index { get; } = index;
    public Tensor ScaleShiftTable { get; } = table;   // blocks.i.scale_shift_table      (6, D)
    public Linear AttnQkv { get; } = qkv;             // blocks.i.attn.qkv               [3D, D]
    public Linear AttnProj { get; } = proj;           // blocks.i.attn.proj              [D, D]
    public Linear TempQkv { get; } = tQkv;            // blocks.i.attn_temp.qkv          [3D, D]
    public Linear TempProj { get; } = tProj;          // blocks.i.attn_temp.proj         [D, D]
    public Linear CrossQ { get; } = crossQ;           // blocks.i.cross_attn.q_linear    [D, D]
    public Linear CrossKv { get; } = crossKv;         // blocks.i.cross_attn.kv_linear   [2D, D]
    public Linear CrossProj { get; } = crossProj;     // blocks.i.cross_attn.proj        [D, D]
    public Linear MlpFc1 { get; } = fc1;              // blocks.i.mlp.fc1                [4D, D]
    public Linear MlpFc2 { get; } = fc2;              // blocks.i.mlp.fc2                [D, 4D]
    /// <summary>(C, L, 2D) [k | v] of the current captions (set by STDiT.SetCaptions).</summary>
    public Tensor? KvCaptions { get; set; }
    Linear[] Linears => [AttnQkv, AttnProj, TempQkv, TempProj, CrossQ, CrossKv, CrossProj, MlpFc1, MlpFc2];

    public static STDiTBlock Load(ComputeDevice dev, IWeightSource w, STDiTConfig cfg, int i)
    {
        int d = cfg.Hidden;
        string k = $"blocks.{i}.";
        Linear Lin(string name, int o, int inF) => Linear.Load(dev, w, k + name, o, inF);
        return new STDiTBlock(i, cfg, Tensor.FromHost(dev, k + "scale_shift_table", w.Read(k + "scale_shift_table", 6, d), 6 * d),
            Lin("attn.qkv", 3 * d, d), Lin("attn.proj", d, d), Lin("attn_temp.qkv", 3 * d, d), Lin("attn_temp.proj", d, d),
            Lin("cross_attn.q_linear", d, d), Lin("cross_attn.kv_linear", 2 * d, d), Lin("cross_attn.proj", d, d),
            Lin("mlp.fc1", cfg.MlpHidden, d), Lin("mlp.fc2", d, cfg.MlpHidden));
    }

    /// <summary>output (n, T·S, D) = block(input); t0 (n, 6D) the adaLN-single rows, captionRows (n) the caption of each
    /// row, keep (C, L) the caption mask, tpe (T, D) the temporal table (block 0 only, else null). With outputs (FORA, PAB,
    /// ToCa) each branch ("attn" spatial, "temporal", "cross", "mlp"; each output taken after its projection) follows
    /// outputs.Use: Store — stored then added by GatedResidual (the fused epilogue's arithmetic); Reuse — the stored output
    /// is added with the current gate (the temporal branch uses g1 too); Tokens (cross, MLP) — a token subset recomputes
    /// its part of the stored output, which is then added.</summary>
    public void Forward(Tensor input, Tensor output, STDiTWorkspace sw, int n, Tensor t0, ILGPU.ArrayView<int> captionRows,
        Tensor keep, int captionTokens, Tensor? tpe, BlockOutputs? outputs = null)
    {
        var ws = sw.Base;
        var dev = ws.Device;
        int d = cfg.Hidden, frames = cfg.Frames, s = cfg.SpatialTokens, t = cfg.Tokens, rows = n * t, modStride = 6 * d;
        float scale = 1f / MathF.Sqrt(cfg.HeadDim);
        var kv = KvCaptions ?? throw new InvalidOperationException("STDiT block run before SetCaptions");
        var g1 = new GateSpec(ws.Mod.View, t, modStride, 2 * d);
        Tensor? Slot(string part) => outputs?.Slot(Index, part);
        Tensor? Stored(string part) => outputs?.StoreSlot(Index, part);
        BranchUse? Use(string part) => outputs?.Use(Index, part);
        void NoTokens(string part)
        {
            if (Use(part) == BranchUse.Tokens)
                throw new InvalidOperationException($"block {Index}: {part} attention cannot recompute a token subset (every token attends to its sequence)");
        }

        // (sh1, sc1, g1, sh2, sc2, g2) = table + t0                                              (N, 6D)
        StridedAdd.Run(dev, new(ScaleShiftTable.View, 0, 0), new(t0.View, modStride, 0), new(ws.Mod.View, modStride, 0), n, modStride);

        // spatial: x = x + g1 · proj(Attn_S(qkv(LN(x)·(1 + sc1) + sh1)))      sequences (N·T) of S tokens
        NoTokens("attn");
        if (Use("attn") == BranchUse.Reuse)
            GatedResidual.Run(dev, input.View, Slot("attn")!.View, ws.Mod.View, output.View, n, t, d, modStride, 2 * d);
        else
        {
            LayerNormModulate.Run(dev, input.View, ws.Mod.View, ws.Norm.View, rows, d, t, modStride, 0, d);     // (N, T·S, D)
            AttnQkv.Forward(ws.Norm, ws.Qkv, rows);                                                           // (N, T·S, 3D)
            Attention.Run(dev, ws.Qkv.View, ws.Attn.View, n * frames, s, cfg.Heads, cfg.HeadDim, scale, dev.Precision);
            Branch(AttnProj, ws.Attn, input, output, n, g1, Stored("attn"));
        }

        // temporal: x = x + g1 · proj(Attn_T(qkv(x [+ tpe])))                  sequences (N·S) of T tokens, strided
        NoTokens("temporal");
        if (Use("temporal") == BranchUse.Reuse)
            GatedResidual.Run(dev, output.View, Slot("temporal")!.View, ws.Mod.View, output.View, n, t, d, modStride, 2 * d);
        else
        {
            var tin = output;
            if (tpe != null)
            {
                FramePositionAdd.Run(dev, output.View, tpe.View, ws.Norm.View, n, frames, s, d);               // (N, T, S, D)
                tin = ws.Norm;
            }
            TempQkv.Forward(tin, ws.Qkv, rows);                                                               // (N, T, S, 3D)
            TemporalAttention.Run(dev, ws.Qkv.View, ws.Attn.View, n, frames, s, cfg.Heads, cfg.HeadDim, scale);
            Branch(TempProj, ws.Attn, output, output, n, g1, Stored("temporal"));
        }

        // x = x + CrossAttn(x, c, mask): the residual add through the gated epilogue with a gate of ones
        switch (Use("cross"))
        {
            case BranchUse.Reuse:
                GatedResidual.Run(dev, output.View, Slot("cross")!.View, sw.Ones.View, output.View, n, t, d, 0, 0);
                break;
            case BranchUse.Tokens:
                BranchTokens.Cross(output, Slot("cross")!, outputs!.TokensOf(Index, "cross"), ws, n, t, d, cfg.Heads, cfg.HeadDim,
                    CrossQ, CrossProj, kv, captionRows, keep, captionTokens, sw.Ones);
                break;
            default:
                CrossQ.Forward(output, ws.Norm, rows);                                                        // (N, T·S, D)
                CrossAttention.Run(dev, ws.Norm.View, kv.View, keep.View, captionRows, ws.Attn.View, n, t, captionTokens, cfg.Heads, cfg.HeadDim, scale);
                Branch(CrossProj, ws.Attn, output, output, n, new GateSpec(sw.Ones.View, rows, 0, 0), Stored("cross"));
                break;
        }

        // x = x + g2 · fc2(GELU(fc1(LN(x)·(1 + sc2) + sh2)))
        switch (Use("mlp"))
        {
            case BranchUse.Reuse:
                GatedResidual.Run(dev, output.View, Slot("mlp")!.View, ws.Mod.View, output.View, n, t, d, modStride, 5 * d);
                break;
            case BranchUse.Tokens:
                BranchTokens.Mlp(output, Slot("mlp")!, outputs!.TokensOf(Index, "mlp"), ws, n, t, d, MlpFc1, MlpFc2, 3 * d, 4 * d, 5 * d);
                break;
            default:
                LayerNormModulate.Run(dev, output.View, ws.Mod.View, ws.Norm.View, rows, d, t, modStride, 3 * d, 4 * d);
                MlpFc1.Forward(ws.Norm, ws.Hidden, rows, Epilogue.Gelu);                                      // (N, T·S, 4D)
                Branch(MlpFc2, ws.Hidden, output, output, n, new GateSpec(ws.Mod.View, t, modStride, 5 * d), Stored("mlp"));
                break;
        }
    }

    /// <summary>output = residual + gate · proj(x): fused into the GEMM's epilogue, or (stored given) proj(x) written to
    /// stored first and added by GatedResidual (the same arithmetic).</summary>
    void Branch(Linear proj, Tensor x, Tensor residual, Tensor output, int n, GateSpec gate, Tensor? stored)
    {
        int rows = n * cfg.Tokens;
        if (stored is null)
        {
            proj.Forward(x, output, rows, Epilogue.GatedResidual, residual, gate);
            return;
        }
        proj.Forward(x, stored, rows);                                                                        // (N, T·S, D)
        GatedResidual.Run(output.Device, residual.View, stored.View, gate.Gate, output.View, n, cfg.Tokens, cfg.Hidden, gate.GateStride, gate.GateOffset);
    }

    /// <summary>sw.Base.Norm (n, T·S, D) = LN(input)·(1 + sc1) + sh1: the block's spatial-attention input, without running the
    /// block (TeaCache's signal). Overwrites the workspace's Mod and Norm.</summary>
    public void ModulatedInput(Tensor input, STDiTWorkspace sw, int n, Tensor t0)
    {
        var ws = sw.Base;
        int d = cfg.Hidden, t = cfg.Tokens, modStride = 6 * d;
        StridedAdd.Run(ws.Device, new(ScaleShiftTable.View, 0, 0), new(t0.View, modStride, 0), new(ws.Mod.View, modStride, 0), n, modStride);
        LayerNormModulate.Run(ws.Device, input.View, ws.Mod.View, ws.Norm.View, n * t, d, t, modStride, 0, d);
    }

    /// <summary>FLOPs of one residual branch ("attn", "temporal", "cross", "mlp") on n rows with captions of l tokens.</summary>
    public long BranchFlops(string part, int n, int l)
    {
        long rows = (long)n * cfg.Tokens;
        return part switch
        {
            "attn" => AttnQkv.Flops(rows) + Attention.Flops((long)n * cfg.Frames, cfg.SpatialTokens, cfg.Heads, cfg.HeadDim) + AttnProj.Flops(rows),
            "temporal" => TempQkv.Flops(rows) + TemporalAttention.Flops(n, cfg.Frames, cfg.SpatialTokens, cfg.Heads, cfg.HeadDim) + TempProj.Flops(rows),
            "cross" => CrossQ.Flops(rows) + CrossAttention.Flops(n, cfg.Tokens, l, cfg.Heads, cfg.HeadDim) + CrossProj.Flops(rows),
            "mlp" => MlpFc1.Flops(rows) + MlpFc2.Flops(rows),
            _ => 0,
        };
    }

    /// <summary>FLOPs of the block on n rows with captions of l tokens (the caption k/v projection is per caption set).</summary>
    public long Flops(int n, int l)
    {
        long rows = (long)n * cfg.Tokens;
        return AttnQkv.Flops(rows) + Attention.Flops((long)n * cfg.Frames, cfg.SpatialTokens, cfg.Heads, cfg.HeadDim) + AttnProj.Flops(rows)
               + TempQkv.Flops(rows) + TemporalAttention.Flops(n, cfg.Frames, cfg.SpatialTokens, cfg.Heads, cfg.HeadDim) + TempProj.Flops(rows)
               + CrossQ.Flops(rows) + CrossAttention.Flops(n, cfg.Tokens, l, cfg.Heads, cfg.HeadDim) + CrossProj.Flops(rows)
               + MlpFc1.Flops(rows) + MlpFc2.Flops(rows);
    }

    public long WeightBytes => ScaleShiftTable.Bytes + Linears.Sum(l => l.Weight.Bytes + l.Bias.Bytes);

    public void Dispose()
    {
        ScaleShiftTable.Dispose(); KvCaptions?.Dispose();
        foreach (var l in Linears) l.Dispose();
    }
}
