// Where the VAE decoder's weights come from: an AutoencoderKL safetensors file with diffusers key
// names (sd-vae-ft-ema / sd-vae-ft-mse: diffusion_pytorch_model.safetensors, usually in a vae/ folder
// next to a config.json). Only decoder.* and post_quant_conv are read; encoder.* and quant_conv are ignored.
// The GroupNorm group count is the one structural number shapes cannot tell: the file's __metadata__
// "norm_num_groups", else config.json's "norm_num_groups", else 32 (the value of every SD VAE).
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

    /// <summary>Opens the VAE at `path`: a .safetensors file, a vae/ folder, or a model folder holding vae/.</summary>
    public static VaeWeights Open(string path)
    {
        var filePath = ResolveFile(path);
        var config = ReadConfig(System.IO.Path.Combine(System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(filePath))!, "config.json"));
        var f = SafeTensorsFile.Open(filePath);
        try
        {
            int groups = DefaultGroups;
            if (f.Metadata.TryGetValue("norm_num_groups", out var g) && int.TryParse(g, out var mg)) groups = mg;
            else if (config?.TryGetProperty("norm_num_groups", out var cg) == true && cg.TryGetInt32(out var cgi)) groups = cgi;
            float scaling = VaeDecoder.DefaultScalingFactor;
            if (config?.TryGetProperty("scaling_factor", out var sf) == true && sf.TryGetSingle(out var s)) scaling = s;
            if (!f.Contains("decoder.conv_in.weight"))
                throw new ModelException($"{filePath}: no tensor 'decoder.conv_in.weight': expected an AutoencoderKL (sd-vae-ft-ema/-mse) " +
                                         $"with diffusers key names, found {f.Tensors.Count} tensors (e.g. {string.Join(", ", f.Tensors.Take(3).Select(t => t.Name))})");
            return new VaeWeights(f, groups, scaling);
        }
        catch
        {
            f.Dispose();
            throw;
        }
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

    static JsonElement? ReadConfig(string path)
    {
        if (!File.Exists(path)) return null;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(path));
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw new ModelException($"{path}: not valid JSON ({e.Message})");
        }
    }

    public bool Has(string key) => file.Contains(key);

    const string Naming = "diffusers AutoencoderKL key names";
    public long[] ShapeOf(string key) => ModelTensors.ShapeOf(file, key, Naming);

    /// <summary>Reads a tensor as float32 after checking its shape (a ModelException names key, expected and found).</summary>
    public float[] Read(string key, params long[] expectedShape) => ModelTensors.Read(file, key, expectedShape, Naming);

    /// <summary>The first of `candidates` present (e.g. to_q, or the older name query), or a ModelException naming all.</summary>
    public string FirstPresent(string prefix, params string[] candidates)
    {
        foreach (var c in candidates)
            if (file.Contains($"{prefix}.{c}.weight")) return $"{prefix}.{c}";
        throw new ModelException($"{file.Path}: missing tensor '{prefix}.{candidates[0]}.weight' (also looked for {string.Join(", ", candidates.Skip(1).Select(c => $"'{prefix}.{c}.weight'"))})");
    }

    public void Dispose() => file.Dispose();
}
