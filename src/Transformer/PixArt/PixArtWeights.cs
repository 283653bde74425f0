// PixArt-α weights as downloaded: <folder>/transformer/diffusion_pytorch_model.safetensors with diffusers key
// names (the official .pth goes through tools/convert/convert_pixart.py first). Every read checks the shape
// the config implies; a missing tensor or a wrong shape is a ModelException naming the key, expected and found.
// The split attention projections are merged on load: attn1 to_q | to_k | to_v → one (3D, D) GEMM (the
// official fused qkv, rows [q | k | v]), attn2 to_k | to_v → one (2D, D) GEMM over the captions.
using BlockDance.Transformer.IO;

namespace BlockDance.Transformer;

public sealed class PixArtWeights : IDisposable
{
    public const string WeightsName = "diffusion_pytorch_model.safetensors";
    readonly SafeTensorsFile file;
    public string Origin { get; }

    public PixArtWeights(string folder)
    {
        var dir = Directory.Exists(Path.Combine(folder, "transformer")) ? Path.Combine(folder, "transformer") : folder;
        var path = Path.Combine(dir, WeightsName);
        if (!File.Exists(path))
        {
            var fp16 = Path.Combine(dir, "diffusion_pytorch_model.fp16.safetensors");
            if (File.Exists(fp16)) path = fp16;
            else throw new ModelException($"{dir}: PixArt weights missing: expected {WeightsName}, found none" +
                (File.Exists(Path.Combine(dir, "diffusion_pytorch_model.bin")) ? " (a .bin pickle; convert it to safetensors)" : ""));
        }
        file = SafeTensorsFile.Open(path);
        Origin = path;
    }

    public bool Has(string key) => file.Contains(key);

    /// <summary>The tensor `key` as float32, with its shape checked.</summary>
    public float[] Read(string key, params long[] shape)
    {
        if (!file.Contains(key))
            throw new ModelException($"{Origin}: tensor '{key}' missing: expected shape [{string.Join(", ", shape)}], found no such key");
        var found = file.Get(key).Shape;
        if (!found.SequenceEqual(shape))
            throw new ModelException($"{Origin}: tensor '{key}': expected shape [{string.Join(", ", shape)}], found [{string.Join(", ", found)}]");
        return file.ReadFloat32(key);
    }

    /// <summary>Tensors with the same trailing shape concatenated along dim 0 (weights [out, in] or biases [out]).</summary>
    public float[] ReadStacked(string[] keys, params long[] partShape)
    {
        var parts = keys.Select(k => Read(k, partShape)).ToArray();
        var all = new float[parts.Sum(p => (long)p.Length)];
        long at = 0;
        foreach (var p in parts) { p.CopyTo(all, at); at += p.Length; }
        return all;
    }

    public void Dispose() => file.Dispose();
}
