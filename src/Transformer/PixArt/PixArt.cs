// The PixArt-α transformer (Chen et al. 2023, "PixArt-α"), forward as in the official PixArt.py / PixArtMS.py
// and diffusers' PixArtTransformer2DModel (docs/pixart.md):
//
//   x  = patchify(x) + pos_table(h, w)                                   (N, T, D)   interpolated sin-cos
//   e  = t_mlp(sinusoid(t)) [+ concat(res_mlp(h), res_mlp(w), ar_mlp(h/w))  for 1024-MS]     (N, D)
//   t0 = Linear(SiLU(e))                                                 (N, 6D)    adaLN-single: once per forward
//   c  = Linear(GELU_tanh(Linear(y)))                                    (C, L, D)  caption projection, once per caption set
//   for block in blocks: x = block(x, t0, c, mask)                       (N, T, D)
//   x  = Linear(LN(x)·(1 + scale) + shift),  (shift, scale) = table (2, D) + e      (N, T, p²·C_out)
//   out = unpatchify(x)                                                  (N, C_out, H, W)
//
// It implements the whole block-model seam (IBlockModel: Embed / RunBlocks with FORA's outputs / RunRows /
// ModulatedInput / Final), so the sampling library's PlanRunner and every cache policy run on it unchanged. The conditioning differs in one place: instead of class labels, each
// model row names a caption row (`y` of Embed) of the caption set given to SetCaptions (embeddings + masks).
using BlockDance.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Transformer;

public sealed class PixArt : ICaptionModel, IDisposable
{
    public PixArtConfig PixArtConfig { get; }
    /// <summary>Classes 1 (PixArtConfig.Shape): the rows are conditioned on captions, not labels (every sample is label 0 to a policy).</summary>
    public BlockShape Shape => PixArtConfig.Shape;
    /// <summary>The block's residual branches (BlockShape.Parts).</summary>
    public static string[] BranchNames => PixArtConfig.BranchNames;
    public ComputeDevice Device { get; }
    readonly Tensor xEmbedW, xEmbedB, posEmbed, finalTable;
    readonly Linear tMlp1, tMlp2, tBlock, capFc1, capFc2, finalLinear;
    readonly Linear? resMlp1, resMlp2, arMlp1, arMlp2;
    public IReadOnlyList<PixArtBlock> Blocks { get; }
    PixArtWorkspace? ws;
    int[] uploadedRows = [];
    Tensor? keep;                 // (C, L) caption mask, 1 = real token
    int captionCount, captionTokens;

    public Action<int, Tensor>? OnBlockOutput { get; set; }
    public int CaptionCount => captionCount;
    public int CaptionTokens => captionTokens;

    /// <summary>The model from weights by diffusers key (PixArtWeights, usually through FiniteWeightCheck); every Linear
    /// is stored for the device's precision (Linear.Load: 16-bit GEMMs under bf16/fp16, as the DiT's).</summary>
    public PixArt(ComputeDevice dev, IWeightSource w, PixArtConfig cfg)
    {
        (w as PixArtWeights)?.CheckDepth(cfg);     // before any upload: a 1-layer config on a 2-block file is an error, not a 1-block model
        PixArtConfig = cfg;
        Device = dev;
        int d = cfg.Hidden, p = cfg.Patch;
        Linear Lin(string key, int o, int i) => Linear.Load(dev, w, key, o, i);
        xEmbedW = Tensor.FromHost(dev, "pos_embed.proj.weight", w.Read("pos_embed.proj.weight", d, cfg.InChannels, p, p), d, cfg.InChannels * p * p);
        xEmbedB = Tensor.FromHost(dev, "pos_embed.proj.bias", w.Read("pos_embed.proj.bias", d), d);
        posEmbed = Tensor.FromHost(dev, "pos_table",
            PixArtPosition.Table(d, cfg.GridSize, cfg.GridSize, cfg.BaseSize, cfg.InterpolationScale), cfg.Tokens, d);
        const string e = "adaln_single.emb.";
        tMlp1 = Lin(e + "timestep_embedder.linear_1", d, TimestepEmbedding.Dim);
        tMlp2 = Lin(e + "timestep_embedder.linear_2", d, d);
        if (cfg.MicroConditions)
        {
            CheckMicro(w);
            int m = cfg.MicroWidth;
            resMlp1 = Lin(e + "resolution_embedder.linear_1", m, TimestepEmbedding.Dim);
            resMlp2 = Lin(e + "resolution_embedder.linear_2", m, m);
            arMlp1 = Lin(e + "aspect_ratio_embedder.linear_1", m, TimestepEmbedding.Dim);
            arMlp2 = Lin(e + "aspect_ratio_embedder.linear_2", m, m);
        }
        tBlock = Lin("adaln_single.linear", 6 * d, d);
        capFc1 = Lin("caption_projection.linear_1", d, cfg.CaptionChannels);
        capFc2 = Lin("caption_projection.linear_2", d, d);
        Blocks = Enumerable.Range(0, cfg.Depth).Select(i => PixArtBlock.Load(dev, w, cfg, i)).ToArray();
        finalTable = Tensor.FromHost(dev, "scale_shift_table", w.Read("scale_shift_table", 2, d), 2 * d);
        finalLinear = Lin("proj_out", p * p * cfg.OutChannels, d);
    }

