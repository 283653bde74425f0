// One DiT block with adaLN-Zero conditioning (Peebles & Xie, Fig. 3):
//
//   (shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp) = adaLN_modulation(SiLU(c))
//   x = x + gate_msa · Attn(modulate(LN(x), shift_msa, scale_msa))
//   x = x + gate_mlp · MLP(modulate(LN(x), shift_mlp, scale_mlp))
//
// The block is out-of-place: it reads `input` and writes `output` (the first residual add writes
// output = input + …, the second adds in place). That is what lets a feature cache hand a stored
// block output straight to the next block without copying it and without it being overwritten.
using BlockDance.Kernels;

namespace BlockDance.Transformer;

public sealed class DiTBlock(int index, DiTConfig cfg, Linear qkv, Linear proj, Linear fc1, Linear fc2, Linear adaLN) : IDisposable
{
    public int Index { get; } = index;
    public Linear AttnQkv { get; } = qkv;            // blocks.i.attn.qkv          [3D, D]
    public Linear AttnProj { get; } = proj;          // blocks.i.attn.proj         [D, D]
    public Linear MlpFc1 { get; } = fc1;             // blocks.i.mlp.fc1           [4D, D]
    public Linear MlpFc2 { get; } = fc2;             // blocks.i.mlp.fc2           [D, 4D]
    public Linear AdaLnModulation { get; } = adaLN;  // blocks.i.adaLN_modulation.1 [6D, D]

    // Offsets of the six modulation slices inside the (N, 6D) adaLN output, in checkpoint order.
    int ShiftMsa => 0;
    int ScaleMsa => cfg.Hidden;
    int GateMsa => 2 * cfg.Hidden;
    int ShiftMlp => 3 * cfg.Hidden;
    int ScaleMlp => 4 * cfg.Hidden;
    int GateMlp => 5 * cfg.Hidden;

    public static DiTBlock Load(ComputeDevice dev, IWeightSource src, DiTConfig cfg, int i)
    {
        int d = cfg.Hidden;
        string k = $"blocks.{i}";
        return new DiTBlock(i, cfg,
            Linear.Load(dev, src, $"{k}.attn.qkv", 3 * d, d),
            Linear.Load(dev, src, $"{k}.attn.proj", d, d),
            Linear.Load(dev, src, $"{k}.mlp.fc1", cfg.MlpHidden, d),
            Linear.Load(dev, src, $"{k}.mlp.fc2", d, cfg.MlpHidden),
            Linear.Load(dev, src, $"{k}.adaLN_modulation.1", 6 * d, d));
    }

    /// <summary>output (N, T, D) = block(input (N, T, D)), conditioned on siluC (N, D) = SiLU(c). With outputs (FORA, PAB, ToCa)
    /// each branch follows outputs.Use(i, part): Store — the attention output A = proj(attn) + b or the MLP output
    /// M = fc2(…) + b is written to outputs.Slot(i, "attn" / "mlp") and added by GatedResidual (the fused epilogue's
    /// arithmetic: the same bits); Reuse — the stored output is added with the current gate (only the adaLN modulation of
    /// the current c runs); Tokens (the MLP only) — the subset's tokens recompute M into the slot, then the slot is added.</summary>
    public void Forward(Tensor input, Tensor output, Workspace ws, int n, Tensor siluC, BlockOutputs? outputs = null)
    {
        var dev = ws.Device;
        int d = cfg.Hidden, t = cfg.Tokens, rows = n * t, modStride = 6 * d;
        float scale = 1f / MathF.Sqrt(cfg.HeadDim);

        AdaLnModulation.Forward(siluC, ws.Mod, n);                                                   // (N, 6D)

        // x = x + gate_msa · Attn(modulate(LN(x), shift_msa, scale_msa))
        switch (outputs?.Use(Index, "attn"))
        {
            case BranchUse.Reuse:
                GatedResidual.Run(dev, input.View, outputs!.Slot(Index, "attn").View, ws.Mod.View, output.View, n, t, d, modStride, GateMsa);
                break;
            case BranchUse.Tokens:
                throw new InvalidOperationException($"block {Index}: self-attention cannot recompute a token subset (every token attends to all)");
            default:
                LayerNormModulate.Run(dev, input.View, ws.Mod.View, ws.Norm.View, rows, d, t, modStride, ShiftMsa, ScaleMsa); // (N, T, D)
                AttnQkv.Forward(ws.Norm, ws.Qkv, rows);                                                 // (N, T, 3D)
                Attention.Run(dev, ws.Qkv.View, ws.Attn.View, n, t, cfg.Heads, cfg.HeadDim, scale, dev.Precision); // (N, T, D)
                GatedBranch(AttnProj, ws.Attn, input, output, ws, n, GateMsa, outputs?.StoreSlot(Index, "attn")); // (N, T, D)
                break;
        }

        // x = x + gate_mlp · fc2(GELU(fc1(modulate(LN(x), shift_mlp, scale_mlp))))
        switch (outputs?.Use(Index, "mlp"))
        {
            case BranchUse.Reuse:
                GatedResidual.Run(dev, output.View, outputs!.Slot(Index, "mlp").View, ws.Mod.View, output.View, n, t, d, modStride, GateMlp);
                break;
            case BranchUse.Tokens:
                BranchTokens.Mlp(output, outputs!.Slot(Index, "mlp"), outputs.TokensOf(Index, "mlp"), ws, n, t, d, MlpFc1, MlpFc2, ShiftMlp, ScaleMlp, GateMlp);
                break;
            default:
                LayerNormModulate.Run(dev, output.View, ws.Mod.View, ws.Norm.View, rows, d, t, modStride, ShiftMlp, ScaleMlp);
                MlpFc1.Forward(ws.Norm, ws.Hidden, rows, Epilogue.Gelu);                                // (N, T, 4D)
                GatedBranch(MlpFc2, ws.Hidden, output, output, ws, n, GateMlp, outputs?.StoreSlot(Index, "mlp")); // (N, T, D)
                break;
        }
    }

