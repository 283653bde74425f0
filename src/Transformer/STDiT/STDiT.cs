// The Open-Sora 1.0 text-to-video transformer STDiT (STDiT-XL/2; docs/opensora.md), forward as in the official
// opensora/models/stdit/stdit.py at v1.0.0, on latents x (N, C_in, T, H, W):
//
//   x  = patchify_(1,p,p)(x) + spatial_table                      (N, T·S, D)  tokens frame-major, (T, H, W) order
//   t  = t_mlp(sinusoid(t)),  t0 = Linear(SiLU(t))                (N, D), (N, 6D)  adaLN-single, once per forward
//   c  = Linear(GELU_tanh(Linear(y)))                             (C, L, D)    captions, once per caption set
//   for i: x = block_i(x, t0, c, mask, tpe if i == 0)             (N, T·S, D)  tpe = temporal table, block 0's
//                                                                              temporal input only
//   x  = Linear(LN(x)·(1 + scale) + shift), (shift, scale) = table (2, D) + t      the raw t, not t0 (T2IFinalLayer)
//   out = unpatchify(x)                                           (N, C_out, T, H, W)
//
// Layout: the input latent is turned frame-major once (SwapAxes (N, C, T, H·W) → (N, T, C, H·W)) so PixArt-α's
// PatchEmbed runs on the N·T frames; the output goes back the same way after PixArt-α's Unpatchify. Inside the
// blocks the tokens never change layout: the temporal attention reads the (N·S) × T sequences with a stride
// (TemporalAttention) instead of the official rearrange copies, two full copies per block saved.
//
// It implements the whole model seam (IBlockModel: Shape / Embed / RunBlocks with FORA's outputs / RunRows /
// ModulatedInput / Final) as PixArt-α does, so PlanRunner and
// every cache policy run on it unchanged; `y` of Embed names caption rows of the set given to SetCaptions.
using BlockDance.Kernels;
using ILGPU.Runtime;

namespace BlockDance.Transformer;

public sealed class STDiT : ICaptionModel, IDisposable
{
    public STDiTConfig VideoConfig { get; }
    /// <summary>The block stack as the model seam describes it: T·S tokens per row, label count 1.</summary>
    public BlockShape Shape => VideoConfig.Shape;
    /// <summary>The block's residual branches (BlockShape.Parts).</summary>
    public static string[] BranchNames => STDiTConfig.BranchNames;
    public ComputeDevice Device { get; }
    readonly Tensor xEmbedW, xEmbedB, posSpatial, posTemporal, finalTable;
    readonly Linear tMlp1, tMlp2, tBlock, capFc1, capFc2, finalLinear;
    public IReadOnlyList<STDiTBlock> Blocks { get; }
    /// <summary>y_embedder.y_embedding (L, C_cap): the learned null caption of classifier-free guidance.</summary>
    public float[] NullCaption { get; }
    STDiTWorkspace? ws;
    int[] uploadedRows = [];
    Tensor? keep;                 // (C, L) caption mask, 1 = real token
    int captionCount, captionTokens;

    public Action<int, Tensor>? OnBlockOutput { get; set; }
    public int CaptionCount => captionCount;
    public int CaptionTokens => captionTokens;

    /// <summary>Builds the model from a source whose shapes cfg.CheckShapes has accepted.</summary>
    public STDiT(ComputeDevice dev, IWeightSource w, STDiTConfig cfg)
    {
        VideoConfig = cfg;
        Device = dev;
        int d = cfg.Hidden, p = cfg.Patch;
        Linear Lin(string key, int o, int i) => Linear.Load(dev, w, key, o, i);
        xEmbedW = Tensor.FromHost(dev, "x_embedder.proj.weight", w.Read("x_embedder.proj.weight", d, cfg.InChannels, 1, p, p), d, cfg.InChannels * p * p);
        xEmbedB = Tensor.FromHost(dev, "x_embedder.proj.bias", w.Read("x_embedder.proj.bias", d), d);
        posSpatial = Tensor.FromHost(dev, "pos_embed", STDiTPosition.Spatial(d, cfg.GridSize, cfg.SpaceScale), cfg.SpatialTokens, d);
        posTemporal = Tensor.FromHost(dev, "pos_embed_temporal", STDiTPosition.Temporal(d, cfg.Frames, cfg.TimeScale), cfg.Frames, d);
        tMlp1 = Lin("t_embedder.mlp.0", d, TimestepEmbedding.Dim);
        tMlp2 = Lin("t_embedder.mlp.2", d, d);
        tBlock = Lin("t_block.1", 6 * d, d);
        NullCaption = w.Read("y_embedder.y_embedding", cfg.MaxTokens, cfg.CaptionChannels);
        capFc1 = Lin("y_embedder.y_proj.fc1", d, cfg.CaptionChannels);
        capFc2 = Lin("y_embedder.y_proj.fc2", d, d);
        Blocks = Enumerable.Range(0, cfg.Depth).Select(i => STDiTBlock.Load(dev, w, cfg, i)).ToArray();
        finalTable = Tensor.FromHost(dev, "final_layer.scale_shift_table", w.Read("final_layer.scale_shift_table", 2, d), 2 * d);
        finalLinear = Lin("final_layer.linear", p * p * cfg.OutChannels, d);
    }