    /// <summary>Loads a PixArt-α folder; latentSize (default: the config's sample_size) sets the latent side it runs at.</summary>
    static void CheckMicro(IWeightSource w)
    {
        const string e = "adaln_single.emb.";
        if (!w.Has(e + "resolution_embedder.linear_1.weight") || !w.Has(e + "aspect_ratio_embedder.linear_1.weight"))
            throw new ModelException($"{w.Origin}: the config asks for micro-conditions (1024-MS): expected " +
                $"{e}resolution_embedder.* and {e}aspect_ratio_embedder.*, found them missing");
    }

    /// <summary>Checks, before any device work, that the folder's weights file exists and holds what the config needs
    /// beyond the shapes the load checks (the micro-condition embedders).</summary>
    public static void Preflight(string folder, PixArtConfig cfg)
    {
        using var w = new PixArtWeights(folder);
        w.CheckDepth(cfg);
        if (cfg.MicroConditions) CheckMicro(w);
    }

    /// <summary>The same path as the DiT's (ModelLoader.Create): every weight checked for NaN/Inf on the device as it
    /// is uploaded (FiniteWeightCheck: a non-finite weight is a ModelException naming it), layers at the device's precision.</summary>
    public static PixArt Load(ComputeDevice dev, string folder, int? latentSize = null)
    {
        var cfg = PixArtConfig.Read(folder);
        if (latentSize is int ls) cfg = cfg with { LatentSize = ls };
        using var w = new PixArtWeights(folder);
        w.CheckDepth(cfg);   // before any upload: a 1-layer config on a 2-block file is an error, not a 1-block model
        using var checkedW = new FiniteWeightCheck(dev, w);
        var model = new PixArt(dev, checkedW, cfg);
        try { checkedW.ThrowIfNonFinite(); }
        catch { model.Dispose(); throw; }
        Log.Info($"model: {w.Origin} ({cfg})");
        return model;
    }

    public PixArtWorkspace Prepare(int n)
    {
        if (ws != null && ws.Batch == n) return ws;
        if (ws != null) Log.Info($"workspace reallocated for batch {n} (was {ws.Batch})");
        ws?.Dispose();
        ws = new PixArtWorkspace(Device, PixArtConfig, n);
        uploadedRows = [];
        return ws;
    }

    /// <summary>Puts the caption rows (N) of the following Embed calls on the device (a no-op when they are the ones there):
    /// a sampler calls it before its step loop so that no step copies anything to the device.</summary>
    public int CaptionChannels => PixArtConfig.CaptionChannels;

    void ICaptionModel.BindRows(int[] captionRows)
    {
        Prepare(captionRows.Length);
        UploadRows(captionRows);
    }

    public void UploadRows(int[] captionRows)
    {
        if (captionRows.AsSpan().SequenceEqual(uploadedRows)) return;
        foreach (var r in captionRows)
            if (r < 0 || r >= captionCount) throw new ArgumentException($"caption row {r} outside 0..{captionCount - 1}");
        Device.Upload(Prepare(captionRows.Length).Base.Labels.View, captionRows);
        uploadedRows = (int[])captionRows.Clone();
    }

