// A DiT in the diffusers layout (DiTTransformer2DModel), as in the Hugging Face repo
// facebook/DiT-XL-2-256: <folder>/transformer/diffusion_pytorch_model.safetensors + config.json
// (and vae/ beside it). The model asks by official key; this source maps each to the diffusers
// key(s) (docs/formats.md), with no transposes and no reordering:
//
//   x_embedder.proj.*                   pos_embed.proj.*
//   pos_embed                           not stored: Has() is false and the DiT computes it
//   t_embedder.mlp.0 / .2               transformer_blocks.0.norm1.emb.timestep_embedder.linear_1 / linear_2
//   y_embedder.embedding_table.weight   transformer_blocks.0.norm1.emb.class_embedder.embedding_table.weight
//                                       (diffusers copies both embedders into every block; block 0's are read,
//                                        the other blocks' copies are checked to be present with the same shapes)
//   blocks.i.adaLN_modulation.1         transformer_blocks.i.norm1.linear
//   blocks.i.attn.qkv                   cat(attn1.to_q, attn1.to_k, attn1.to_v) along dim 0
//   blocks.i.attn.proj                  transformer_blocks.i.attn1.to_out.0
//   blocks.i.mlp.fc1 / fc2              transformer_blocks.i.ff.net.0.proj / ff.net.2
//   final_layer.adaLN_modulation.1      proj_out_1 (shift, scale order as official)
//   final_layer.linear                  proj_out_2
//
// Head count and input size come from config.json (num_attention_heads, sample_size), exposed as the
// metadata "num_heads" and "sample_size" that ModelLoader.DetectConfig reads.
//
// NOTE: only the WEIGHTS are diffusers'. The math stays the official DiT's: diffusers' own forward
// differs numerically (timestep frequencies exp(−ln(10⁴)·k/127) from downscale_freq_shift = 1, and
// eps 1e-5 in the MLP pre-norm instead of 1e-6), so outputs match the official model run on the same
// weights, not diffusers' pipeline bit for bit.
using System.Text.Json;
using BlockDance.Transformer.IO;

namespace BlockDance.Transformer;

public sealed class DiffusersSource : IWeightSource, IDisposable
{
    public const string WeightsName = "diffusion_pytorch_model.safetensors";
    readonly SafeTensorsFile file;
    readonly Dictionary<string, string[]> map = new(StringComparer.Ordinal);   // official key → diffusers key(s), concatenated along dim 0
    readonly Dictionary<string, string> metadata = new(StringComparer.Ordinal);

    public string Origin { get; }
    public IReadOnlyDictionary<string, string> Metadata => metadata;
    public IEnumerable<string> Keys => map.Keys;
    public int Depth { get; }

    /// <summary>True if `folder` is a diffusers model folder (has transformer/) or a transformer folder itself.</summary>
    public static bool IsDiffusersFolder(string folder) =>
        Directory.Exists(Path.Combine(folder, "transformer")) || File.Exists(Path.Combine(folder, "config.json"));

    /// <summary>The transformer folder of a diffusers model folder (folder/transformer, or folder itself when it is one).</summary>
    public static string TransformerFolder(string folder) =>
        Directory.Exists(Path.Combine(folder, "transformer")) ? Path.Combine(folder, "transformer") : folder;

    public DiffusersSource(string folder)
    {
        var dir = TransformerFolder(folder);
        Origin = dir;
        var weights = Path.Combine(dir, WeightsName);
        if (!File.Exists(weights))
        {
            var fp16 = Path.Combine(dir, "diffusion_pytorch_model.fp16.safetensors");
            if (File.Exists(fp16)) weights = fp16;
            else if (File.Exists(Path.Combine(dir, "diffusion_pytorch_model.bin")))
                throw new ModelException($"{dir}: holds only the pickled diffusion_pytorch_model.bin; download the repository's safetensors " +
                                         "variant, or convert the official .pt with tools/convert/convert_dit.py (docs/real-weights.md)");
            else throw new ModelException($"{dir}: no {WeightsName} (expected a diffusers DiT folder with transformer/{WeightsName} and config.json)");
        }
        ReadConfig(Path.Combine(dir, "config.json"));
        FileKind.RequireRegular(weights, "model file");
        file = SafeTensorsFile.Open(weights);
        try
        {
            Depth = BuildMap();
            CheckEmbedderCopies();
        }
        catch
        {
            file.Dispose();
            throw;
        }
        metadata["format"] = "diffusers";
    }

    void ReadConfig(string path)
    {
        if (!File.Exists(path))
            throw new ModelException($"{path}: missing; the diffusers layout does not store pos_embed, so config.json's sample_size is needed for the input size");
        var c = ConfigJson.Read(path, "transformer config.json");   // regular file, size cap, a JSON object
        if (c.Get("num_attention_heads", nullIsAbsent: true) is not null)
            metadata["num_heads"] = c.Int("num_attention_heads", 1, 1024).ToString(System.Globalization.CultureInfo.InvariantCulture);
        metadata["sample_size"] = c.Int("sample_size", 1, ModelValidation.MaxInputSize).ToString(System.Globalization.CultureInfo.InvariantCulture);
        c.String("norm_type", ["ada_norm_zero"], "ada_norm_zero");   // a class-conditional DiT
    }

