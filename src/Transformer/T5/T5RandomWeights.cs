// Random weights in the HF key names and shapes of a T5 encoder config (the full-width synthetic check and
// benchmarks without the 19 GB checkpoint). Seeded and deterministic: reading a key twice gives the same
// values. Linear weights uniform with std 1/√fan_in, norm weights 1 ± 0.1, embedding and position bias std 1.
using BlockDance.Kernels;

namespace BlockDance.Transformer.T5;

public sealed class T5RandomWeights : IWeightSource
{
    readonly Dictionary<string, long[]> shapes = new(StringComparer.Ordinal);
    readonly int seed;

    public T5RandomWeights(T5Config cfg, int seed = 0)
    {
        this.seed = seed;
        long d = cfg.DModel, inner = cfg.Inner, f = cfg.DFf;
        shapes["shared.weight"] = [cfg.Vocab, d];
        for (int i = 0; i < cfg.Layers; i++)
        {
            string p = $"encoder.block.{i}.layer.";
            shapes[p + "0.layer_norm.weight"] = [d];
            foreach (var n in new[] { "q", "k", "v" }) shapes[$"{p}0.SelfAttention.{n}.weight"] = [inner, d];
            shapes[p + "0.SelfAttention.o.weight"] = [d, inner];
            if (i == 0) shapes[p + "0.SelfAttention.relative_attention_bias.weight"] = [cfg.NumBuckets, cfg.Heads];
            shapes[p + "1.layer_norm.weight"] = [d];
            shapes[p + "1.DenseReluDense.wi_0.weight"] = [f, d];
            shapes[p + "1.DenseReluDense.wi_1.weight"] = [f, d];
            shapes[p + "1.DenseReluDense.wo.weight"] = [d, f];
        }
        shapes["encoder.final_layer_norm.weight"] = [d];
    }

    public string Origin => "random T5 weights";
    public IReadOnlyDictionary<string, string> Metadata { get; } = new Dictionary<string, string>();
    public IEnumerable<string> Keys => shapes.Keys;
    public bool Has(string key) => shapes.ContainsKey(key);
    public long[] ShapeOf(string key) => shapes.TryGetValue(key, out var s) ? s : throw new ModelException($"random T5 weights: no tensor '{key}'");

    public float[] Read(string key, params long[] expectedShape)
    {
        var s = ShapeOf(key);
        if (!s.SequenceEqual(expectedShape))
            throw new InvalidValueException($"random T5 weights '{key}'", $"shape [{string.Join(", ", expectedShape)}]", $"[{string.Join(", ", s)}]");
        long n = s.Aggregate(1L, (a, b) => a * b);
        bool norm = key.EndsWith("layer_norm.weight", StringComparison.Ordinal);
        bool linear = !norm && key.Contains("Attention.") && !key.Contains("relative") || key.Contains("DenseReluDense");
        float std = linear ? 1f / MathF.Sqrt(s[1]) : norm ? 0.1f : 1f;
        var rng = new Random(seed ^ StableHash(key));
        var a = new float[n];
        const float UniformToStd = 1.7320508f; // uniform on [−1, 1] has std 1/√3
        for (long i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * std * UniformToStd + (norm ? 1f : 0f);
        return a;
    }

    static int StableHash(string s)
    {
        uint h = 2166136261; // FNV-1a (string.GetHashCode is randomized per process)
        foreach (char c in s) { h ^= c; h *= 16777619; }
        return (int)h;
    }
}
