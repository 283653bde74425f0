// Opens a DiT checkpoint and works out its configuration from tensor shapes.
//   a .safetensors file in the official naming (converted release, or the project's own training)
//   a PyTorch .pt checkpoint as released or as train.py saves it (TorchCheckpointSource; nothing in it is run)
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
        FileKind.RequireRegular(path, "model file");   // a FIFO or device would block or never end
        if (TorchCheckpoint.LooksLikeTorch(path)) return new TorchCheckpointSource(TorchCheckpoint.Open(path));
        return new OfficialSafeTensorsSource(SafeTensorsFile.Open(path));
    }

    /// <summary>
    /// The config from tensor shapes and metadata, every value validated before it is used (ModelValidation):
    /// ranks and sizes ≥ 1, depth from contiguous block indices, head count a positive divisor of D, then
    /// every tensor's shape and dtype against the detected config.
    /// </summary>
    public static DiTConfig DetectConfig(IWeightSource src, int? headsOverride = null, int? inputSizeOverride = null)
    {
        var xe = ModelValidation.Shape(src, "x_embedder.proj.weight", 4, "[D, C_in, p, p]");
        if (xe[2] != xe[3])
            throw new ModelException($"{src.Origin}: tensor 'x_embedder.proj.weight': expected a square patch [D, C_in, p, p], found {ModelValidation.Format(xe)}");
        int d = (int)xe[0], cin = (int)xe[1], p = (int)xe[2];
        int depth = ModelValidation.Depth(src);
        var table = ModelValidation.Shape(src, "y_embedder.embedding_table.weight", 2, "[classes + 1, D]");
        if (table[0] < 2)
            throw new ModelException($"{src.Origin}: tensor 'y_embedder.embedding_table.weight': expected at least 2 rows (≥ 1 class + the null label), found {table[0]}");
        var fin = ModelValidation.Shape(src, "final_layer.linear.weight", 2, "[p²·C_out, D]");
        if (fin[0] % ((long)p * p) != 0)
            throw new ModelException($"{src.Origin}: tensor 'final_layer.linear.weight': expected rows a multiple of p² = {(long)p * p}, found {fin[0]}");
        long coutLong = fin[0] / ((long)p * p);
        if (coutLong != cin && coutLong != 2L * cin)
            throw new ModelException($"{src.Origin}: tensor 'final_layer.linear.weight': expected {cin} or {2 * cin} output channels (C_in, or 2·C_in with learned sigma) × p² = {(long)p * p} rows, found {fin[0]} rows");
        int cout = (int)coutLong;
        int input;
        if (inputSizeOverride is int s) input = s;
        else if (src.Has("pos_embed"))
        {
            var pe = ModelValidation.Shape(src, "pos_embed", 3, "[1, T, D]");      // [1, T, D]
            long grid = (long)Math.Round(Math.Sqrt(pe[1]));
            if (grid * grid != pe[1]) throw new ModelException($"{src.Origin}: tensor 'pos_embed': expected T a square number of tokens, found {pe[1]}");
            input = (int)Math.Min(int.MaxValue, grid * p);
        }
        else if (src.Metadata.TryGetValue("sample_size", out var ss)) // diffusers config.json
        {
            if (!int.TryParse(ss, out var sampleSize) || sampleSize < 1)
                throw new ModelException($"{src.Origin}: sample_size: expected a positive integer, found '{ss}'");
            input = sampleSize;
        }
        else throw new ModelException($"{src.Origin}: no pos_embed and no sample size: cannot tell the input size");

        int heads;
        if (ModelValidation.Heads(src, headsOverride, d) is int h) heads = h;
        else if (Preset.ByShape(depth, d) is { } preset)
        {
            heads = preset.Heads;
            Log.Info($"head count {heads} taken from the {preset.Name} preset (depth {depth}, D {d}); the file has no num_heads metadata");
        }
        else throw new ModelException(
            $"{src.Origin}: cannot tell the head count: no __metadata__ num_heads and depth {depth}, D {d} match no preset (S/B/L/XL); pass --heads");
        var cfg = new DiTConfig(depth, d, heads, p, cin, cout, input, (int)table[0] - 1);
        try { cfg.Validate(); }
        catch (ModelException e) { throw new ModelException($"{src.Origin}: {e.Message}"); }
        ModelValidation.CheckTensors(src, cfg);
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
            return Create(dev, src, cfg);
        }
        finally { (src as IDisposable)?.Dispose(); }
    }

    /// <summary>The DiT on the device from a validated source and config, with every weight checked for NaN/Inf
    /// on the device as it is uploaded (FiniteWeightCheck): a non-finite weight is a ModelException naming it.</summary>
    public static DiT Create(ComputeDevice dev, IWeightSource src, DiTConfig cfg)
    {
        using var checkedSrc = new FiniteWeightCheck(dev, src);
        var model = new DiT(dev, checkedSrc, cfg);
        try { checkedSrc.ThrowIfNonFinite(); }
        catch { model.Dispose(); throw; }
        return model;
    }
}
