// Every value a checkpoint carries is checked before the model uses it, so that a well-formed file
// with impossible values (a zero or negative size, a tensor of the wrong rank, a gap in the block
// indices, integer bytes labelled as weights, a head count that does not divide D) is one ModelException
// naming the tensor or field, what was expected and what was found — never a division by zero, an
// index out of range inside a kernel, or a model that silently runs with fewer blocks.
//
// The checks only read the header (shapes, dtypes, metadata); the values themselves (NaN/Inf) are
// checked on the device as they are uploaded (FiniteWeightCheck).
using System.Globalization;

namespace BlockDance.Transformer;

public static class ModelValidation
{
    /// <summary>Weights are read as float32 from these storage types; integer tensors are never weights.</summary>
    public static readonly string[] FloatDTypes = ["F32", "F16", "BF16"];

    /// <summary>Largest latent/pixel side accepted (DiT-XL/2 at 512 px has a 64×64 latent; 16384 leaves room).</summary>
    public const int MaxInputSize = 16384;

    /// <summary>The shape of `key`, required to have `rank` dimensions, each at least 1 and within int range.</summary>
    public static long[] Shape(IWeightSource src, string key, int rank, string layout)
    {
        var s = src.ShapeOf(key);
        if (s.Length != rank || s.Any(x => x < 1 || x > int.MaxValue))
            throw new ModelException($"{src.Origin}: tensor '{key}': expected shape {layout} ({rank} dimensions, each ≥ 1), found {Format(s)}");
        return s;
    }

    /// <summary>
    /// Depth = number of blocks, from the indices of every `blocks.i.*` key: they must be 0..depth−1 without a gap
    /// (a file missing blocks.2.* is an error, not a 2-block model that ignores blocks 3..5).
    /// </summary>
    public static int Depth(IWeightSource src)
    {
        var indices = new SortedSet<int>();
        foreach (var k in src.Keys)
        {
            if (!k.StartsWith("blocks.", StringComparison.Ordinal)) continue;
            int dot = k.IndexOf('.', 7);
            var part = dot < 0 ? k[7..] : k[7..dot];
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out var i) || i > 100_000)
                throw new ModelException($"{src.Origin}: tensor '{k}': expected a block key blocks.<index>.…, found index '{part}'");
            indices.Add(i);
        }
        if (indices.Count == 0) throw new ModelException($"{src.Origin}: no blocks found (expected blocks.0.attn.qkv.weight)");
        int depth = indices.Max + 1;
        if (indices.Count != depth)
        {
            var missing = Enumerable.Range(0, depth).Where(i => !indices.Contains(i)).ToList();
            static string List(IEnumerable<int> xs) { var l = xs.ToList(); return string.Join(", ", l.Take(8)) + (l.Count > 8 ? $", … ({l.Count} in all)" : ""); }
            throw new ModelException($"{src.Origin}: blocks: expected contiguous indices 0..{depth - 1}, found a gap: block {List(missing)} " +
                                     $"missing (present: {List(indices)})");
        }
        return depth;
    }

    /// <summary>The head count from --heads or the file's metadata: a positive divisor of D, checked before any division.</summary>
    public static int? Heads(IWeightSource src, int? headsOverride, int hidden)
    {
        if (headsOverride is int h)
        {
            if (h < 1 || hidden % h != 0)
                throw new ModelException($"head count: expected a positive divisor of the hidden size D = {hidden}, found {h}");
            return h;
        }
        if (!src.Metadata.TryGetValue("num_heads", out var text)) return null;
        if (!int.TryParse(text, NumberStyles.Integer, CultureInfo.InvariantCulture, out var m) || m < 1 || hidden % m != 0)
            throw new ModelException($"{src.Origin}: metadata num_heads: expected a positive divisor of the hidden size D = {hidden}, found '{text}'");
        return m;
    }

    /// <summary>Every tensor the DiT reads, with its shape for this config (pos_embed only when the source stores it).</summary>
    public static IEnumerable<(string Key, long[] Shape)> ExpectedTensors(DiTConfig cfg, bool hasPosEmbed)
    {
        long d = cfg.Hidden, p = cfg.Patch;
        IEnumerable<(string, long[])> Lin(string k, long o, long i) => [(k + ".weight", [o, i]), (k + ".bias", [o])];
        yield return ("x_embedder.proj.weight", [d, cfg.InChannels, p, p]);
        yield return ("x_embedder.proj.bias", [d]);
        if (hasPosEmbed) yield return ("pos_embed", [1, cfg.Tokens, d]);
        foreach (var t in Lin("t_embedder.mlp.0", d, 256)) yield return t;   // 256 = TimestepEmbedding.Dim (frequency features)
        foreach (var t in Lin("t_embedder.mlp.2", d, d)) yield return t;
        yield return ("y_embedder.embedding_table.weight", [cfg.NumClasses + 1, d]);
        for (int b = 0; b < cfg.Depth; b++)
        {
            foreach (var t in Lin($"blocks.{b}.attn.qkv", 3 * d, d)) yield return t;
            foreach (var t in Lin($"blocks.{b}.attn.proj", d, d)) yield return t;
            foreach (var t in Lin($"blocks.{b}.mlp.fc1", cfg.MlpHidden, d)) yield return t;
            foreach (var t in Lin($"blocks.{b}.mlp.fc2", d, cfg.MlpHidden)) yield return t;
            foreach (var t in Lin($"blocks.{b}.adaLN_modulation.1", 6 * d, d)) yield return t;
        }
        foreach (var t in Lin("final_layer.adaLN_modulation.1", 2 * d, d)) yield return t;
        foreach (var t in Lin("final_layer.linear", p * p * cfg.OutChannels, d)) yield return t;
    }

    /// <summary>Checks every tensor the model will read — present, the shape the config implies, a float dtype —
    /// before anything is allocated, so a bad file fails in milliseconds with the first offending tensor named.</summary>
    public static void CheckTensors(IWeightSource src, DiTConfig cfg)
    {
        foreach (var (key, shape) in ExpectedTensors(cfg, src.Has("pos_embed")))
        {
            var found = src.ShapeOf(key);   // a ModelException naming the key when missing
            if (!found.SequenceEqual(shape))
                throw new ModelException($"{src.Origin}: tensor '{key}': expected shape {Format(shape)} for {cfg.Name} " +
                                         $"(depth {cfg.Depth}, D {cfg.Hidden}), found {Format(found)}");
            var dtype = src.DTypeOf(key);
            if (!FloatDTypes.Contains(dtype))
                throw new ModelException($"{src.Origin}: tensor '{key}': expected a float dtype ({string.Join(", ", FloatDTypes)}), found {dtype}");
        }
    }

    public static string Format(IEnumerable<long> shape) => $"[{string.Join(", ", shape)}]";
}
