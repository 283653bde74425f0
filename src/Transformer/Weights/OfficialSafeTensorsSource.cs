// A single safetensors file in the official DiT state-dict naming (what tools/convert writes from
// the released .pt, and what the project's own training tool writes).
using BlockDance.Transformer.IO;

namespace BlockDance.Transformer;

public sealed class OfficialSafeTensorsSource(SafeTensorsFile file) : IWeightSource, IDisposable
{
    public string Origin => file.Path;
    public IReadOnlyDictionary<string, string> Metadata => file.Metadata;
    public bool Has(string key) => file.Contains(key);
    public IEnumerable<string> Keys => file.Tensors.Select(t => t.Name);

    public long[] ShapeOf(string key)
    {
        if (!file.Contains(key))
            throw new ModelException($"{file.Path}: missing tensor '{key}' (expected official DiT key names, e.g. from tools/convert)");
        return file.Get(key).Shape;
    }

    public float[] Read(string key, params long[] expectedShape)
    {
        var found = ShapeOf(key);
        if (!found.SequenceEqual(expectedShape))
            throw new ModelException($"{file.Path}: tensor '{key}': expected shape [{string.Join(", ", expectedShape)}], found [{string.Join(", ", found)}]");
        return file.ReadFloat32(key);
    }

    public void Dispose() => file.Dispose();
}