    /// <summary>output = residual + gate · proj(x): fused into the GEMM's epilogue, or (stored given) proj(x) written to
    /// stored first and added by GatedResidual.</summary>
    void GatedBranch(Linear proj, Tensor x, Tensor residual, Tensor output, Workspace ws, int n, int gate, Tensor? stored)
    {
        int d = cfg.Hidden, t = cfg.Tokens, rows = n * t, modStride = 6 * d;
        if (stored is null)
        {
            proj.Forward(x, output, rows, Epilogue.GatedResidual, residual, new GateSpec(ws.Mod.View, t, modStride, gate));
            return;
        }
        proj.Forward(x, stored, rows);                                                              // (N, T, D)
        GatedResidual.Run(ws.Device, residual.View, stored.View, ws.Mod.View, output.View, n, t, d, modStride, gate);
    }

    /// <summary>ws.Norm (N, T, D) = modulate(LN(input), shift_msa, scale_msa): the block's attention input
    /// (TeaCache's change signal), without running the block. Overwrites ws.Mod and ws.Norm.</summary>
    public void ModulatedInput(Tensor input, Workspace ws, int n, Tensor siluC)
    {
        int d = cfg.Hidden, t = cfg.Tokens;
        AdaLnModulation.Forward(siluC, ws.Mod, n);                                                   // (N, 6D)
        LayerNormModulate.Run(ws.Device, input.View, ws.Mod.View, ws.Norm.View, n * t, d, t, 6 * d, ShiftMsa, ScaleMsa); // (N, T, D)
    }

    /// <summary>FLOPs of one residual branch on n rows ("attn": qkv, attention, proj; "mlp": fc1, fc2).</summary>
    public long BranchFlops(string part, int n)
    {
        long rows = (long)n * cfg.Tokens;
        return part switch
        {
            "attn" => AttnQkv.Flops(rows) + Attention.Flops(n, cfg.Tokens, cfg.Heads, cfg.HeadDim) + AttnProj.Flops(rows),
            "mlp" => MlpFc1.Flops(rows) + MlpFc2.Flops(rows),
            _ => 0,
        };
    }

    public long Flops(int n)
    {
        long rows = (long)n * cfg.Tokens;
        return AdaLnModulation.Flops(n) + AttnQkv.Flops(rows) + Attention.Flops(n, cfg.Tokens, cfg.Heads, cfg.HeadDim)
               + AttnProj.Flops(rows) + MlpFc1.Flops(rows) + MlpFc2.Flops(rows);
    }

    public void Dispose()
    {
        AttnQkv.Dispose(); AttnProj.Dispose(); MlpFc1.Dispose(); MlpFc2.Dispose(); AdaLnModulation.Dispose();
    }
}
