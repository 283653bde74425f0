// The file of a Learning-to-Cache router (tools/train/train_l2c.py): safetensors with tensor "router" (steps, depth, 2)
// float32 θ and the training facts in __metadata__ (method "learning-to-cache", model, steps, lam, train_seconds, …).
// Kept beside the sampling loop so that src/Cache needs no file I/O.
using BlockDance.Cache;
using BlockDance.Transformer.IO;

namespace BlockDance.Sampling;

public static class LearningToCacheFile
{
    public const string Tensor = "router";

    /// <summary>The router as a config at `threshold`; a file that is not a router is a SafeTensorsException naming expected and found.</summary>
    public static LearningToCacheConfig Load(string path, double threshold)
    {
        using var f = SafeTensorsFile.Open(path);
        if (f.Metadata.GetValueOrDefault("method") != "learning-to-cache" || !f.Contains(Tensor))
            throw new SafeTensorsException(path, null, $"expected a Learning-to-Cache router (tensor '{Tensor}', __metadata__ method \"learning-to-cache\"), " +
                                                       $"found tensors {string.Join(", ", f.Tensors.Select(t => t.Name))}");
        var shape = f.Get(Tensor).Shape;
        if (shape.Length != 3 || shape[2] != 2 || shape[0] < 2 || shape[0] > 100_000 || shape[1] < 1 || shape[1] > 4096)
            throw new SafeTensorsException(path, Tensor, $"expected shape (steps, depth, 2), found [{string.Join(", ", shape)}]");
        var theta = f.ReadFloatValues(Tensor);
        return new LearningToCacheConfig(theta, (int)shape[0], (int)shape[1], threshold, path);
    }

    /// <summary>The model file name the router was trained for (metadata "model"), or null.</summary>
    public static string? Model(string path)
    {
        using var f = SafeTensorsFile.Open(path);
        return f.Metadata.GetValueOrDefault("model");
    }
}
