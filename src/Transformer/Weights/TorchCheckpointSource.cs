// A PyTorch .pt checkpoint in the official DiT naming, read directly (the released DiT-XL-2-256x256.pt,
// or a train.py checkpoint whose "ema" weights are used): TorchCheckpoint parses it without running any
// of its pickle. A .pt file carries no num_heads: the loader takes it from the preset with the same shape
// (XL/2 → 16) or from --heads.
using BlockDance.Transformer.IO;

namespace BlockDance.Transformer;

public sealed class TorchCheckpointSource(TorchCheckpoint file) : IWeightSource, IDisposable
{
    public string Origin => file.Path;
    public IReadOnlyDictionary<string, string> Metadata { get; } = new Dictionary<string, string>();
    public bool Has(string key) => file.Contains(key);
    public IEnumerable<string> Keys => file.Names;
    /// <summary>The entry of a training checkpoint the weights came from ("ema", "model"), or null for a bare state dict.</summary>
    public string? Entry => file.Entry;

    public long[] ShapeOf(string key) => file.Contains(key) ? file.Get(key).Shape
        : throw new ModelException($"{file.Path}: missing tensor '{key}' (expected official DiT key names, as in the released checkpoints)");

    public string DTypeOf(string key) { ShapeOf(key); return file.Get(key).Storage.DType; }

    public float[] Read(string key, params long[] expectedShape)
    {
        var found = ShapeOf(key);
        if (!found.SequenceEqual(expectedShape))
            throw new ModelException($"{file.Path}: tensor '{key}': expected shape [{string.Join(", ", expectedShape)}], found [{string.Join(", ", found)}]");
        return file.ReadFloat32(key);
    }

    public void Dispose() => file.Dispose();
}