    /// <summary>Loads a .pth / .safetensors file or a folder with config.json (STDiTWeights), every shape checked first;
    /// the same path as the DiT's and PixArt-α's: every weight checked for NaN/Inf on the device as it is uploaded
    /// (FiniteWeightCheck), layers at the device's precision.</summary>
    public static STDiT Load(ComputeDevice dev, string path, STDiTConfig.VideoOptions? options = null)
    {
        var (src, config) = STDiTWeights.Open(path);
        using (src as IDisposable)
        {
            var cfg = STDiTWeights.Configure(src, config, options ?? new());
            using var checkedSrc = new FiniteWeightCheck(dev, src);
            var model = new STDiT(dev, checkedSrc, cfg);
            try { checkedSrc.ThrowIfNonFinite(); }
            catch { model.Dispose(); throw; }
            Log.Info($"model: {src.Origin}{(src is TorchCheckpointSource { Entry: string e } ? $" [\"{e}\"]" : "")} ({cfg})");
            return model;
        }
    }

    public STDiTWorkspace Prepare(int n)
    {
        if (ws != null && ws.Batch == n) return ws;
        if (ws != null) Log.Info($"workspace reallocated for batch {n} (was {ws.Batch})");
        ws?.Dispose();
        ws = new STDiTWorkspace(Device, VideoConfig, n);
        uploadedRows = [];
        return ws;
    }

    /// <summary>Uploads the caption row of each model row (done by Embed when they change; the denoiser calls it before
    /// the step loop so a step copies nothing host → device).</summary>
    public int CaptionChannels => VideoConfig.CaptionChannels;

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

    Linear[] Linears => [tMlp1, tMlp2, tBlock, capFc1, capFc2, finalLinear];
    public long WeightBytes => Blocks.Sum(b => b.WeightBytes) + Linears.Sum(l => l.Weight.Bytes + l.Bias.Bytes)
        + new[] { xEmbedW, xEmbedB, posSpatial, posTemporal, finalTable }.Sum(t => t.Bytes);