    int BuildMap()
    {
        void Lin(string official, string diffusers)
        {
            map[official + ".weight"] = [diffusers + ".weight"];
            map[official + ".bias"] = [diffusers + ".bias"];
        }
        const string emb = "transformer_blocks.0.norm1.emb.";
        Lin("x_embedder.proj", "pos_embed.proj");
        Lin("t_embedder.mlp.0", emb + "timestep_embedder.linear_1");
        Lin("t_embedder.mlp.2", emb + "timestep_embedder.linear_2");
        map["y_embedder.embedding_table.weight"] = [emb + "class_embedder.embedding_table.weight"];
        int depth = 0;
        for (; file.Contains($"transformer_blocks.{depth}.attn1.to_q.weight"); depth++)
        {
            string b = $"blocks.{depth}.", d = $"transformer_blocks.{depth}.";
            Lin(b + "adaLN_modulation.1", d + "norm1.linear");
            foreach (var kind in new[] { "weight", "bias" })
                map[$"{b}attn.qkv.{kind}"] = [$"{d}attn1.to_q.{kind}", $"{d}attn1.to_k.{kind}", $"{d}attn1.to_v.{kind}"];
            Lin(b + "attn.proj", d + "attn1.to_out.0");
            Lin(b + "mlp.fc1", d + "ff.net.0.proj");
            Lin(b + "mlp.fc2", d + "ff.net.2");
        }
        if (depth == 0) throw new ModelException($"{file.Path}: no transformer_blocks.0.attn1.to_q.weight: not a diffusers DiT transformer");
        // A gap (transformer_blocks.k.* present for some k > depth) is an error, not a shallower model.
        foreach (var t in file.Tensors)
            if (t.Name.StartsWith("transformer_blocks.", StringComparison.Ordinal) &&
                int.TryParse(t.Name.Split('.')[1], out var k) && k >= depth)
                throw new ModelException($"{file.Path}: transformer_blocks: expected contiguous indices 0..{depth - 1} (block {depth} has no attn1.to_q.weight), " +
                                         $"found '{t.Name}'");
        Lin("final_layer.adaLN_modulation.1", "proj_out_1");
        Lin("final_layer.linear", "proj_out_2");
        return depth;
    }

    /// <summary>diffusers stores the timestep and class embedders once per block (identical copies); block 0's are
    /// read, so the others must at least exist with the same shapes (a truncated or mixed file fails here).</summary>
    void CheckEmbedderCopies()
    {
        string[] parts = ["timestep_embedder.linear_1.weight", "timestep_embedder.linear_1.bias", "timestep_embedder.linear_2.weight",
            "timestep_embedder.linear_2.bias", "class_embedder.embedding_table.weight"];
        foreach (var p in parts)
        {
            var shape0 = DiffusersShape($"transformer_blocks.0.norm1.emb.{p}");
            for (int i = 1; i < Depth; i++)
            {
                var key = $"transformer_blocks.{i}.norm1.emb.{p}";
                if (!file.Contains(key))
                    throw new ModelException($"{file.Path}: missing tensor '{key}' (diffusers copies the embedders into every block; this file looks truncated)");
                if (!file.Get(key).Shape.SequenceEqual(shape0))
                    throw new ModelException($"{file.Path}: tensor '{key}': shape [{string.Join(", ", file.Get(key).Shape)}] differs from block 0's [{string.Join(", ", shape0)}]");
            }
        }
    }

    long[] DiffusersShape(string key)
    {
        if (!file.Contains(key)) throw new ModelException($"{file.Path}: missing tensor '{key}' (diffusers DiT key names expected)");
        return file.Get(key).Shape;
    }

    public bool Has(string officialKey) => map.TryGetValue(officialKey, out var parts) && parts.All(file.Contains);

    public long[] ShapeOf(string officialKey)
    {
        if (!map.TryGetValue(officialKey, out var parts))
            throw new ModelException($"{Origin}: no diffusers counterpart for '{officialKey}'" +
                                     (officialKey == "pos_embed" ? " (the diffusers layout does not store pos_embed; it is computed)" : ""));
        var shape = (long[])DiffusersShape(parts[0]).Clone();
        for (int i = 1; i < parts.Length; i++)
        {
            var s = DiffusersShape(parts[i]);
            if (!s.Skip(1).SequenceEqual(shape.Skip(1)))
                throw new ModelException($"{file.Path}: '{parts[i]}' [{string.Join(", ", s)}] cannot be stacked with '{parts[0]}' for '{officialKey}'");
            shape[0] += s[0];
        }
        return shape;
    }

    /// <summary>The dtype of the part(s): the first that is not float when they differ, so validation names it.</summary>
    public string DTypeOf(string officialKey)
    {
        ShapeOf(officialKey);   // a ModelException when missing
        var dtypes = map[officialKey].Select(k => file.Get(k).DType).ToList();
        return dtypes.FirstOrDefault(t => !ModelValidation.FloatDTypes.Contains(t)) ?? dtypes[0];
    }

    public float[] Read(string officialKey, params long[] expectedShape)
    {
        var found = ShapeOf(officialKey);
        if (!found.SequenceEqual(expectedShape))
            throw new ModelException($"{Origin}: tensor '{officialKey}' (from {string.Join(" + ", map[officialKey])}): " +
                                     $"expected shape [{string.Join(", ", expectedShape)}], found [{string.Join(", ", found)}]");
        var parts = map[officialKey];
        if (parts.Length == 1) return file.ReadFloat32(parts[0]);
        // Row-major concatenation along dim 0 is concatenation of the flat arrays.
        var arrays = parts.Select(file.ReadFloat32).ToArray();
        var result = new float[arrays.Sum(a => (long)a.Length)];
        long offset = 0;
        foreach (var a in arrays) { a.CopyTo(result, offset); offset += a.Length; }
        return result;
    }

    public void Dispose() => file.Dispose();
}
