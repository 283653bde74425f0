// Where an Open-Sora 1.0 STDiT comes from: the released .pth (a plain torch.save of the state dict, fp32, read by
// the restricted unpickler — nothing in it runs — taking ["ema"] when the file is a training checkpoint), a
// safetensors file with the same official keys, or a folder holding one of those beside a config.json with the
// official constructor arguments (plus optional vae/, text_encoder/, tokenizer/ as for PixArt-α).
// Without config.json the configuration is detected from the shapes and the video options (STDiTConfig.FromShapes).
// Every tensor's shape is checked (STDiTConfig.CheckShapes) before the model allocates anything on the device.
using BlockDance.Transformer.IO;

namespace BlockDance.Transformer;

public static class STDiTWeights
{
    public const string ConfigName = "config.json";
    static readonly string[] WeightNames = ["model.safetensors", "ema.pth", "model.pth"];

    /// <summary>The weights file of a folder: model.safetensors / ema.pth / model.pth, else the only .safetensors/.pth/.pt in it.</summary>
    public static string WeightsIn(string folder)
    {
        foreach (var n in WeightNames)
            if (File.Exists(Path.Combine(folder, n))) return Path.Combine(folder, n);
        var found = Directory.GetFiles(folder).Where(f => f.EndsWith(".safetensors") || f.EndsWith(".pth") || f.EndsWith(".pt")).ToArray();
        return found.Length == 1 ? found[0]
            : throw new ModelException($"{folder}: expected one STDiT weights file (model.safetensors, a .pth or .pt) beside config.json, found {found.Length}");
    }

    /// <summary>The weights (official keys) and the config.json beside them, if any.</summary>
    public static (IWeightSource Source, string? ConfigPath) Open(string path)
    {
        string file = path;
        string? config = null;
        if (Directory.Exists(path))
        {
            config = Path.Combine(path, ConfigName);
            if (!File.Exists(config)) throw new ModelException($"{path}: an STDiT folder needs {ConfigName} (official constructor arguments) beside the weights, found none");
            file = WeightsIn(path);
        }
        else if (!File.Exists(path)) throw new ModelException($"{path}: model file not found");
        FileKind.RequireRegular(file, "model file");
        IWeightSource src = TorchCheckpoint.LooksLikeTorch(file) ? new TorchCheckpointSource(TorchCheckpoint.Open(file))
                                                                 : new OfficialSafeTensorsSource(SafeTensorsFile.Open(file));
        return (src, config);
    }

    /// <summary>True when `path` (file, or folder with config.json) holds an STDiT (blocks.0.attn_temp.qkv.weight).</summary>
    public static bool IsSTDiT(string path)
    {
        try
        {
            if (Directory.Exists(path) && !File.Exists(Path.Combine(path, ConfigName))) return false;
            var (src, _) = Open(path);
            using (src as IDisposable) return STDiTConfig.IsSTDiT(src);
        }
        catch (Kernels.InputException) { return false; }
    }

    /// <summary>The configuration for the weights: config.json when there is one, else the shapes; checked against every tensor.</summary>
    public static STDiTConfig Configure(IWeightSource src, string? configPath, STDiTConfig.VideoOptions o)
    {
        var cfg = configPath != null ? STDiTConfig.Read(configPath, o) : STDiTConfig.FromShapes(src, o);
        cfg.CheckShapes(src);
        return cfg;
    }
}
