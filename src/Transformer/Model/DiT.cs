// The Diffusion Transformer (DiT, Peebles & Xie 2023), forward pass as in the reference models.py:
//
//   x = x_embedder(x) + pos_embed                       (N, T, D)   patchify + position
//   c = t_embedder(t) + y_embedder(y)                   (N, D)      condition
//   for block in blocks: x = block(x, c)                (N, T, D)
//   x = final_layer(x, c)                               (N, T, p²·C_out)
//   x = unpatchify(x)                                   (N, C_out, H, W)
//
// A BlockPlan lets a cache policy run only part of the stack: start at block `Start` from a stored
// feature (a reuse step), and/or have block `StoreAfter` write its output into the cache buffer
// (a cache step). Both are zero-copy: the buffers are handed to the blocks directly.
using BlockDance.Kernels;
using ILGPU.Runtime;

namespace BlockDance.Transformer;

/// <summary>Which blocks a forward runs and where the cache hooks in.</summary>
/// <param name="Start">First block to run; 0 = full forward from the patch embedding.</param>
/// <param name="StartFeature">Input of block Start when Start &gt; 0: the stored output of block Start−1.</param>
/// <param name="StoreAfter">Block whose output goes into StoreInto (−1: none).</param>
/// <param name="StoreInto">The cache buffer, (N, T, D).</param>
/// <param name="RefreshSamples">Per-sample decisions (BlockDance-Ada): with Start &gt; 0, these samples of the
/// model batch first run blocks 0..Start−1 as a compact sub-batch and their rows of StartFeature are
/// overwritten with the fresh output (their cache step); the other samples reuse their stored rows.</param>
public readonly record struct BlockPlan(int Start = 0, Tensor? StartFeature = null, int StoreAfter = -1, Tensor? StoreInto = null,
    int[]? RefreshSamples = null)
{
    public static BlockPlan Full => new();
}

public sealed class DiT : IDisposable
{
    public DiTConfig Config { get; }
    public ComputeDevice Device { get; }
    readonly Tensor xEmbedW, xEmbedB, posEmbed, labelTable;
    readonly Linear tMlp0, tMlp2, finalAdaLN, finalLinear;
    public IReadOnlyList<DiTBlock> Blocks { get; }
    Workspace? ws;
    int[] uploadedLabels = [];

    /// <summary>Called after each block with (block index, its output); used by the STSS analysis.</summary>
    public Action<int, Tensor>? OnBlockOutput { get; set; }

    /// <summary>Block evaluations since the last reset, counted per sample (a block run on a batch of n
    /// adds n), so per-sample cache decisions are accounted exactly.</summary>
    public long SampleBlocksComputed { get; private set; }

    public DiT(ComputeDevice dev, IWeightSource src, DiTConfig cfg)
    {
        cfg.Validate();
        Config = cfg;
        Device = dev;
        int d = cfg.Hidden, p = cfg.Patch;
        xEmbedW = Tensor.FromHost(dev, "x_embedder.proj.weight", src.Read("x_embedder.proj.weight", d, cfg.InChannels, p, p), d, cfg.InChannels * p * p);
        xEmbedB = Tensor.FromHost(dev, "x_embedder.proj.bias", src.Read("x_embedder.proj.bias", d), d);
        var pos = src.Has("pos_embed") ? src.Read("pos_embed", 1, cfg.Tokens, d) : PositionEmbedding.SinCos2D(d, cfg.GridSize);
        posEmbed = Tensor.FromHost(dev, "pos_embed", pos, cfg.Tokens, d);
        tMlp0 = Linear.Load(dev, src, "t_embedder.mlp.0", d, TimestepEmbedding.Dim);
        tMlp2 = Linear.Load(dev, src, "t_embedder.mlp.2", d, d);
        labelTable = Tensor.FromHost(dev, "y_embedder.embedding_table.weight",
            src.Read("y_embedder.embedding_table.weight", cfg.NumClasses + 1, d), cfg.NumClasses + 1, d);
        Blocks = Enumerable.Range(0, cfg.Depth).Select(i => DiTBlock.Load(dev, src, cfg, i)).ToArray();
        finalAdaLN = Linear.Load(dev, src, "final_layer.adaLN_modulation.1", 2 * d, d);
        finalLinear = Linear.Load(dev, src, "final_layer.linear", p * p * cfg.OutChannels, d);
    }

