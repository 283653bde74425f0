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

    /// <summary>output (N, T, D) = block(input (N, T, D)), conditioned on siluC (N, D) = SiLU(c).</summary>
    public void Forward(Tensor input, Tensor output, Workspace ws, int n, Tensor siluC)
    {
        var dev = ws.Device;
        int d = cfg.Hidden, t = cfg.Tokens, rows = n * t, modStride = 6 * d;
        float scale = 1f / MathF.Sqrt(cfg.HeadDim);

        AdaLnModulation.Forward(siluC, ws.Mod, n);                                                   // (N, 6D)

        // x = x + gate_msa · Attn(modulate(LN(x), shift_msa, scale_msa))
        LayerNormModulate.Run(dev, input.View, ws.Mod.View, ws.Norm.View, rows, d, t, modStride, ShiftMsa, ScaleMsa); // (N, T, D)
        AttnQkv.Forward(ws.Norm, ws.Qkv, rows);                                                     // (N, T, 3D)
        Attention.Run(dev, ws.Qkv.View, ws.Attn.View, n, t, cfg.Heads, cfg.HeadDim, scale, dev.Precision); // (N, T, D)
        AttnProj.Forward(ws.Attn, output, rows, Epilogue.GatedResidual, input,
            new GateSpec(ws.Mod.View, t, modStride, GateMsa));                                     // (N, T, D)

        // x = x + gate_mlp · fc2(GELU(fc1(modulate(LN(x), shift_mlp, scale_mlp))))
        LayerNormModulate.Run(dev, output.View, ws.Mod.View, ws.Norm.View, rows, d, t, modStride, ShiftMlp, ScaleMlp);
        MlpFc1.Forward(ws.Norm, ws.Hidden, rows, Epilogue.Gelu);                                    // (N, T, 4D)
        MlpFc2.Forward(ws.Hidden, output, rows, Epilogue.GatedResidual, output,
            new GateSpec(ws.Mod.View, t, modStride, GateMlp));                                     // (N, T, D)
    }

    /// <summary>FORA's refresh: the block as Forward, but the attention output A = proj(attn) + b and the MLP output
    /// M = fc2(…) + b are written to attnOut / mlpOut (N, T, D) and added by GatedResidual (the fused epilogue's arithmetic).</summary>
    public void ForwardStoring(Tensor input, Tensor output, Workspace ws, int n, Tensor siluC, Tensor attnOut, Tensor mlpOut)
    {
        var dev = ws.Device;
        int d = cfg.Hidden, t = cfg.Tokens, rows = n * t, modStride = 6 * d;
        float scale = 1f / MathF.Sqrt(cfg.HeadDim);
        AdaLnModulation.Forward(siluC, ws.Mod, n);                                                   // (N, 6D)
        LayerNormModulate.Run(dev, input.View, ws.Mod.View, ws.Norm.View, rows, d, t, modStride, ShiftMsa, ScaleMsa); // (N, T, D)
        AttnQkv.Forward(ws.Norm, ws.Qkv, rows);                                                     // (N, T, 3D)
        Attention.Run(dev, ws.Qkv.View, ws.Attn.View, n, t, cfg.Heads, cfg.HeadDim, scale);        // (N, T, D)
        AttnProj.Forward(ws.Attn, attnOut, rows);                                                   // A (N, T, D)
        GatedResidual.Run(dev, input.View, attnOut.View, ws.Mod.View, output.View, n, t, d, modStride, GateMsa);
        LayerNormModulate.Run(dev, output.View, ws.Mod.View, ws.Norm.View, rows, d, t, modStride, ShiftMlp, ScaleMlp);
        MlpFc1.Forward(ws.Norm, ws.Hidden, rows, Epilogue.Gelu);                                    // (N, T, 4D)
        MlpFc2.Forward(ws.Hidden, mlpOut, rows);                                                    // M (N, T, D)
        GatedResidual.Run(dev, output.View, mlpOut.View, ws.Mod.View, output.View, n, t, d, modStride, GateMlp);
    }

    /// <summary>FORA's reuse: only the adaLN modulation of the current c runs; output = input + gate_msa·A + gate_mlp·M
    /// with the stored A and M (attention and MLP are skipped).</summary>
    public void ForwardReusing(Tensor input, Tensor output, Workspace ws, int n, Tensor siluC, Tensor attnOut, Tensor mlpOut)
    {
        var dev = ws.Device;
        int d = cfg.Hidden, t = cfg.Tokens, modStride = 6 * d;
        AdaLnModulation.Forward(siluC, ws.Mod, n);                                                   // (N, 6D)
        GatedResidual.Run(dev, input.View, attnOut.View, ws.Mod.View, output.View, n, t, d, modStride, GateMsa);
        GatedResidual.Run(dev, output.View, mlpOut.View, ws.Mod.View, output.View, n, t, d, modStride, GateMlp);
    }

    /// <summary>ws.Norm (N, T, D) = modulate(LN(input), shift_msa, scale_msa): the block's attention input
    /// (TeaCache's change signal), without running the block. Overwrites ws.Mod and ws.Norm.</summary>
    public void ModulatedInput(Tensor input, Workspace ws, int n, Tensor siluC)
    {
        int d = cfg.Hidden, t = cfg.Tokens;
        AdaLnModulation.Forward(siluC, ws.Mod, n);                                                   // (N, 6D)
        LayerNormModulate.Run(ws.Device, input.View, ws.Mod.View, ws.Norm.View, n * t, d, t, 6 * d, ShiftMsa, ScaleMsa); // (N, T, D)
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