    public long WeightBytes =>
        Blocks.Sum(b => b.ScaleShiftTable.Bytes + new[] { b.AttnQkv, b.AttnProj, b.CrossQ, b.CrossKv, b.CrossProj, b.MlpFc1, b.MlpFc2 }.Sum(l => l.Weight.Bytes + l.Bias.Bytes))
        + xEmbedW.Bytes + xEmbedB.Bytes + posEmbed.Bytes + finalTable.Bytes
        + new[] { tMlp1, tMlp2, tBlock, capFc1, capFc2, finalLinear, resMlp1, resMlp2, arMlp1, arMlp2 }.Sum(l => l is null ? 0 : l.Weight.Bytes + l.Bias.Bytes);

    /// <summary>
    /// Sets the captions the rows attend to: y (count, tokens, caption channels) text features and keep (count, tokens)
    /// with 1 for a real token, 0 for padding. Projects them (caption projection) and, per block, to cross-attention
    /// keys and values — once per caption set, not per step.
    /// </summary>
    public void SetCaptions(float[] y, float[] keepMask, int count, int tokens)
    {
        var cfg = PixArtConfig;
        CaptionProjection.Check(y, keepMask, count, tokens, cfg.CaptionChannels);
        keep?.Dispose();
        foreach (var b in Blocks) { b.KvCaptions?.Dispose(); b.KvCaptions = null; }
        (keep, var kv) = CaptionProjection.Project(Device, capFc1, capFc2, Blocks.Select(b => b.CrossKv).ToArray(), y, keepMask, count, tokens,
            cfg.CaptionChannels, cfg.Hidden);                                                       // (C, L, 2D) per block
        for (int i = 0; i < kv.Length; i++) Blocks[i].KvCaptions = kv[i];
        captionCount = count;
        captionTokens = tokens;
        uploadedRows = [];
    }

    /// <summary>output (N, C_out, H, W) = PixArt(x (N, C_in, H, W), t (N), caption rows (N)).</summary>
    public void Forward(Tensor x, float[] t, int[] captionRows, Tensor output)
    {
        var tokens = Embed(x, t, captionRows)!;
        Final(RunBlocks(0, PixArtConfig.Depth, tokens), output);
    }

    /// <summary>e = timestep (+ micro-condition) embedding, t0 = adaLN-single(e) into the workspace; with x also the
    /// tokens patchify(x) + pos_table (N, T, D), returned (null without x).</summary>
    public Tensor? Embed(Tensor? x, float[] t, int[] y)
    {
        var cfg = PixArtConfig;
        int n = t.Length, d = cfg.Hidden;
        if (y.Length != n) throw new ArgumentException($"{y.Length} caption rows for {n} timesteps");
        if (keep is null) throw new InvalidOperationException("PixArt.Embed before SetCaptions");
        foreach (var r in y)
            if (r < 0 || r >= captionCount) throw new ArgumentException($"caption row {r} outside 0..{captionCount - 1}");
        var pw = Prepare(n);
        var w = pw.Base;
        UploadRows(y);                                                                             // caption rows: once per run

        // e = linear_2(SiLU(linear_1(sinusoid(t))))                                               (N, D)
        if (SameForAll(t))                                                              // a sampling step: one t,
            TimestepEmbedding.RunUniform(Device, t[0], w.Freqs.View, w.TFreq.View, n);              // a kernel argument (N, 256)
        else
        {
            Device.Upload(w.Timesteps.View, t);                                                      // per-row t: n floats
            TimestepEmbedding.Run(Device, w.Timesteps.View, w.Freqs.View, w.TFreq.View, n);           // (N, 256)
        }
        tMlp1.Forward(w.TFreq, w.THidden, n, Epilogue.Silu);                                         // (N, D)
        tMlp2.Forward(w.THidden, w.TEmb, n);                                                         // (N, D)
        if (cfg.MicroConditions)
        {
            // e += [res(h) | res(w) | ar(h / w)], h and w in pixels at the model's latent size (square)
            float px = cfg.LatentSize * PixArtConfig.VaeScale;
            int m = cfg.MicroWidth;
            var parts = new (float Value, Linear L1, Linear L2)[] { (px, resMlp1!, resMlp2!), (px, resMlp1!, resMlp2!), (1f, arMlp1!, arMlp2!) };
            for (int k = 0; k < 3; k++)
            {
                TimestepEmbedding.RunUniform(Device, parts[k].Value, w.Freqs.View, w.TFreq.View, n);   // (N, 256)
                parts[k].L1.Forward(w.TFreq, pw.MicroHidden, n, Epilogue.Silu);                       // (N, D/3)
                parts[k].L2.Forward(pw.MicroHidden, pw.Micro, n);                                     // (N, D/3)
                StridedAdd.Run(Device, new(w.TEmb.View, d, k * m), new(pw.Micro.View, m, 0), new(w.TEmb.View, d, k * m), n, m);
            }
        }
        Activations.SiluRun(Device, w.TEmb.View.SubView(0, (long)n * d), w.SiluC.View.SubView(0, (long)n * d)); // (N, D)
        tBlock.Forward(w.SiluC, pw.T0, n);                                                           // (N, 6D)
        if (x is null) return null;

        Check.Size("pixart input", x.Length, (long)n * cfg.InChannels * cfg.LatentSize * cfg.LatentSize);
        PatchEmbed.Run(Device, x.View, xEmbedW.View, xEmbedB.View, posEmbed.View, w.X0.View,
            n, cfg.InChannels, cfg.LatentSize, cfg.LatentSize, cfg.Patch, d);                         // (N, T, D)
        return w.X0;
    }

