// Shape-checked tensor reads for the model loaders: a missing or mis-shaped tensor is a
// ModelException that names the file, the key, what was expected and what was found.
using BlockDance.Transformer.IO;

namespace BlockDance.Transformer;

internal static class ModelTensors
{
    /// <param name="naming">What key names the file should have, for the message (e.g. "official DiT key names").</param>
    public static long[] ShapeOf(SafeTensorsFile file, string key, string naming) =>
        file.Contains(key) ? file.Get(key).Shape
            : throw new ModelException($"{file.Path}: missing tensor '{key}' (expected {naming})");

    public static float[] Read(SafeTensorsFile file, string key, long[] expectedShape, string naming)
    {
        var found = ShapeOf(file, key, naming);
        if (!found.SequenceEqual(expectedShape))
            throw new ModelException($"{file.Path}: tensor '{key}': expected shape [{string.Join(", ", expectedShape)}], found [{string.Join(", ", found)}]");
        WeightChecks.RequireFloat(file.Path, key, file.Get(key).DType);   // integer tensors are never weights
        return file.ReadFloat32(key);
    }
}