    /// <summary>Buffers for batch n (allocated once; reallocated only when the batch size changes, and logged).</summary>
    public Workspace Prepare(int n)
    {
        if (ws != null && ws.Batch == n) return ws;
        if (ws != null) Log.Info($"workspace reallocated for batch {n} (was {ws.Batch})");
        ws?.Dispose();
        ws = new Workspace(Device, Config, n);
        uploadedLabels = [];
        return ws;
    }

    public Workspace? CurrentWorkspace => ws;
    public long WeightBytes => Blocks.Sum(b => new[] { b.AttnQkv, b.AttnProj, b.MlpFc1, b.MlpFc2, b.AdaLnModulation }.Sum(l => l.Weight.Bytes + l.Bias.Bytes))
        + xEmbedW.Bytes + xEmbedB.Bytes + posEmbed.Bytes + labelTable.Bytes
        + new[] { tMlp0, tMlp2, finalAdaLN, finalLinear }.Sum(l => l.Weight.Bytes + l.Bias.Bytes);

    /// <summary>Checks labels before they index the embedding table (NumClasses = the null label is allowed).</summary>
    public void ValidateLabels(IReadOnlyList<int> y)
    {
        foreach (var label in y)
            if (label < 0 || label > Config.NumClasses)
                throw new ModelException($"class {label} is out of range: expected 0..{Config.NumClasses - 1} (or {Config.NumClasses} = null label)");
    }

    /// <summary>
    /// output (N, C_out, H, W) = DiT(x (N, C_in, H, W), t (N) original timesteps, y (N) labels), running the plan's block range.
    /// Returns the condition c of this step in ws.C (the Ada policy reads it).
    /// </summary>
    public void Forward(Tensor x, float[] t, int[] y, Tensor output, BlockPlan plan = default)
    {
        var cfg = Config;
        int n = t.Length, d = cfg.Hidden, tokens = cfg.Tokens;
        if (y.Length != n) throw new ArgumentException($"{y.Length} labels for {n} timesteps");
        Check.Size("dit output", output.Length, (long)n * cfg.OutChannels * cfg.InputSize * cfg.InputSize);
        ValidateLabels(y);
        var w = Prepare(n);

        // c = t_embedder(t) + y_embedder(y)                                               (N, D)
        w.Timesteps.View.SubView(0, n).CopyFromCPU(t);                                           // n floats per step
        if (!y.AsSpan().SequenceEqual(uploadedLabels))                                            // labels: once per run
        {
            w.Labels.View.SubView(0, n).CopyFromCPU(y);
            uploadedLabels = (int[])y.Clone();
        }
        TimestepEmbedding.Run(Device, w.Timesteps.View, w.Freqs.View, w.TFreq.View, n);          // (N, 256)
        tMlp0.Forward(w.TFreq, w.THidden, n, Epilogue.Silu);                                      // (N, D)
        tMlp2.Forward(w.THidden, w.TEmb, n);                                                      // (N, D)
        LabelEmbed.Run(Device, w.TEmb.View, labelTable.View, w.Labels.View, w.C.View, n, d);      // (N, D)
        Activations.SiluRun(Device, w.C.View, w.SiluC.View);                                      // (N, D)

        // x = x_embedder(x) + pos_embed, unless the plan starts from a stored feature       (N, T, D)
        Tensor cur = w.X0;
        bool refresh = plan.RefreshSamples is { Length: > 0 } && plan.Start > 0;
        if (plan.Start == 0 || refresh)
        {
            Check.Size("dit input", x.Length, (long)n * cfg.InChannels * cfg.InputSize * cfg.InputSize);
            PatchEmbed.Run(Device, x.View, xEmbedW.View, xEmbedB.View, posEmbed.View, w.X0.View,
                n, cfg.InChannels, cfg.InputSize, cfg.InputSize, cfg.Patch, d);
            cur = w.X0;
        }
        if (plan.Start > 0)
        {
            if (plan.StartFeature is null || plan.Start > cfg.Depth)
                throw new ArgumentException($"block plan starts at block {plan.Start} without a stored feature");
            CheckFeature(plan.StartFeature, n, "stored feature");
            cur = plan.StartFeature;
        }
        if (plan.StoreInto != null) CheckFeature(plan.StoreInto, n, "cache buffer");
        if (refresh) RefreshRows(plan, n);

        for (int i = plan.Start; i < cfg.Depth; i++)
        {
            var next = i == plan.StoreAfter && plan.StoreInto != null ? plan.StoreInto
                     : ReferenceEquals(cur, w.X0) ? w.X1 : w.X0;
            Blocks[i].Forward(cur, next, w, n, w.SiluC);                                          // (N, T, D)
            SampleBlocksComputed += n;
            OnBlockOutput?.Invoke(i, next);
            cur = next;
        }

        // final_layer: (shift, scale) = adaLN(SiLU(c)); linear(modulate(LN(x))) then unpatchify
        finalAdaLN.Forward(w.SiluC, w.Mod, n);                                                    // (N, 2D)
        LayerNormModulate.Run(Device, cur.View, w.Mod.View, w.Norm.View, n * tokens, d, tokens, 2 * d, 0, d);
        finalLinear.Forward(w.Norm, w.FinalTokens, n * tokens);                                   // (N, T, p²·C_out)
        Unpatchify.Run(Device, w.FinalTokens.View, output.View, n, cfg.OutChannels, cfg.InputSize, cfg.InputSize, cfg.Patch);
    }

