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

    public static PixArtBlock Load(ComputeDevice dev, PixArtWeights w, PixArtConfig cfg, int i)
    {
        int d = cfg.Hidden;
        string k = $"transformer_blocks.{i}.";
        Linear Lin(string name, int o, int inF) => new(
            Tensor.FromHost(dev, k + name + ".weight", w.Read(k + name + ".weight", o, inF), o, inF),
            Tensor.FromHost(dev, k + name + ".bias", w.Read(k + name + ".bias", o), o));
        Linear Stacked(string a, string[] parts) => new(
            Tensor.FromHost(dev, k + a + ".weight", w.ReadStacked(parts.Select(p => k + a + "." + p + ".weight").ToArray(), d, d), parts.Length * d, d),
            Tensor.FromHost(dev, k + a + ".bias", w.ReadStacked(parts.Select(p => k + a + "." + p + ".bias").ToArray(), d), parts.Length * d));
        return new PixArtBlock(i, cfg,
            Tensor.FromHost(dev, k + "scale_shift_table", w.Read(k + "scale_shift_table", 6, d), 6 * d),
            Stacked("attn1", ["to_q", "to_k", "to_v"]), Lin("attn1.to_out.0", d, d),
            Lin("attn2.to_q", d, d), Stacked("attn2", ["to_k", "to_v"]), Lin("attn2.to_out.0", d, d),
            Lin("ff.net.0.proj", cfg.MlpHidden, d), Lin("ff.net.2", d, cfg.MlpHidden));
    }

    /// <summary>output (n, T, D) = block(input (n, T, D)); t0 (n, 6D) the shared adaLN-single output of these rows,
    /// captionRows (n) the caption each row attends to, keep (C, L) the caption mask. With outputs (FORA) the three branch
    /// outputs (self-attention "attn", cross-attention "cross", MLP "mlp", each after its output projection) are stored
    /// and added by GatedResidual (the fused epilogue's arithmetic); with outputs.Reuse only the modulation runs and the
    /// stored outputs are added with the current gates (the cross-attention's gate is 1).</summary>
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
        if (outputs is { Reuse: true })
        {
            GatedResidual.Run(dev, input.View, outputs.Slot(Index, "attn").View, ws.Mod.View, output.View, n, t, d, modStride, 2 * d);
            GatedResidual.Run(dev, output.View, outputs.Slot(Index, "cross").View, pw.Ones.View, output.View, n, t, d, 0, 0);
            GatedResidual.Run(dev, output.View, outputs.Slot(Index, "mlp").View, ws.Mod.View, output.View, n, t, d, modStride, 5 * d);
            return;
        }

        // x = x + g1 · SelfAttn(LN(x)·(1 + sc1) + sh1)
        LayerNormModulate.Run(dev, input.View, ws.Mod.View, ws.Norm.View, rows, d, t, modStride, 0, d);           // (N, T, D)
        AttnQkv.Forward(ws.Norm, ws.Qkv, rows);                                                                 // (N, T, 3D)
        Attention.Run(dev, ws.Qkv.View, ws.Attn.View, n, t, cfg.Heads, cfg.HeadDim, scale, dev.Precision);     // (N, T, D)
        Branch(AttnProj, ws.Attn, input, output, n, new GateSpec(ws.Mod.View, t, modStride, 2 * d), outputs?.Slot(Index, "attn"));

        // x = x + CrossAttn(x, c, mask): the residual add through the gated epilogue with a gate of ones
        CrossQ.Forward(output, ws.Norm, rows);                                                                  // (N, T, D)
        CrossAttention.Run(dev, ws.Norm.View, kv.View, keep.View, captionRows, ws.Attn.View, n, t, captionTokens, cfg.Heads, cfg.HeadDim, scale);
        Branch(CrossProj, ws.Attn, output, output, n, ones, outputs?.Slot(Index, "cross"));

        // x = x + g2 · fc2(GELU(fc1(LN(x)·(1 + sc2) + sh2)))
        LayerNormModulate.Run(dev, output.View, ws.Mod.View, ws.Norm.View, rows, d, t, modStride, 3 * d, 4 * d);
        MlpFc1.Forward(ws.Norm, ws.Hidden, rows, Epilogue.Gelu);                                                // (N, T, 4D)
        Branch(MlpFc2, ws.Hidden, output, output, n, new GateSpec(ws.Mod.View, t, modStride, 5 * d), outputs?.Slot(Index, "mlp"));
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