    /// <summary>Sets the captions the rows attend to: y (count, tokens, C_cap) T5 features, keep (count, tokens) 1 = real
    /// token. Projects them (y_embedder.y_proj) and, per block, to cross-attention keys and values — once per set.</summary>
    public void SetCaptions(float[] y, float[] keepMask, int count, int tokens)
    {
        var cfg = VideoConfig;
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

    /// <summary>output (N, C_out, T, H, W) = STDiT(x (N, C_in, T, H, W), t (N), caption rows (N)).</summary>
    public void Forward(Tensor x, float[] t, int[] captionRows, Tensor output)
    {
        var tokens = Embed(x, t, captionRows)!;
        Final(RunBlocks(0, VideoConfig.Depth, tokens), output);
    }

    /// <summary>t = timestep embedding and t0 = adaLN-single(t) into the workspace; with x (N, C_in, T, H, W) also the
    /// tokens patchify(x) + spatial table (N, T·S, D), returned (null without x).</summary>
    public Tensor? Embed(Tensor? x, float[] t, int[] y)
    {
        var cfg = VideoConfig;
        int n = t.Length, d = cfg.Hidden, hw = cfg.LatentSize * cfg.LatentSize;
        if (y.Length != n) throw new ArgumentException($"{y.Length} caption rows for {n} timesteps");
        if (keep is null) throw new InvalidOperationException("STDiT.Embed before SetCaptions");
        foreach (var r in y)
            if (r < 0 || r >= captionCount) throw new ArgumentException($"caption row {r} outside 0..{captionCount - 1}");
        var sw = Prepare(n);
        var w = sw.Base;
        UploadRows(y);                                                                             // caption rows: once per run
        if (t.All(v => v.Equals(t[0])))
            TimestepEmbedding.RunUniform(Device, t[0], w.Freqs.View, w.TFreq.View, n);              // (N, 256)
        else
        {
            Device.Upload(w.Timesteps.View, t);
            TimestepEmbedding.Run(Device, w.Timesteps.View, w.Freqs.View, w.TFreq.View, n);           // (N, 256)
        }
        tMlp1.Forward(w.TFreq, w.THidden, n, Epilogue.Silu);                                         // (N, D)
        tMlp2.Forward(w.THidden, w.TEmb, n);                                                         // (N, D) raw t
        Activations.SiluRun(Device, w.TEmb.View.SubView(0, (long)n * d), w.SiluC.View.SubView(0, (long)n * d));
        tBlock.Forward(w.SiluC, sw.T0, n);                                                           // (N, 6D)
        if (x is null) return null;

        Check.Size("stdit input", x.Length, (long)n * cfg.InChannels * cfg.Frames * hw);
        SwapAxes.Run(Device, x.View, sw.FramesIn.View, n, cfg.InChannels, cfg.Frames, hw);          // (N, T, C, H·W)
        PatchEmbed.Run(Device, sw.FramesIn.View, xEmbedW.View, xEmbedB.View, posSpatial.View, w.X0.View,
            n * cfg.Frames, cfg.InChannels, cfg.LatentSize, cfg.LatentSize, cfg.Patch, d);           // (N, T·S, D)
        return w.X0;
    }

    /// <summary>Blocks from..to−1 on input (N, T·S, D); with outputs (FORA) each block stores or reuses its branch outputs
    /// "attn" (spatial), "temporal", "cross", "mlp" (BlockOutputs).</summary>
    public Tensor RunBlocks(int from, int to, Tensor input, Tensor? output = null, BlockOutputs? outputs = null)
    {
        var sw = ws ?? throw new InvalidOperationException("RunBlocks before Embed");
        return RunBlocks(from, to, input, output, sw.Batch, sw.T0, sw.Base.Labels.View, outputs);
    }

    Tensor RunBlocks(int from, int to, Tensor input, Tensor? output, int n, Tensor t0, ILGPU.ArrayView<int> rows,
        BlockOutputs? outputs = null)
    {
        var sw = ws!;
        var w = sw.Base;
        if (from < 0 || to > VideoConfig.Depth || from > to) throw new ArgumentException($"blocks {from}..{to - 1} outside 0..{VideoConfig.Depth - 1}");
        CheckFeature(input, n, "block input");
        if (output != null) CheckFeature(output, n, "block output");
        Tensor cur = input;
        for (int i = from; i < to; i++)
        {
            var next = i == to - 1 && output != null ? output
                     : !ReferenceEquals(cur, w.X0) && !ReferenceEquals(output, w.X0) ? w.X0 : w.X1;
            Blocks[i].Forward(cur, next, sw, n, t0, rows, keep!, captionTokens, i == 0 ? posTemporal : null, outputs); // (N, T·S, D)
            OnBlockOutput?.Invoke(i, next);
            cur = next;
        }
        return cur;
    }

    /// <summary>Rows of `rows` run blocks from..to−1 as a compact sub-batch (their input rows, t0 rows and caption rows
    /// gathered); the results replace their rows of output (N, T·S, D).</summary>
    public void RunRows(int from, int to, Tensor input, int[] rows, Tensor output)
    {
        var sw = ws ?? throw new InvalidOperationException("RunRows before Embed");
        var w = sw.Base;
        int m = rows.Length, n = w.Batch, d = VideoConfig.Hidden, rowLen = VideoConfig.Tokens * d;
        foreach (var r in rows)
            if (r < 0 || r >= n) throw new InvalidOperationException($"sub-batch row {r} is outside the model batch of {n}");
        CheckFeature(input, n, "sub-batch input");
        CheckFeature(output, n, "sub-batch output");
        var sub = ReferenceEquals(input, w.X1) ? w.X0 : w.X1;
        Device.UploadQueued<int>(w.Rows.View, rows);
        Device.UploadQueued<int>(sw.CaptionRowsSub.View, rows.Select(r => uploadedRows[r]).ToArray());
        GatherRows.Gather(Device, input.View, w.Rows.View, sub.View, m, rowLen);                     // (m, T·S, D)
        GatherRows.Gather(Device, sw.T0.View, w.Rows.View, sw.T0Sub.View, m, 6 * d);                // (m, 6D)
        var fresh = RunBlocks(from, to, sub, null, m, sw.T0Sub, sw.CaptionRowsSub.View);             // (m, T·S, D)
        GatherRows.Scatter(Device, fresh.View, w.Rows.View, output.View, m, rowLen);
    }

    /// <summary>Block i's modulated spatial-attention input LN(h)·(1 + sc1) + sh1 for the whole batch, (N, T·S, D) in the
    /// workspace's Norm buffer (valid until the next block runs).</summary>
    public Tensor ModulatedInput(int block, Tensor input)
    {
        var sw = ws ?? throw new InvalidOperationException("ModulatedInput before Embed");
        CheckFeature(input, sw.Batch, "modulated input");
        Blocks[block].ModulatedInput(input, sw, sw.Batch, sw.T0);
        return sw.Base.Norm;
    }

    /// <summary>(shift, scale) = table (2, D) + t; output (N, C_out, T, H, W) = unpatchify(linear(LN(h)·(1 + scale) + shift)).</summary>
    public void Final(Tensor h, Tensor output)
    {
        var cfg = VideoConfig;
        var sw = ws ?? throw new InvalidOperationException("Final before Embed");
        var w = sw.Base;
        int n = w.Batch, d = cfg.Hidden, tokens = cfg.Tokens, hw = cfg.LatentSize * cfg.LatentSize;
        Check.Size("stdit output", output.Length, (long)n * cfg.OutChannels * cfg.Frames * hw);
        CheckFeature(h, n, "final layer input");
        StridedAdd.Run(Device, new(finalTable.View, 0, 0), new(w.TEmb.View, d, 0), new(w.Mod.View, 2 * d, 0), n, d);  // shift
        StridedAdd.Run(Device, new(finalTable.View, 0, d), new(w.TEmb.View, d, 0), new(w.Mod.View, 2 * d, d), n, d);  // scale
        LayerNormModulate.Run(Device, h.View, w.Mod.View, w.Norm.View, n * tokens, d, tokens, 2 * d, 0, d);
        finalLinear.Forward(w.Norm, w.FinalTokens, n * tokens);                                       // (N, T·S, p²·C_out)
        Unpatchify.Run(Device, w.FinalTokens.View, sw.FramesOut.View, n * cfg.Frames, cfg.OutChannels, cfg.LatentSize, cfg.LatentSize, cfg.Patch);
        SwapAxes.Run(Device, sw.FramesOut.View, output.View, n, cfg.Frames, cfg.OutChannels, hw);   // (N, C_out, T, H·W)
    }

    void CheckFeature(Tensor f, int n, string what)
    {
        var expected = new[] { n, VideoConfig.Tokens, VideoConfig.Hidden };
        bool workspace = ws != null && (ReferenceEquals(f, ws.Base.X0) || ReferenceEquals(f, ws.Base.X1));
        if (!f.Shape.SequenceEqual(expected) && !workspace)
            throw new ArgumentException($"{what} has shape {f.ShapeString()}, expected {Tensor.ShapeString(expected)} for batch {n}");
    }

    // ------------------------------------------------------------ FLOP accounting (per forward of n rows)
    public long BlockFlops(int n) => Blocks[0].Flops(n, Math.Max(captionTokens, 1));
    public long BranchFlops(string part, int n) => Blocks[0].BranchFlops(part, n, Math.Max(captionTokens, 1));
    public long EmbedFlops(int n) => tMlp1.Flops(n) + tMlp2.Flops(n) + tBlock.Flops(n)
        + 2L * n * VideoConfig.Tokens * VideoConfig.Hidden * VideoConfig.InChannels * VideoConfig.Patch * VideoConfig.Patch;
    public long FinalFlops(int n) => finalLinear.Flops((long)n * VideoConfig.Tokens);
    public long ForwardFlops(int n) => EmbedFlops(n) + VideoConfig.Depth * BlockFlops(n) + FinalFlops(n);

    public void Dispose()
    {
        ws?.Dispose();
        keep?.Dispose();
        foreach (var b in Blocks) b.Dispose();
        foreach (var t in new[] { xEmbedW, xEmbedB, posSpatial, posTemporal, finalTable }) t.Dispose();
        foreach (var l in Linears) l.Dispose();
    }
}
