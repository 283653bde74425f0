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

    /// <summary>The sizes in the DiT's terms, for the shared block Workspace and the CLI's size checks (no label table:
    /// NumClasses 1). Cache policies never see it: they get the model's BlockShape through the plan runner.</summary>
    public DiTConfig Stack => new(Depth, Hidden, Heads, Patch, InChannels, OutChannels, LatentSize, 1);

    public override string ToString() =>
        $"PixArt-α (depth {Depth}, D {Hidden}, {Heads} heads × {HeadDim}, patch {Patch}, {InChannels}→{OutChannels} ch, " +
        $"latent {LatentSize}×{LatentSize} ({Tokens} tokens{(LatentSize != SampleSize ? $", trained at {SampleSize}" : "")}), captions {CaptionChannels} wide, position scale {InterpolationScale}" +
        (MicroConditions ? ", micro-conditions)" : ")");

    /// <summary>True when the folder (or its transformer/) holds a PixArt config (norm_type "ada_norm_single" or caption_channels).</summary>
    public static bool IsPixArtFolder(string folder)
    {
        var path = ConfigPath(folder);
        if (path is null) return false;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            var root = doc.RootElement;
            return root.ValueKind == JsonValueKind.Object &&
                   ((root.TryGetProperty("norm_type", out var nt) && nt.ValueKind == JsonValueKind.String && nt.GetString() == "ada_norm_single")
                    || root.TryGetProperty("caption_channels", out _));
        }
        catch (JsonException) { return false; }
        catch (IOException) { return false; }
    }

    static string? ConfigPath(string folder)
    {
        if (!Directory.Exists(folder)) return null;
        foreach (var p in new[] { Path.Combine(folder, "transformer", "config.json"), Path.Combine(folder, "config.json") })
            if (File.Exists(p)) return p;
        return null;
    }

    /// <summary>Reads transformer/config.json (diffusers names and derivations: interpolation_scale = max(sample_size / 64, 1),
    /// micro-conditions iff sample_size == 128, unless given).</summary>
    public static PixArtConfig Read(string folder)
    {
        var path = ConfigPath(folder) ?? throw new ModelException($"{folder}: no transformer/config.json (expected a diffusers PixArt-α folder)");
        JsonElement root;
        try { root = JsonDocument.Parse(File.ReadAllText(path)).RootElement; }
        catch (JsonException e) { throw new ModelException($"{path}: expected JSON, found a parse error ({e.Message})"); }
        if (root.ValueKind != JsonValueKind.Object) throw new ModelException($"{path}: expected a JSON object, found {root.ValueKind}");

        int Int(string key, int? fallback = null)
        {
            if (!root.TryGetProperty(key, out var v) || v.ValueKind == JsonValueKind.Null)
                return fallback ?? throw new ModelException($"{path}: \"{key}\" missing (expected an integer)");
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i) || i < 1)
                throw new ModelException($"{path}: \"{key}\": expected a positive integer, found {v.GetRawText()}");
            return i;
        }
        string? Str(string key) => root.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;

        if (Str("norm_type") is string nt && nt != "ada_norm_single")
            throw new ModelException($"{path}: norm_type: expected \"ada_norm_single\" (PixArt-α), found \"{nt}\"");
        if (Str("activation_fn") is string act && act != "gelu-approximate")
            throw new ModelException($"{path}: activation_fn: expected \"gelu-approximate\", found \"{act}\"");
        int sample = Int("sample_size");
        double scale = Math.Max(sample / 64, 1);
        if (root.TryGetProperty("interpolation_scale", out var s) && s.ValueKind == JsonValueKind.Number)
        {
            scale = s.GetDouble();
            if (!(scale > 0) || double.IsInfinity(scale)) throw new ModelException($"{path}: interpolation_scale: expected > 0, found {s.GetRawText()}");
        }
        bool micro = sample == 128;
        if (root.TryGetProperty("use_additional_conditions", out var u) && u.ValueKind is JsonValueKind.True or JsonValueKind.False)
            micro = u.GetBoolean();
        int inCh = Int("in_channels");
        var cfg = new PixArtConfig(Int("num_layers"), Int("num_attention_heads"), Int("attention_head_dim"), Int("patch_size"),
            inCh, Int("out_channels", inCh), sample, Int("caption_channels"), scale, micro);
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
