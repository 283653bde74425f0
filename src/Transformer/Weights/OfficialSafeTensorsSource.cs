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

    const string Naming = "official DiT key names, e.g. from tools/convert";
    public long[] ShapeOf(string key) => ModelTensors.ShapeOf(file, key, Naming);
    public string DTypeOf(string key) { ShapeOf(key); return file.Get(key).DType; }
    public float[] Read(string key, params long[] expectedShape) => ModelTensors.Read(file, key, expectedShape, Naming);

    public void Dispose() => file.Dispose();
}
