// Opens a DiT checkpoint and works out its configuration from tensor shapes.
//   a .safetensors file in the official naming (converted release, or the project's own training)
//   a diffusers folder with transformer/ (and vae/), or the transformer/ folder itself (DiffusersSource)
// The head count is the one thing shapes cannot tell: __metadata__ "num_heads", else the preset
// with the same depth and width (S/B/L/XL), else the caller's explicit --heads.
using BlockDance.Kernels;
using BlockDance.Transformer.IO;
using BlockDance.Transformer.Vae;

namespace BlockDance.Transformer;

public static class ModelLoader
{
    /// <summary>Opens the weights at `path` (file or folder) as an official-key source.</summary>
    public static IWeightSource OpenSource(string path)
    {
        if (Directory.Exists(path))
        {
            if (DiffusersSource.IsDiffusersFolder(path)) return new DiffusersSource(path);
            throw new ModelException($"{path}: is a folder without transformer/; expected a .safetensors file with official DiT keys " +
                                     "or a diffusers model folder (transformer/diffusion_pytorch_model.safetensors + config.json)");
        }
        if (!File.Exists(path))
            throw new ModelException($"{path}: model file not found");
        return new OfficialSafeTensorsSource(SafeTensorsFile.Open(path));
    }

    public static DiTConfig DetectConfig(IWeightSource src, int? headsOverride = null, int? inputSizeOverride = null)
    {
        long[] Shape(string k) => src.ShapeOf(k);
        var xe = Shape("x_embedder.proj.weight");                 // [D, C_in, p, p]
        if (xe.Length != 4 || xe[2] != xe[3])
            throw new ModelException($"{src.Origin}: x_embedder.proj.weight: expected [D, C_in, p, p], found [{string.Join(", ", xe)}]");
        int d = (int)xe[0], cin = (int)xe[1], p = (int)xe[2];
        int depth = 0;
        while (src.Has($"blocks.{depth}.attn.qkv.weight")) depth++;
        if (depth == 0) throw new ModelException($"{src.Origin}: no blocks found (expected blocks.0.attn.qkv.weight)");
        var table = Shape("y_embedder.embedding_table.weight");   // [classes + 1, D]
        var fin = Shape("final_layer.linear.weight");             // [p²·C_out, D]
        if (fin[0] % (p * p) != 0)
            throw new ModelException($"{src.Origin}: final_layer.linear.weight rows {fin[0]} are not a multiple of p² = {p * p}");
        int cout = (int)(fin[0] / (p * p));
        int input;
        if (inputSizeOverride is int s) input = s;
        else if (src.Has("pos_embed"))
        {
            var pe = Shape("pos_embed");                            // [1, T, D]
            int grid = (int)Math.Round(Math.Sqrt(pe[1]));
            if (grid * grid != pe[1]) throw new ModelException($"{src.Origin}: pos_embed has {pe[1]} tokens, not a square grid");
            input = grid * p;
        }
        else if (src.Metadata.TryGetValue("sample_size", out var ss) && int.TryParse(ss, out var sampleSize)) input = sampleSize; // diffusers config.json
        else throw new ModelException($"{src.Origin}: no pos_embed and no sample size: cannot tell the input size");

        int heads;
        if (headsOverride is int h) heads = h;
        else if (src.Metadata.TryGetValue("num_heads", out var hs) && int.TryParse(hs, out var mh)) heads = mh;
        else if (Preset.ByShape(depth, d) is { } preset)
        {
            heads = preset.Heads;
            Log.Info($"head count {heads} taken from the {preset.Name} preset (depth {depth}, D {d}); the file has no num_heads metadata");
        }
        else throw new ModelException(
            $"{src.Origin}: cannot tell the head count: no __metadata__ num_heads and depth {depth}, D {d} match no preset (S/B/L/XL); pass --heads");
        if (d % heads != 0) throw new ModelException($"{src.Origin}: hidden size {d} is not divisible by {heads} heads");
        var cfg = new DiTConfig(depth, d, heads, p, cin, cout, input, (int)table[0] - 1);
        cfg.Validate();
        return cfg;
    }

    /// <summary>
    /// The VAE decoder file to use with the model at `modelPath`: `vaeOverride` (a file, a vae/ folder or a model
    /// folder holding vae/) when given — a ModelException if nothing is there — else the vae/ folder of a diffusers
    /// model folder, or a vae/ folder next to a model file. Null when there is none (latent output only).
    /// </summary>
    public static string? FindVae(string modelPath, string? vaeOverride)
    {
        if (vaeOverride != null) return VaeWeights.ResolveFile(vaeOverride);
        var full = Path.GetFullPath(modelPath);
        var candidates = new List<string>();
        if (Directory.Exists(full))
        {
            candidates.Add(Path.Combine(full, "vae"));
            if (Path.GetDirectoryName(full) is string parent) candidates.Add(Path.Combine(parent, "vae")); // --model …/transformer
        }
        else if (Path.GetDirectoryName(full) is string dir) candidates.Add(Path.Combine(dir, "vae"));
        foreach (var c in candidates)
            if (File.Exists(Path.Combine(c, VaeWeights.FileName))) return Path.Combine(c, VaeWeights.FileName);
        return null;
    }

    public static DiT Load(ComputeDevice dev, string path, int? heads = null)
    {
        var src = OpenSource(path);
        try
        {
            var cfg = DetectConfig(src, heads);
            return new DiT(dev, src, cfg);
        }
        finally { (src as IDisposable)?.Dispose(); }
    }
}
