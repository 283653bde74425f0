// Where the VAE decoder's weights come from: an AutoencoderKL safetensors file with diffusers key
// names (sd-vae-ft-ema / sd-vae-ft-mse: diffusion_pytorch_model.safetensors, usually in a vae/ folder
// next to a config.json). Only decoder.* and post_quant_conv are read; encoder.* and quant_conv are ignored.
// The GroupNorm group count is the one structural number shapes cannot tell: the file's __metadata__
// "norm_num_groups", else config.json's "norm_num_groups", else 32 (the value of every SD VAE). config.json's
// block_out_channels / layers_per_block / latent_channels, when given, must match the file (checked by VaeDecoder).
using System.Text.Json;
using BlockDance.Transformer.IO;

namespace BlockDance.Transformer.Vae;

public sealed class VaeWeights : IDisposable
{
    public const string FileName = "diffusion_pytorch_model.safetensors";
    public const int DefaultGroups = 32;
    readonly SafeTensorsFile file;

    public string Path => file.Path;
    /// <summary>GroupNorm groups: metadata, config.json, else 32.</summary>
    public int Groups { get; }
    /// <summary>The latent scale (config.json "scaling_factor", else 0.18215).</summary>
    public float ScalingFactor { get; }

    VaeWeights(SafeTensorsFile file, int groups, float scaling)
    {
        this.file = file;
        Groups = groups;
        ScalingFactor = scaling;
    }

    /// <summary>config.json's block_out_channels (null without a config): checked against the file by the decoder.</summary>
    public int[]? BlockOutChannels { get; private init; }
    /// <summary>config.json's layers_per_block (resnets per up block − 1), or null.</summary>
    public int? LayersPerBlock { get; private init; }
    /// <summary>config.json's latent_channels, or null.</summary>
    public int? LatentChannels { get; private init; }

    /// <summary>Largest GroupNorm group count accepted (every SD VAE uses 32).</summary>
    public const int MaxGroups = 1024;

