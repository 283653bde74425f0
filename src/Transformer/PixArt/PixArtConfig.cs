// The PixArt-α configuration, read from a diffusers folder's transformer/config.json and checked against the
// weights' shapes (never guessed). PixArt-XL/2: 28 blocks, 16 heads × 72 = 1152, patch 2, 4 → 8 channels,
// captions of 4096-wide T5 features; 512 px: sample_size 64, scale 1; 1024-MS: sample_size 128, scale 2,
// micro-conditions (resolution and aspect ratio). docs/pixart.md.
using System.Text.Json;
using BlockDance.Kernels;

namespace BlockDance.Transformer;

public sealed record PixArtConfig(
    int Depth, int Heads, int HeadDim, int Patch, int InChannels, int OutChannels,
    int SampleSize,           // latent side the model was trained at (64 or 128)
    int CaptionChannels,      // width of the text features (4096 for T5-XXL)
    double InterpolationScale,// position-embedding scale ("lewei_scale")
    bool MicroConditions)     // resolution + aspect-ratio embeddings (1024-MS)
{
    /// <summary>The latent side this instance runs at (default: SampleSize). Another size interpolates the position
    /// table (coordinates rescaled to the trained grid, as diffusers does) and sets the micro-condition resolution.</summary>
    public int LatentSize
    {
        get => latentSize > 0 ? latentSize : SampleSize;
        init
        {
            if (value % Patch != 0 || value < Patch || value > ModelValidation.MaxInputSize)
                throw new InvalidValueException("latent size", $"a multiple of the patch size {Patch} in {Patch}..{ModelValidation.MaxInputSize}", $"{value}");
            latentSize = value;
        }
    }
    readonly int latentSize;

    public int Hidden => Heads * HeadDim;
    public int MicroWidth => Hidden / 3;
    /// <summary>Tokens per side of the trained grid (the position table's base size).</summary>
    public int BaseSize => SampleSize / Patch;
    public int GridSize => LatentSize / Patch;
    public int Tokens => GridSize * GridSize;
    public int MlpHidden => 4 * Hidden;
    /// <summary>The pixel size of an image at the model's latent size (the VAE upsamples 8×).</summary>
    public const int VaeScale = 8;

    /// <summary>The block stack as the model seam describes it (PixArt.Shape): Classes 1, the rows are conditioned on
    /// captions of CaptionChannels, not labels (every sample is label 0 to a policy).</summary>
    public BlockShape Shape => new(Depth, Tokens, Hidden, InChannels, LatentSize, 1, OutChannels, Branches: BranchNames, CaptionChannels: CaptionChannels);
    /// <summary>The sizes of the shared block Workspace (PixArtWorkspace.Base).</summary>
    public WorkspaceShape Workspace => new(Tokens, Hidden, MlpHidden, Patch * Patch * OutChannels);
    /// <summary>The block's residual branches (BlockShape.Parts): self-attention, cross-attention, MLP.</summary>
    public static readonly string[] BranchNames = ["attn", "cross", "mlp"];

    public override string ToString() =>
        $"PixArt-α (depth {Depth}, D {Hidden}, {Heads} heads × {HeadDim}, patch {Patch}, {InChannels}→{OutChannels} ch, " +
        $"latent {LatentSize}×{LatentSize} ({Tokens} tokens{(LatentSize != SampleSize ? $", trained at {SampleSize}" : "")}), captions {CaptionChannels} wide, position scale {InterpolationScale}" +
        (MicroConditions ? ", micro-conditions)" : ")");

    /// <summary>True when the folder (or its transformer/) holds a PixArt config (norm_type "ada_norm_single" or caption_channels).
    /// The config is read through InputFile: a FIFO, a device or an oversized file is refused here (one line), not read.</summary>
    public static bool IsPixArtFolder(string folder)
    {
        var path = ConfigPath(folder);
        if (path is null) return false;
        JsonElement root;
        try { root = IO.InputFile.ReadJsonObject(path, "transformer config.json"); }
        catch (InvalidValueException) when (IO.FileKind.Of(path) == IO.PathKind.Regular && new FileInfo(path).Length <= IO.InputFile.MaxConfigBytes)
        {
            return false;   // not JSON or not an object: the DiT loader reports it in its own terms
        }
        return (root.TryGetProperty("norm_type", out var nt) && nt.ValueKind == JsonValueKind.String && nt.GetString() == "ada_norm_single")
               || root.TryGetProperty("caption_channels", out _);
    }

    static string? ConfigPath(string folder)
    {
        if (!Directory.Exists(folder)) return null;
        foreach (var p in new[] { Path.Combine(folder, "transformer", "config.json"), Path.Combine(folder, "config.json") })
            if (File.Exists(p)) return p;
        return null;
    }

    /// <summary>A full pipeline folder (transformer/ inside it): its scheduler config and model_index.json must describe what the
    /// engine runs (IO/SchedulerConfig), checked with the transformer config so that every command on the folder refuses the same.</summary>
    static void CheckFolder(string folder, string configPath)
    {
        if (Path.GetFullPath(configPath) != Path.GetFullPath(Path.Combine(folder, "transformer", "config.json"))) return;
        IO.SchedulerConfig.CheckFolder(folder);
        IO.SchedulerConfig.CheckModelIndex(folder, ["PixArtAlphaPipeline"], ("transformer", "PixArtTransformer2DModel"),
            ("vae", "AutoencoderKL"), ("scheduler", "DPMSolverMultistepScheduler"), ("text_encoder", "T5EncoderModel"), ("tokenizer", "T5Tokenizer"));
    }

    /// <summary>Largest block count accepted (PixArt-XL/2 has 28).</summary>
    public const int MaxDepth = 256;
    /// <summary>Largest trained latent side accepted: 512 (PixArt-Σ 4K: 4096 px).</summary>
    public const int MaxSampleSize = 512;

    /// <summary>Reads transformer/config.json (diffusers names and derivations: interpolation_scale = max(sample_size / 64, 1),
    /// micro-conditions iff sample_size == 128, unless given). Every field the model depends on is checked for type and
    /// range, and fields that select behaviour the engine does not implement are refused, never ignored.</summary>
    public static PixArtConfig Read(string folder)
    {
        var path = ConfigPath(folder) ?? throw new ModelException($"{folder}: no transformer/config.json (expected a diffusers PixArt-α folder)");
        CheckFolder(folder, path);
        var c = IO.ConfigJson.Read(path, "transformer config.json");
        c.String("norm_type", ["ada_norm_single"], "ada_norm_single");
        c.String("activation_fn", ["gelu-approximate"], "gelu-approximate");
        c.String("attention_type", ["default"], "default", nullIsAbsent: true);
        c.RequireBool("attention_bias", true, "the attention projections have biases");
        c.RequireBool("norm_elementwise_affine", false, "PixArt's LayerNorms have no affine parameters");
        c.RequireBool("upcast_attention", false, "not implemented");
        c.RequireBool("only_cross_attention", false, "not implemented");
        c.RequireBool("double_self_attention", false, "not implemented");
        c.Number("norm_eps", 1e-6, 1e-6, 1e-6);   // the LayerNorm eps the kernels use
        if (c.Get("num_vector_embeds", nullIsAbsent: true) is { } nv) throw c.Error("num_vector_embeds", "null (continuous latents)", IO.ConfigJson.Raw(nv));
        c.Int("num_embeds_ada_norm", 1, 100_000, 1000, nullIsAbsent: true);
        int heads = c.Int("num_attention_heads", 1, 1024), headDim = c.Int("attention_head_dim", 1, 1024);
        if ((long)heads * headDim > 16384) throw c.Error("num_attention_heads", $"heads × attention_head_dim ≤ 16384", $"{heads} × {headDim}");
        if (c.Get("cross_attention_dim", nullIsAbsent: true) is not null)
            c.Int("cross_attention_dim", heads * headDim, heads * headDim);   // the captions are projected to D
        int patch = c.Int("patch_size", 1, 16);
        int sample = c.Int("sample_size", 1, MaxSampleSize);
        double scale = c.Number("interpolation_scale", 0, 64, Math.Max(sample / 64, 1), exclusiveMin: true, nullIsAbsent: true);
        bool micro = c.Bool("use_additional_conditions", sample == 128, nullIsAbsent: true);
        int inCh = c.Int("in_channels", 1, 256);
        var cfg = new PixArtConfig(c.Int("num_layers", 1, MaxDepth), heads, headDim, patch,
            inCh, c.Int("out_channels", 1, 512, inCh, nullIsAbsent: true), sample, c.Int("caption_channels", 1, 65536), scale, micro);
        cfg.Validate(path);
        return cfg;
    }

    public void Validate(string origin)
    {
        if (SampleSize % Patch != 0) throw new ModelException($"{origin}: sample_size {SampleSize} is not divisible by patch_size {Patch}");
        if (SampleSize > ModelValidation.MaxInputSize) throw new ModelException($"{origin}: sample_size: expected ≤ {ModelValidation.MaxInputSize}, found {SampleSize}");
        if (OutChannels != InChannels && OutChannels != 2 * InChannels)
            throw new ModelException($"{origin}: out_channels: expected {InChannels} or {2 * InChannels}, found {OutChannels}");
        if (Hidden % 4 != 0) throw new ModelException($"{origin}: hidden size {Hidden}: the 2-D sin-cos position embedding needs a multiple of 4");
        if (MicroConditions && Hidden % 3 != 0)
            throw new ModelException($"{origin}: micro-conditions need a hidden size divisible by 3 (h, w, aspect ratio), found {Hidden}");
    }
}
