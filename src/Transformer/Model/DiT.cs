// The Diffusion Transformer (DiT, Peebles & Xie 2023), forward pass as in the reference models.py:
//
//   x = x_embedder(x) + pos_embed                       (N, T, D)   patchify + position
//   c = t_embedder(t) + y_embedder(y)                   (N, D)      condition
//   for block in blocks: x = block(x, c)                (N, T, D)
//   x = final_layer(x, c)                               (N, T, p²·C_out)
//   x = unpatchify(x)                                   (N, C_out, H, W)
//
// DiT implements the block-model seam (IBlockModel), so that a cache can run part of the stack (the
// sampling library's PlanRunner): Embed (condition, and the patch tokens when needed), RunBlocks(from, to)
// on any input — e.g. a stored feature — writing the last output where the caller asks, RunRows (a compact
// sub-batch of rows), ModulatedInput (a block's attention input) and Final.
// Blocks are out-of-place, so a stored feature handed to RunBlocks is read where it lies.
using BlockDance.Kernels;
using ILGPU.Runtime;

namespace BlockDance.Transformer;

public sealed class DiT : IBlockModel, IDisposable
{
    public DiTConfig Config { get; }
    public BlockShape Shape => Config.Shape;
    public ComputeDevice Device { get; }
    readonly Tensor xEmbedW, xEmbedB, posEmbed, labelTable;
    readonly Linear tMlp0, tMlp2, finalAdaLN, finalLinear;
    public IReadOnlyList<DiTBlock> Blocks { get; }
    Workspace? ws;
    int[] uploadedLabels = [];