    /// <summary>Opens the VAE at `path`: a .safetensors file, a vae/ folder, or a model folder holding vae/.
    /// Every config field the decoder depends on is checked for type and range (IO/ConfigJson); fields that select
    /// what the decoder does not implement (a shift_factor, no post_quant_conv, another activation) are refused.</summary>
    public static VaeWeights Open(string path)
    {
        var filePath = ResolveFile(path);
        var configPath = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(filePath))!, "config.json");
        var config = File.Exists(configPath) ? ConfigJson.Read(configPath, "VAE config.json") : null;
        int groups = DefaultGroups;
        float scaling = VaeDecoder.DefaultScalingFactor;
        int[]? blockOut = null;
        int? layers = null, latent = null;
        if (config != null)
        {
            config.String("act_fn", ["silu"], "silu");
            config.RequireBool("use_post_quant_conv", true, "the decoder applies post_quant_conv");
            if (config.Get("shift_factor", nullIsAbsent: true) is { } sh && !(sh.ValueKind == JsonValueKind.Number && sh.TryGetDouble(out var shv) && shv == 0))
                throw config.Error("shift_factor", "null or 0 (latents are only scaled)", ConfigJson.Raw(sh));
            groups = config.Int("norm_num_groups", 1, MaxGroups, DefaultGroups);
            // SD 0.18215, SDXL 0.13025, SD3 1.5305: [1e-3, 1e3] holds every real VAE; 0, a negative or 1e-45 gives a black or garbage image.
            scaling = (float)config.Number("scaling_factor", 1e-3, 1e3, VaeDecoder.DefaultScalingFactor);
            blockOut = config.IntArray("block_out_channels", 1, 16384, 16);
            if (config.Has("layers_per_block")) layers = config.Int("layers_per_block", 1, 64);
            if (config.Has("latent_channels")) latent = config.Int("latent_channels", 1, 256);
            config.Int("out_channels", 3, 3, 3);   // RGB
        }
        var f = SafeTensorsFile.Open(filePath);
        try
        {
            if (f.Metadata.TryGetValue("norm_num_groups", out var g))
            {
                if (!int.TryParse(g, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var mg) || mg < 1 || mg > MaxGroups)
                    throw new ModelException($"{filePath}: metadata norm_num_groups: expected an integer in 1..{MaxGroups}, found '{g}'");
                if (config?.Has("norm_num_groups") == true && mg != groups)
                    throw new ModelException($"{filePath}: metadata norm_num_groups {mg}, config.json says {groups}; expected the same");
                groups = mg;
            }
            if (!f.Contains("decoder.conv_in.weight"))
                throw new ModelException($"{filePath}: no tensor 'decoder.conv_in.weight': expected an AutoencoderKL (sd-vae-ft-ema/-mse) " +
                                         $"with diffusers key names, found {f.Tensors.Count} tensors (e.g. {string.Join(", ", f.Tensors.Take(3).Select(t => t.Name))})");
            return new VaeWeights(f, groups, scaling) { BlockOutChannels = blockOut, LayersPerBlock = layers, LatentChannels = latent };
        }
        catch
        {
            f.Dispose();
            throw;
        }
    }

    /// <summary>Checks the VAE's config.json and file header (not the values) and returns `path`: called when the VAE is
    /// found, so that a bad VAE is refused before sampling rather than after it.</summary>
    public static string Preflight(string path)
    {
        using var w = Open(path);
        return path;
    }

    /// <summary>The safetensors file for `path` (file, vae folder, or model folder with vae/), or a ModelException saying what was looked for.</summary>
    public static string ResolveFile(string path)
    {
        if (File.Exists(path)) return path;
        if (!Directory.Exists(path)) throw new ModelException($"{path}: VAE not found (expected a .safetensors file or a folder holding {FileName})");
        foreach (var dir in new[] { path, System.IO.Path.Combine(path, "vae") })
        {
            var f = System.IO.Path.Combine(dir, FileName);
            if (File.Exists(f)) return f;
            if (File.Exists(System.IO.Path.Combine(dir, "diffusion_pytorch_model.bin")))
                throw new ModelException($"{dir}: holds only the pickled diffusion_pytorch_model.bin; download the safetensors file of the " +
                                         "same repository (see docs/real-weights.md)");
        }
        throw new ModelException($"{path}: no {FileName} in it or in {System.IO.Path.Combine(path, "vae")}");
    }

    public bool Has(string key) => file.Contains(key);

    const string Naming = "diffusers AutoencoderKL key names";
    public long[] ShapeOf(string key) => ModelTensors.ShapeOf(file, key, Naming);

    /// <summary>Reads a tensor as float32 after checking its shape (a ModelException names key, expected and found).
    /// A float dtype and finite values are required (WeightChecks): a NaN or 1e30 weight would decode to a black image.</summary>
    public float[] Read(string key, params long[] expectedShape) =>
        WeightChecks.RequireFinite(file.Path, key, ModelTensors.Read(file, key, expectedShape, Naming));

    /// <summary>Every decoder.up_blocks.i index in the file (for the config-vs-file check).</summary>
    public SortedSet<int> UpBlockIndices() => WeightChecks.BlockIndices(file.Path, file.Tensors.Select(t => t.Name), "decoder.up_blocks.");

    /// <summary>The first of `candidates` present (e.g. to_q, or the older name query), or a ModelException naming all.</summary>
    public string FirstPresent(string prefix, params string[] candidates)
    {
        foreach (var c in candidates)
            if (file.Contains($"{prefix}.{c}.weight")) return $"{prefix}.{c}";
        throw new ModelException($"{file.Path}: missing tensor '{prefix}.{candidates[0]}.weight' (also looked for {string.Join(", ", candidates.Skip(1).Select(c => $"'{prefix}.{c}.weight'"))})");
    }

    public void Dispose() => file.Dispose();
}
