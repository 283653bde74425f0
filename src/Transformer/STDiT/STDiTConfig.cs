// The Open-Sora 1.0 STDiT configuration (docs/opensora.md), in the official constructor's terms:
//   input_size (T, H, W) of the latent, in_channels, patch_size (1, p, p), hidden_size, depth, num_heads,
//   mlp_ratio 4, pred_sigma (out = 2·in), caption_channels, model_max_length, space_scale, time_scale.
// STDiT-XL/2: depth 28, D 1152, 16 heads × 72, patch (1, 2, 2), 4 → 8 channels, 4096-wide captions of 120 tokens;
// 16 × 512² → latent (16, 64, 64), T·S = 16 · 32² = 16384 tokens. The latent size and frame count are not part of
// the weights (the sin-cos tables are recomputed), so they come from config.json's input_size or the options.
// Read from a folder's config.json, or detected from the tensor shapes (heads from metadata, the preset, or given).
using System.Text.Json;

namespace BlockDance.Transformer;

public sealed record STDiTConfig(
    int Depth, int Hidden, int Heads, int Patch, int InChannels, int OutChannels,
    int CaptionChannels,  // width of the text features (4096 for T5-XXL)
    int MaxTokens,        // model_max_length: rows of the learned null caption y_embedding (120)
    int Frames,           // latent frames T (= video frames: patch 1 in time, the VAE is per frame)
    int LatentSize,       // latent side H = W
    double SpaceScale,    // spatial table coordinates arange / space_scale (0.5 at 256 px, 1.0 at 512 px)
    double TimeScale)     // temporal table coordinates arange / time_scale (1.0; 2/3 for 64 frames)
{
    public const int MlpRatio = 4;
    public const int VaeScale = 8;
    public int HeadDim => Hidden / Heads;
    public int GridSize => LatentSize / Patch;
    /// <summary>Tokens per frame S.</summary>
    public int SpatialTokens => GridSize * GridSize;
    /// <summary>Tokens per sample T·S, frame-major.</summary>
    public int Tokens => Frames * SpatialTokens;
    public int MlpHidden => MlpRatio * Hidden;
    public int ImageSize => LatentSize * VaeScale;
    public string Name => Presets.FirstOrDefault(p => p.Depth == Depth && p.Hidden == Hidden && p.Patch == Patch).Name ?? $"STDiT(depth {Depth}, D {Hidden})";

    /// <summary>The block stack as the model seam describes it (STDiT.Shape): T·S tokens per row, (C, T, H, W) samples, no
    /// label table (Classes 1): the rows are conditioned on captions of CaptionChannels.</summary>
    public BlockShape Shape => new(Depth, Tokens, Hidden, InChannels, LatentSize, 1, OutChannels, Frames, BranchNames, CaptionChannels);
    /// <summary>The sizes of the shared block Workspace (STDiTWorkspace.Base) over T·S tokens per row.</summary>
    public WorkspaceShape Workspace => new(Tokens, Hidden, MlpHidden, Patch * Patch * OutChannels);
    /// <summary>The block's residual branches (BlockShape.Parts): spatial attention, temporal attention, cross-attention, MLP.</summary>
    public static readonly string[] BranchNames = ["attn", "temporal", "cross", "mlp"];

    public static readonly (string Name, int Depth, int Hidden, int Heads, int Patch)[] Presets = [("STDiT-XL/2", 28, 1152, 16, 2)];

    /// <summary>Space scale of the official inference configs: 0.5 at 256 px, 1.0 at 512 px (latent side / 64).</summary>
    public static double DefaultSpaceScale(int latentSize) => latentSize / 64.0;

    public override string ToString() =>
        $"{Name}: depth {Depth}, D {Hidden}, {Heads} heads × {HeadDim}, patch (1, {Patch}, {Patch}), {InChannels}→{OutChannels} ch, " +
        (InChannels is 1 or 3
            ? $"video {Frames} frames × {LatentSize}² px in pixel space ({Frames} × {SpatialTokens} = {Tokens} tokens), "
            : $"video {Frames} frames × {ImageSize}² px (latent {Frames}×{LatentSize}×{LatentSize}, {Frames} × {SpatialTokens} = {Tokens} tokens), ") +
        $"captions {MaxTokens} × {CaptionChannels}, space scale {SpaceScale:0.###}, time scale {TimeScale:0.###}";

    /// <summary>Every field within what the kernels accept; checked before any allocation.</summary>
    public void Validate(string origin)
    {
        void Positive(string what, int v)
        {
            if (v < 1) throw new ModelException($"{origin}: {what}: expected ≥ 1, found {v}");
        }
        Positive("depth", Depth); Positive("hidden_size", Hidden); Positive("num_heads", Heads); Positive("patch size", Patch);
        Positive("in_channels", InChannels); Positive("caption_channels", CaptionChannels); Positive("model_max_length", MaxTokens);
        Positive("frames", Frames); Positive("latent size", LatentSize);
        if (Hidden % Heads != 0) throw new ModelException($"{origin}: hidden_size {Hidden} is not divisible by {Heads} heads");
        if (Hidden % 4 != 0) throw new ModelException($"{origin}: hidden_size {Hidden}: the 2-D sin-cos table needs a multiple of 4");
        if (OutChannels != InChannels && OutChannels != 2 * InChannels)
            throw new ModelException($"{origin}: output channels: expected {InChannels} or {2 * InChannels}, found {OutChannels}");
        if (LatentSize % Patch != 0 || LatentSize > ModelValidation.MaxInputSize)
            throw new ModelException($"{origin}: latent size: expected a multiple of the patch size {Patch} up to {ModelValidation.MaxInputSize}, found {LatentSize}");
        if (Frames > 1024) throw new ModelException($"{origin}: frames: expected ≤ 1024, found {Frames}");
        if (!(SpaceScale > 0) || double.IsInfinity(SpaceScale)) throw new ModelException($"{origin}: space_scale: expected > 0, found {SpaceScale}");
        if (!(TimeScale > 0) || double.IsInfinity(TimeScale)) throw new ModelException($"{origin}: time_scale: expected > 0, found {TimeScale}");
    }

    /// <summary>The shape of every tensor the model reads, by official key (the released .pth layout).</summary>
    public IEnumerable<(string Key, long[] Shape)> ExpectedShapes()
    {
        long d = Hidden;
        IEnumerable<(string, long[])> Lin(string k, long o, long i) => [(k + ".weight", [o, i]), (k + ".bias", [o])];
        IEnumerable<(string, long[])> all = [("x_embedder.proj.weight", [d, InChannels, 1, Patch, Patch]), ("x_embedder.proj.bias", [d])];
        all = all.Concat(Lin("t_embedder.mlp.0", d, 256)).Concat(Lin("t_embedder.mlp.2", d, d)).Concat(Lin("t_block.1", 6 * d, d))
            .Append(("y_embedder.y_embedding", [MaxTokens, CaptionChannels]))
            .Concat(Lin("y_embedder.y_proj.fc1", d, CaptionChannels)).Concat(Lin("y_embedder.y_proj.fc2", d, d));
        for (int i = 0; i < Depth; i++)
        {
            string b = $"blocks.{i}.";
            all = all.Append((b + "scale_shift_table", [6, d]))
                .Concat(Lin(b + "attn.qkv", 3 * d, d)).Concat(Lin(b + "attn.proj", d, d))
                .Concat(Lin(b + "attn_temp.qkv", 3 * d, d)).Concat(Lin(b + "attn_temp.proj", d, d))
                .Concat(Lin(b + "cross_attn.q_linear", d, d)).Concat(Lin(b + "cross_attn.kv_linear", 2 * d, d)).Concat(Lin(b + "cross_attn.proj", d, d))
                .Concat(Lin(b + "mlp.fc1", MlpHidden, d)).Concat(Lin(b + "mlp.fc2", d, MlpHidden));
        }
        return all.Append(("final_layer.scale_shift_table", [2, d])).Concat(Lin("final_layer.linear", (long)Patch * Patch * OutChannels, d));
    }

    /// <summary>What the options say about the video when the file does not (null = not given).</summary>
    public sealed record VideoOptions(int? Frames = null, int? ImageSize = null, double? SpaceScale = null, double? TimeScale = null, int? Heads = null);

    /// <summary>True when src holds STDiT keys (blocks.0.attn_temp.*).</summary>
    public static bool IsSTDiT(IWeightSource src) => src.Has("blocks.0.attn_temp.qkv.weight");

    /// <summary>The configuration read off the tensor shapes; frames/size from the sin-cos buffers when stored, else the options
    /// (16 frames, 512 px by default); heads from metadata "num_heads", the options or the preset.</summary>
    public static STDiTConfig FromShapes(IWeightSource src, VideoOptions o)
    {
        string origin = src.Origin;
        long[] Shape(string key, int rank)
        {
            var s = src.ShapeOf(key);
            if (s.Length != rank) throw new ModelException($"{origin}: tensor '{key}': expected {rank} dimensions, found [{string.Join(", ", s)}]");
            return s;
        }
        var xe = Shape("x_embedder.proj.weight", 5);
        if (xe[2] != 1 || xe[3] != xe[4]) throw new ModelException($"{origin}: x_embedder.proj.weight: expected a (1, p, p) patch (Open-Sora 1.0), found [{string.Join(", ", xe)}]");
        int hidden = (int)xe[0], inCh = (int)xe[1], patch = (int)xe[3];
        int depth = 0;
        while (src.Has($"blocks.{depth}.scale_shift_table")) depth++;
        if (depth == 0) throw new ModelException($"{origin}: no blocks.0.scale_shift_table: expected an Open-Sora 1.0 STDiT state dict");
        var fin = Shape("final_layer.linear.weight", 2);
        int outCh = (int)(fin[0] / ((long)patch * patch));
        var yEmb = Shape("y_embedder.y_embedding", 2);
        int heads = o.Heads ?? (src.Metadata.TryGetValue("num_heads", out var h) && int.TryParse(h, out int hv) ? hv
            : Presets.Where(p => p.Depth == depth && p.Hidden == hidden).Select(p => p.Heads).FirstOrDefault());
        if (heads < 1) throw new ModelException($"{origin}: head count unknown for depth {depth}, D {hidden} (no num_heads metadata, no preset): the head count must be given") { Field = "heads" };
        int frames = o.Frames ?? (src.Has("pos_embed_temporal") ? (int)Shape("pos_embed_temporal", 3)[1] : 16);
        int latent = o.ImageSize is int px ? px / VaeScale
            : src.Has("pos_embed") ? (int)Math.Round(Math.Sqrt(Shape("pos_embed", 3)[1])) * patch : 512 / VaeScale;
        var cfg = new STDiTConfig(depth, hidden, heads, patch, inCh, outCh, (int)yEmb[1], (int)yEmb[0], frames, latent,
            o.SpaceScale ?? DefaultSpaceScale(latent), o.TimeScale ?? 1.0);
        cfg.Validate(origin);
        return cfg;
    }

    /// <summary>Reads a folder's config.json (official constructor arguments; "type": "STDiT-XL/2" fills the preset's sizes);
    /// options override input_size and the scales.</summary>
    public static STDiTConfig Read(string path, VideoOptions o)
    {
        JsonElement root;
        try { root = JsonDocument.Parse(File.ReadAllText(path)).RootElement; }
        catch (JsonException e) { throw new ModelException($"{path}: expected JSON, found a parse error ({e.Message})"); }
        if (root.ValueKind != JsonValueKind.Object) throw new ModelException($"{path}: expected a JSON object, found {root.ValueKind}");
        var preset = root.TryGetProperty("type", out var ty) && ty.ValueKind == JsonValueKind.String
            ? Presets.FirstOrDefault(p => p.Name == ty.GetString()) : default;
        if (root.TryGetProperty("type", out ty) && preset.Name is null)
            throw new ModelException($"{path}: type: expected \"STDiT-XL/2\" (Open-Sora 1.0), found {ty.GetRawText()}");
        int Int(string key, int? fallback)
        {
            if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
                return fallback ?? throw new ModelException($"{path}: \"{key}\" missing (expected a positive integer)");
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i) || i < 1)
                throw new ModelException($"{path}: \"{key}\": expected a positive integer, found {v.GetRawText()}");
            return i;
        }
        double Num(string key, double fallback)
        {
            if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
            if (v.ValueKind != JsonValueKind.Number) throw new ModelException($"{path}: \"{key}\": expected a number, found {v.GetRawText()}");
            return v.GetDouble();
        }
        int[] Triple(string key, int[]? fallback)
        {
            if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
                return fallback ?? throw new ModelException($"{path}: \"{key}\" missing (expected [T, H, W])");
            if (v.ValueKind != JsonValueKind.Array || v.GetArrayLength() != 3 || v.EnumerateArray().Any(e => e.ValueKind != JsonValueKind.Number || !e.TryGetInt32(out int x) || x < 1))
                throw new ModelException($"{path}: \"{key}\": expected three positive integers, found {v.GetRawText()}");
            return v.EnumerateArray().Select(e => e.GetInt32()).ToArray();
        }
        if (Num("mlp_ratio", 4.0) != 4.0) throw new ModelException($"{path}: mlp_ratio: expected 4.0 (STDiT-XL/2), found {Num("mlp_ratio", 4.0)}");
        var patch = Triple("patch_size", preset.Name is null ? null : [1, preset.Patch, preset.Patch]);
        if (patch[0] != 1 || patch[1] != patch[2]) throw new ModelException($"{path}: patch_size: expected [1, p, p] (Open-Sora 1.0), found [{string.Join(", ", patch)}]");
        bool sigma = !root.TryGetProperty("pred_sigma", out var ps) || ps.ValueKind != JsonValueKind.False;
        var input = root.TryGetProperty("input_size", out _) ? Triple("input_size", null) : null;
        int frames = o.Frames ?? input?[0] ?? 16;
        int latent = o.ImageSize is int px ? px / VaeScale : input?[1] ?? 512 / VaeScale;
        if (input != null && input[1] != input[2] && o.ImageSize is null) throw new ModelException($"{path}: input_size: expected a square latent, found [{string.Join(", ", input)}]");
        int inCh = Int("in_channels", 4);
        var cfg = new STDiTConfig(Int("depth", preset.Depth > 0 ? preset.Depth : null), Int("hidden_size", preset.Hidden > 0 ? preset.Hidden : null),
            Int("num_heads", preset.Heads > 0 ? preset.Heads : null), patch[1], inCh, sigma ? 2 * inCh : inCh, Int("caption_channels", 4096),
            Int("model_max_length", 120), frames, latent, o.SpaceScale ?? Num("space_scale", DefaultSpaceScale(latent)), o.TimeScale ?? Num("time_scale", 1.0));
        cfg.Validate(path);
        return cfg;
    }

    /// <summary>Checks every tensor's shape against the configuration before anything is allocated; the sin-cos buffers
    /// pos_embed / pos_embed_temporal may be present (any frames/size: they are recomputed) or absent.</summary>
    public void CheckShapes(IWeightSource src)
    {
        foreach (var (key, shape) in ExpectedShapes())
        {
            var found = src.ShapeOf(key);
            if (!found.SequenceEqual(shape))
                throw new ModelException($"{src.Origin}: tensor '{key}': expected shape [{string.Join(", ", shape)}] for {Name}, found [{string.Join(", ", found)}]");
            var dt = src.DTypeOf(key);
            if (dt is not ("F32" or "F16" or "BF16")) throw new ModelException($"{src.Origin}: tensor '{key}': expected a float tensor, found {dt}");
        }
        foreach (var key in new[] { "pos_embed", "pos_embed_temporal" })
            if (src.Has(key) && src.ShapeOf(key) is var s && (s.Length != 3 || s[0] != 1 || s[2] != Hidden))
                throw new ModelException($"{src.Origin}: buffer '{key}': expected shape [1, n, {Hidden}], found [{string.Join(", ", s)}]");
    }
}