    /// <summary>Called after each block with (block index, its output); used by the STSS analysis.</summary>
    public Action<int, Tensor>? OnBlockOutput { get; set; }

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
        ws = new Workspace(Device, Config.Workspace, n);
        uploadedLabels = [];
        return ws;
    }

    /// <summary>Puts the labels y (N) on the device for the following Embed calls; a no-op when they are the ones
    /// already there. A sampler calls it before its step loop so that no step copies anything to the device.</summary>
    public void UploadLabels(int[] y)
    {
        if (y.AsSpan().SequenceEqual(uploadedLabels)) return;
        ValidateLabels(y);
        Device.Upload(Prepare(y.Length).Labels.View, y);
        uploadedLabels = (int[])y.Clone();
    }

    public Workspace? CurrentWorkspace => ws;
    public long WeightBytes => Blocks.Sum(b => new[] { b.AttnQkv, b.AttnProj, b.MlpFc1, b.MlpFc2, b.AdaLnModulation }.Sum(l => l.Weight.Bytes + l.Bias.Bytes))
        + xEmbedW.Bytes + xEmbedB.Bytes + posEmbed.Bytes + labelTable.Bytes
        + new[] { tMlp0, tMlp2, finalAdaLN, finalLinear }.Sum(l => l.Weight.Bytes + l.Bias.Bytes);

    /// <summary>Checks labels before they index the embedding table (NumClasses = the null label is allowed).</summary>
    void ValidateLabels(IReadOnlyList<int> y)
    {
        foreach (var label in y)
            if (label < 0 || label > Config.NumClasses)
                throw new ModelException($"class {label} is out of range: expected 0..{Config.NumClasses - 1} (or {Config.NumClasses} = null label)");
    }

    /// <summary>output (N, C_out, H, W) = DiT(x (N, C_in, H, W), t (N) original timesteps, y (N) labels): the full forward.</summary>
    public void Forward(Tensor x, float[] t, int[] y, Tensor output)
    {
        var tokens = Embed(x, t, y)!;                        // (N, T, D); condition SiLU(c) in the workspace
        var h = RunBlocks(0, Config.Depth, tokens);          // (N, T, D)
        Final(h, output);                                    // (N, C_out, H, W)
    }

    /// <summary>
    /// c = t_embedder(t) + y_embedder(y) and SiLU(c) into the workspace (N, D); with x, also the tokens
    /// x_embedder(x) + pos_embed (N, T, D), returned (null without x: a step that starts from a stored feature).
    /// </summary>
    public Tensor? Embed(Tensor? x, float[] t, int[] y)
    {
        var cfg = Config;
        int n = t.Length, d = cfg.Hidden;
        if (y.Length != n) throw new ArgumentException($"{y.Length} labels for {n} timesteps");
        ValidateLabels(y);
        var w = Prepare(n);

        // c = t_embedder(t) + y_embedder(y)                                               (N, D)
        UploadLabels(y);                                                                          // once per run
        if (SameForAll(t))                                                                        // a sampling step: one t,
            TimestepEmbedding.RunUniform(Device, t[0], w.Freqs.View, w.TFreq.View, n);           // a kernel argument (N, 256)
        else
        {
            Device.Upload(w.Timesteps.View, t);                                                   // per-row t: n floats
            TimestepEmbedding.Run(Device, w.Timesteps.View, w.Freqs.View, w.TFreq.View, n);      // (N, 256)
        }
        tMlp0.Forward(w.TFreq, w.THidden, n, Epilogue.Silu);                                      // (N, D)
        tMlp2.Forward(w.THidden, w.TEmb, n);                                                      // (N, D)
        LabelEmbed.Run(Device, w.TEmb.View, labelTable.View, w.Labels.View, w.C.View, n, d);      // (N, D)
        Activations.SiluRun(Device, w.C.View, w.SiluC.View);                                      // (N, D)
        if (x is null) return null;

        // x = x_embedder(x) + pos_embed                                                   (N, T, D)
        Check.Size("dit input", x.Length, (long)n * cfg.InChannels * cfg.InputSize * cfg.InputSize);
        PatchEmbed.Run(Device, x.View, xEmbedW.View, xEmbedB.View, posEmbed.View, w.X0.View,
            n, cfg.InChannels, cfg.InputSize, cfg.InputSize, cfg.Patch, d);
        return w.X0;
    }

    static bool SameForAll(float[] t)
    {
        foreach (var v in t)
            if (!v.Equals(t[0])) return false;
        return true;
    }

    /// <summary>
    /// Runs blocks from..to−1 on input (N, T, D), conditioned on the workspace's SiLU(c) of the whole batch. The last
    /// block writes into output when given (e.g. a cache buffer), otherwise into a workspace buffer; returns the tensor
    /// holding the result (input itself when from = to). Intermediate outputs ping-pong between the workspace's X0 and
    /// X1, never overwriting input or output. With outputs, every block stores or reuses its attention/MLP outputs (FORA).
    /// </summary>
    public Tensor RunBlocks(int from, int to, Tensor input, Tensor? output = null, BlockOutputs? outputs = null)
    {
        var w = ws ?? throw new InvalidOperationException("RunBlocks before Embed");
        return RunBlocks(from, to, input, output, w.Batch, w.SiluC, outputs);
    }

    Tensor RunBlocks(int from, int to, Tensor input, Tensor? output, int n, Tensor siluC, BlockOutputs? outputs)
    {
        var w = ws!;
        if (from < 0 || to > Config.Depth || from > to) throw new ArgumentException($"blocks {from}..{to - 1} outside 0..{Config.Depth - 1}");
        CheckFeature(input, n, "block input");
        if (output != null) CheckFeature(output, n, "block output");
        Tensor cur = input;
        for (int i = from; i < to; i++)
        {
            var next = i == to - 1 && output != null ? output
                     : !ReferenceEquals(cur, w.X0) && !ReferenceEquals(output, w.X0) ? w.X0 : w.X1;
            Blocks[i].Forward(cur, next, w, n, siluC, outputs);                                    // (N, T, D)
            OnBlockOutput?.Invoke(i, next);
            cur = next;
        }
        return cur;
    }

    /// <summary>Rows of `rows` run blocks from..to−1 as a compact sub-batch (their input rows and SiLU(c) gathered);
    /// the results replace their rows of output.</summary>
    public void RunRows(int from, int to, Tensor input, int[] rows, Tensor output)
    {
        var w = ws ?? throw new InvalidOperationException("RunRows before Embed");
        int m = rows.Length, n = w.Batch, d = Config.Hidden, rowLen = Config.Tokens * d;
        foreach (var r in rows)
            if (r < 0 || r >= n) throw new InvalidOperationException($"sub-batch row {r} is outside the model batch of {n}");
        CheckFeature(input, n, "sub-batch input");
        CheckFeature(output, n, "sub-batch output");
        var sub = ReferenceEquals(input, w.X1) ? w.X0 : w.X1;
        Device.UploadQueued<int>(w.Rows.View, rows);                                                    // m ints, queued: no host wait
        GatherRows.Gather(Device, input.View, w.Rows.View, sub.View, m, rowLen);                   // (m, T, D)
        GatherRows.Gather(Device, w.SiluC.View, w.Rows.View, w.SiluCSub.View, m, d);              // (m, D)
        var fresh = RunBlocks(from, to, sub, null, m, w.SiluCSub, null);                           // (m, T, D)
        GatherRows.Scatter(Device, fresh.View, w.Rows.View, output.View, m, rowLen);              // rows of (N, T, D)
    }

    /// <summary>Block i's adaLN-modulated attention input for the whole batch, (N, T, D) in the workspace's Norm buffer
    /// (valid until the next block runs): the cheap change signal of TeaCache.</summary>
    public Tensor ModulatedInput(int block, Tensor input)
    {
        var w = ws ?? throw new InvalidOperationException("ModulatedInput before Embed");
        CheckFeature(input, w.Batch, "modulated input");
        Blocks[block].ModulatedInput(input, w, w.Batch, w.SiluC);
        return w.Norm;
    }

    /// <summary>final_layer: (shift, scale) = adaLN(SiLU(c)); output (N, C_out, H, W) = unpatchify(linear(modulate(LN(h)))).</summary>
    public void Final(Tensor h, Tensor output)
    {
        var cfg = Config;
        var w = ws ?? throw new InvalidOperationException("Final before Embed");
        int n = w.Batch, d = cfg.Hidden, tokens = cfg.Tokens;
        Check.Size("dit output", output.Length, (long)n * cfg.OutChannels * cfg.InputSize * cfg.InputSize);
        CheckFeature(h, n, "final layer input");
        finalAdaLN.Forward(w.SiluC, w.Mod, n);                                                    // (N, 2D)
        LayerNormModulate.Run(Device, h.View, w.Mod.View, w.Norm.View, n * tokens, d, tokens, 2 * d, 0, d);
        finalLinear.Forward(w.Norm, w.FinalTokens, n * tokens);                                   // (N, T, p²·C_out)
        Unpatchify.Run(Device, w.FinalTokens.View, output.View, n, cfg.OutChannels, cfg.InputSize, cfg.InputSize, cfg.Patch);
    }

    void CheckFeature(Tensor f, int n, string what)
    {
        var expected = new[] { n, Config.Tokens, Config.Hidden };
        if (!f.Shape.SequenceEqual(expected) && !IsWorkspace(f))
            throw new ArgumentException($"{what} has shape {f.ShapeString()}, expected {Tensor.ShapeString(expected)} for batch {n}");
    }

    /// <summary>Workspace buffers hold the whole batch; a sub-batch uses their first rows.</summary>
    bool IsWorkspace(Tensor f) => ws != null && (ReferenceEquals(f, ws.X0) || ReferenceEquals(f, ws.X1));

    // ------------------------------------------------------------ FLOP accounting (per forward of n samples)
    public long BlockFlops(int n) => Blocks[0].Flops(n);
    public long BranchFlops(string part, int n) => Blocks[0].BranchFlops(part, n);
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