    /// <summary>
    /// Per-sample cache step inside a reuse step: the samples in plan.RefreshSamples run blocks
    /// 0..Start−1 as a compact sub-batch (gathered from the patch embedding in X0, conditioned on their
    /// own rows of SiLU(c)), and the result is scattered into their rows of the stored feature.
    /// Cost is proportional to the number of refreshed samples, not the batch.
    /// </summary>
    void RefreshRows(BlockPlan plan, int n)
    {
        var w = ws!;
        var rows = plan.RefreshSamples!;
        int m = rows.Length, d = Config.Hidden, rowLen = Config.Tokens * d;
        foreach (var r in rows)
            if (r < 0 || r >= n) throw new ArgumentException($"refresh sample {r} is outside the batch of {n}");
        w.Rows.View.SubView(0, m).CopyFromCPU(rows);
        GatherRows.Gather(Device, w.X0.View, w.Rows.View, w.X1.View, m, rowLen);                 // (m, T, D)
        GatherRows.Gather(Device, w.SiluC.View, w.Rows.View, w.SiluCSub.View, m, d);            // (m, D)
        Tensor cur = w.X1;
        for (int i = 0; i < plan.Start; i++)
        {
            var next = ReferenceEquals(cur, w.X1) ? w.X0 : w.X1;
            Blocks[i].Forward(cur, next, w, m, w.SiluCSub);                                       // (m, T, D)
            SampleBlocksComputed += m;
            cur = next;
        }
        GatherRows.Scatter(Device, cur.View, w.Rows.View, plan.StartFeature!.View, m, rowLen);    // rows of (N, T, D)
    }

    void CheckFeature(Tensor f, int n, string what)
    {
        var expected = new[] { n, Config.Tokens, Config.Hidden };
        if (!f.Shape.SequenceEqual(expected))
            throw new ArgumentException($"{what} has shape {f.ShapeString()}, expected {Tensor.ShapeString(expected)} for batch {n}");
    }

    public void ResetCounters() => SampleBlocksComputed = 0;

    // ------------------------------------------------------------ FLOP accounting (per forward of n samples)
    public long BlockFlops(int n) => Blocks[0].Flops(n);
    public long EmbedFlops(int n) => tMlp0.Flops(n) + tMlp2.Flops(n) + 2L * n * Config.Tokens * Config.Hidden * Config.InChannels * Config.Patch * Config.Patch;
    public long FinalFlops(int n) => finalAdaLN.Flops(n) + finalLinear.Flops((long)n * Config.Tokens);
    public long ForwardFlops(int n) => EmbedFlops(n) + Config.Depth * BlockFlops(n) + FinalFlops(n);

    public void Dispose()
    {
        ws?.Dispose();
        foreach (var b in Blocks) b.Dispose();
        foreach (var t in new[] { xEmbedW, xEmbedB, posEmbed, labelTable }) t.Dispose();
        foreach (var l in new[] { tMlp0, tMlp2, finalAdaLN, finalLinear }) l.Dispose();
    }
}