    public Tensor RunBlocks(int from, int to, Tensor input, Tensor? output = null, BlockOutputs? outputs = null)
    {
        var pw = ws ?? throw new InvalidOperationException("RunBlocks before Embed");
        return RunBlocks(from, to, input, output, pw.Batch, pw.T0, pw.Base.Labels.View, outputs);
    }

    static bool SameForAll(float[] t)
    {
        foreach (var v in t)
            if (!v.Equals(t[0])) return false;
        return true;
    }

    Tensor RunBlocks(int from, int to, Tensor input, Tensor? output, int n, Tensor t0, ArrayView<int> rows, BlockOutputs? outputs)
    {
        var pw = ws!;
        var w = pw.Base;
        if (from < 0 || to > PixArtConfig.Depth || from > to) throw new ArgumentException($"blocks {from}..{to - 1} outside 0..{PixArtConfig.Depth - 1}");
        CheckFeature(input, n, "block input");
        if (output != null) CheckFeature(output, n, "block output");
        Tensor cur = input;
        for (int i = from; i < to; i++)
        {
            var next = i == to - 1 && output != null ? output
                     : !ReferenceEquals(cur, w.X0) && !ReferenceEquals(output, w.X0) ? w.X0 : w.X1;
            Blocks[i].Forward(cur, next, pw, n, t0, rows, keep!, captionTokens, outputs);             // (N, T, D)
            OnBlockOutput?.Invoke(i, next);
            cur = next;
        }
        return cur;
    }

    /// <summary>Rows of `rows` run blocks from..to−1 as a compact sub-batch (their input rows, t0 rows and caption rows
    /// gathered); the results replace their rows of output.</summary>
    public void RunRows(int from, int to, Tensor input, int[] rows, Tensor output)
    {
        var pw = ws ?? throw new InvalidOperationException("RunRows before Embed");
        var w = pw.Base;
        int m = rows.Length, n = w.Batch, d = PixArtConfig.Hidden, rowLen = PixArtConfig.Tokens * d;
        foreach (var r in rows)
            if (r < 0 || r >= n) throw new InvalidOperationException($"sub-batch row {r} is outside the model batch of {n}");
        CheckFeature(input, n, "sub-batch input");
        CheckFeature(output, n, "sub-batch output");
        var sub = ReferenceEquals(input, w.X1) ? w.X0 : w.X1;
        Device.UploadQueued<int>(w.Rows.View, rows);                                                    // m ints, queued: no host wait
        Device.UploadQueued<int>(pw.CaptionRowsSub.View, rows.Select(r => uploadedRows[r]).ToArray());
        GatherRows.Gather(Device, input.View, w.Rows.View, sub.View, m, rowLen);                     // (m, T, D)
        GatherRows.Gather(Device, pw.T0.View, w.Rows.View, pw.T0Sub.View, m, 6 * d);                // (m, 6D)
        var fresh = RunBlocks(from, to, sub, null, m, pw.T0Sub, pw.CaptionRowsSub.View, null);       // (m, T, D)
        GatherRows.Scatter(Device, fresh.View, w.Rows.View, output.View, m, rowLen);                // rows of (N, T, D)
    }

