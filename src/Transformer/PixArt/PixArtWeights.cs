// PixArt-α weights as downloaded: <folder>/transformer/diffusion_pytorch_model.safetensors with diffusers key
// names (the official .pth goes through tools/convert/convert_pixart.py first). Every read checks the shape
// the config implies, a float dtype and finite values; a missing tensor, a wrong shape, an integer tensor or a NaN is a
// ModelException naming the key, expected and found. The file's block count must equal num_layers (CheckDepth).
// The official key layout (PixArt.py's state_dict, turned into safetensors by tools/convert/convert_pixart.py) is
// read too: the model asks by diffusers key and this class maps it (docs/pixart.md has the table), taking the
// row slice of a fused tensor where diffusers splits one (attn.qkv → to_q/to_k/to_v, cross_attn.kv_linear → to_k/to_v).
// The split attention projections are merged on load: attn1 to_q | to_k | to_v → one (3D, D) GEMM (the
// official fused qkv, rows [q | k | v]), attn2 to_k | to_v → one (2D, D) GEMM over the captions.
using BlockDance.Transformer.IO;

namespace BlockDance.Transformer;

public sealed class PixArtWeights : IWeightSource, IDisposable
{
    public const string WeightsName = "diffusion_pytorch_model.safetensors";
    readonly SafeTensorsFile file;
    public string Origin { get; }
    /// <summary>True when the file uses the official PixArt key names.</summary>
    public bool Official { get; }

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
        Official = file.Contains("x_embedder.proj.weight");
    }

    public bool Has(string key) => file.Contains(Map(key).Key);
    public IReadOnlyDictionary<string, string> Metadata => file.Metadata;
    /// <summary>The stored tensors' names (the file's own layout).</summary>
    public IEnumerable<string> Keys => file.Tensors.Select(t => t.Name);
    /// <summary>Every element the file stores (the model reads each once).</summary>
    public long Elements => file.Tensors.Sum(t => t.Numel);

    public long[] ShapeOf(string key)
    {
        var (stored, _, parts) = Map(key);
        if (!file.Contains(stored)) throw new ModelException($"{Origin}: tensor '{stored}' missing");
        var shape = (long[])file.Get(stored).Shape.Clone();
        shape[0] /= parts;
        return shape;
    }

    public string DTypeOf(string key) => file.Contains(Map(key).Key) ? file.Get(Map(key).Key).DType : "F32";

    /// <summary>The file's blocks must be exactly the config's num_layers (none ignored, none missing).</summary>
    public void CheckDepth(PixArtConfig cfg) =>
        WeightChecks.CheckBlocks(Origin, file.Tensors.Select(t => t.Name), Official ? "blocks." : "transformer_blocks.", cfg.Depth, "num_layers");

    /// <summary>The stored key for a diffusers key, and which of how many equal row slices of it (0 of 1 = all).</summary>
    (string Key, int Part, int Parts) Map(string key)
    {
        if (!Official) return (key, 0, 1);
        var m = System.Text.RegularExpressions.Regex.Match(key, @"^transformer_blocks\.(\d+)\.(.+)\.(weight|bias)$");
        if (m.Success)
        {
            string b = $"blocks.{m.Groups[1].Value}.", kind = m.Groups[3].Value;
            return m.Groups[2].Value switch
            {
                "attn1.to_q" => (b + "attn.qkv." + kind, 0, 3),
                "attn1.to_k" => (b + "attn.qkv." + kind, 1, 3),
                "attn1.to_v" => (b + "attn.qkv." + kind, 2, 3),
                "attn1.to_out.0" => (b + "attn.proj." + kind, 0, 1),
                "attn2.to_q" => (b + "cross_attn.q_linear." + kind, 0, 1),
                "attn2.to_k" => (b + "cross_attn.kv_linear." + kind, 0, 2),
                "attn2.to_v" => (b + "cross_attn.kv_linear." + kind, 1, 2),
                "attn2.to_out.0" => (b + "cross_attn.proj." + kind, 0, 1),
                "ff.net.0.proj" => (b + "mlp.fc1." + kind, 0, 1),
                "ff.net.2" => (b + "mlp.fc2." + kind, 0, 1),
                var other => (b + other + "." + kind, 0, 1),
            };
        }
        if (key.StartsWith("transformer_blocks.")) return ("blocks." + key["transformer_blocks.".Length..], 0, 1);   // scale_shift_table
        foreach (var (d, o) in Renames)
            if (key.StartsWith(d)) return (o + key[d.Length..], 0, 1);
        return (key, 0, 1);
    }

    static readonly (string Diffusers, string Official)[] Renames =
    [
        ("pos_embed.proj.", "x_embedder.proj."),
        ("adaln_single.emb.timestep_embedder.linear_1.", "t_embedder.mlp.0."),
        ("adaln_single.emb.timestep_embedder.linear_2.", "t_embedder.mlp.2."),
        ("adaln_single.emb.resolution_embedder.linear_1.", "csize_embedder.mlp.0."),
        ("adaln_single.emb.resolution_embedder.linear_2.", "csize_embedder.mlp.2."),
        ("adaln_single.emb.aspect_ratio_embedder.linear_1.", "ar_embedder.mlp.0."),
        ("adaln_single.emb.aspect_ratio_embedder.linear_2.", "ar_embedder.mlp.2."),
        ("adaln_single.linear.", "t_block.1."),
        ("caption_projection.linear_1.", "y_embedder.y_proj.fc1."),
        ("caption_projection.linear_2.", "y_embedder.y_proj.fc2."),
        ("scale_shift_table", "final_layer.scale_shift_table"),
        ("proj_out.", "final_layer.linear."),
    ];

    /// <summary>The tensor `key` as float32, with its shape checked.</summary>
    public float[] Read(string key, params long[] shape)
    {
        var (stored, part, parts) = Map(key);
        var want = (long[])shape.Clone();
        want[0] *= parts;
        if (!file.Contains(stored))
            throw new ModelException($"{Origin}: tensor '{stored}' missing: expected shape [{string.Join(", ", want)}], found no such key");
        var found = file.Get(stored).Shape;
        if (!found.SequenceEqual(want))
            throw new ModelException($"{Origin}: tensor '{stored}': expected shape [{string.Join(", ", want)}], found [{string.Join(", ", found)}]");
        WeightChecks.RequireFloat(Origin, stored, file.Get(stored).DType);
        var all = WeightChecks.RequireFinite(Origin, stored, file.ReadFloat32(stored));
        if (parts == 1) return all;
        long len = all.LongLength / parts;                       // rows [part·n/parts, (part+1)·n/parts) of a row-major tensor
        return all[(int)(part * len)..(int)((part + 1) * len)];
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