    /// <summary>Block i's modulated self-attention input LN(h)·(1 + sc1) + sh1 for the whole batch, (N, T, D) in the
    /// workspace's Norm buffer (valid until the next block runs).</summary>
    public Tensor ModulatedInput(int block, Tensor input)
    {
        var pw = ws ?? throw new InvalidOperationException("ModulatedInput before Embed");
        CheckFeature(input, pw.Batch, "modulated input");
        Blocks[block].ModulatedInput(input, pw, pw.Batch, pw.T0);
        return pw.Base.Norm;
    }

    /// <summary>(shift, scale) = table (2, D) + e; output (N, C_out, H, W) = unpatchify(proj_out(LN(h)·(1 + scale) + shift)).</summary>
    public void Final(Tensor h, Tensor output)
    {
        var cfg = PixArtConfig;
        var pw = ws ?? throw new InvalidOperationException("Final before Embed");
        var w = pw.Base;
        int n = w.Batch, d = cfg.Hidden, tokens = cfg.Tokens;
        Check.Size("pixart output", output.Length, (long)n * cfg.OutChannels * cfg.LatentSize * cfg.LatentSize);
        CheckFeature(h, n, "final layer input");
        StridedAdd.Run(Device, new(finalTable.View, 0, 0), new(w.TEmb.View, d, 0), new(w.Mod.View, 2 * d, 0), n, d);  // shift
        StridedAdd.Run(Device, new(finalTable.View, 0, d), new(w.TEmb.View, d, 0), new(w.Mod.View, 2 * d, d), n, d);  // scale
        LayerNormModulate.Run(Device, h.View, w.Mod.View, w.Norm.View, n * tokens, d, tokens, 2 * d, 0, d);
        finalLinear.Forward(w.Norm, w.FinalTokens, n * tokens);                                       // (N, T, p²·C_out)
        Unpatchify.Run(Device, w.FinalTokens.View, output.View, n, cfg.OutChannels, cfg.LatentSize, cfg.LatentSize, cfg.Patch);
    }

    void CheckFeature(Tensor f, int n, string what)
    {
        var expected = new[] { n, PixArtConfig.Tokens, PixArtConfig.Hidden };
        bool workspace = ws != null && (ReferenceEquals(f, ws.Base.X0) || ReferenceEquals(f, ws.Base.X1));
        if (!f.Shape.SequenceEqual(expected) && !workspace)
            throw new ArgumentException($"{what} has shape {f.ShapeString()}, expected {Tensor.ShapeString(expected)} for batch {n}");
    }

    // ------------------------------------------------------------ FLOP accounting (per forward of n rows)
    public long BlockFlops(int n) => Blocks[0].Flops(n, Math.Max(captionTokens, 1));
    public long BranchFlops(string part, int n) => Blocks[0].BranchFlops(part, n, Math.Max(captionTokens, 1));
    public long EmbedFlops(int n) => tMlp1.Flops(n) + tMlp2.Flops(n) + tBlock.Flops(n)
        + (resMlp1 is null ? 0 : 2 * (resMlp1.Flops(n) + resMlp2!.Flops(n)) + arMlp1!.Flops(n) + arMlp2!.Flops(n))
        + 2L * n * PixArtConfig.Tokens * PixArtConfig.Hidden * PixArtConfig.InChannels * PixArtConfig.Patch * PixArtConfig.Patch;
    public long FinalFlops(int n) => finalLinear.Flops((long)n * PixArtConfig.Tokens);
    public long ForwardFlops(int n) => EmbedFlops(n) + PixArtConfig.Depth * BlockFlops(n) + FinalFlops(n);

    public void Dispose()
    {
        ws?.Dispose();
        keep?.Dispose();
        foreach (var b in Blocks) b.Dispose();
        foreach (var t in new[] { xEmbedW, xEmbedB, posEmbed, finalTable }) t.Dispose();
        foreach (var l in new[] { tMlp1, tMlp2, tBlock, capFc1, capFc2, finalLinear, resMlp1, resMlp2, arMlp1, arMlp2 }) l?.Dispose();
    }
}
