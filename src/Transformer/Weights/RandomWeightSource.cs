// Random weights in the real shapes of a DiT config (benchmarks of e.g. DiT-XL/2 without the
// checkpoint). Seeded and deterministic; scaled 1/√fan_in so activations stay finite.
namespace BlockDance.Transformer;

public sealed class RandomWeightSource : IWeightSource
{
    readonly Dictionary<string, long[]> shapes = new();
    readonly int seed;

    public RandomWeightSource(DiTConfig cfg, int seed = 0)
    {
        this.seed = seed;
        int d = cfg.Hidden, p = cfg.Patch;
        void Lin(string k, int o, int i) { shapes[k + ".weight"] = [o, i]; shapes[k + ".bias"] = [o]; }
        shapes["x_embedder.proj.weight"] = [d, cfg.InChannels, p, p];
        shapes["x_embedder.proj.bias"] = [d];
        Lin("t_embedder.mlp.0", d, 256);
        Lin("t_embedder.mlp.2", d, d);
        shapes["y_embedder.embedding_table.weight"] = [cfg.NumClasses + 1, d];
        for (int b = 0; b < cfg.Depth; b++)
        {
            Lin($"blocks.{b}.attn.qkv", 3 * d, d);
            Lin($"blocks.{b}.attn.proj", d, d);
            Lin($"blocks.{b}.mlp.fc1", cfg.MlpHidden, d);
            Lin($"blocks.{b}.mlp.fc2", d, cfg.MlpHidden);
            Lin($"blocks.{b}.adaLN_modulation.1", 6 * d, d);
        }
        Lin("final_layer.adaLN_modulation.1", 2 * d, d);
        Lin("final_layer.linear", p * p * cfg.OutChannels, d);
        Metadata = new Dictionary<string, string> { ["num_heads"] = cfg.Heads.ToString() };
    }

    /// <summary>Random weights for any model given its tensors' shapes by official key (the STDiT: STDiTConfig.ExpectedShapes).</summary>
    public RandomWeightSource(IEnumerable<(string Key, long[] Shape)> tensors, int heads, int seed = 0)
    {
        this.seed = seed;
        foreach (var (k, s) in tensors) shapes[k] = s;
        Metadata = new Dictionary<string, string> { ["num_heads"] = heads.ToString() };
    }

    public string Origin => "random weights";
    public IReadOnlyDictionary<string, string> Metadata { get; }
    public bool Has(string key) => shapes.ContainsKey(key);
    public IEnumerable<string> Keys => shapes.Keys;
    public long[] ShapeOf(string key) => shapes.TryGetValue(key, out var s) ? s : throw new ModelException($"random weights: no tensor '{key}'");

    public float[] Read(string key, params long[] expectedShape)
    {
        var s = ShapeOf(key);
        if (!s.SequenceEqual(expectedShape)) throw new ModelException($"random weights: '{key}' is [{string.Join(", ", s)}], expected [{string.Join(", ", expectedShape)}]");
        long n = s.Aggregate(1L, (a, b) => a * b);
        float scale = s.Length > 1 ? 1f / MathF.Sqrt(n / s[0]) : 0.02f;
        var rng = new Random(seed ^ StableHash(key)); // string.GetHashCode is randomized per process
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)(rng.NextDouble() * 2 - 1) * scale * 1.7f; // uniform, std ≈ scale
        return a;
    }

    static int StableHash(string s)
    {
        uint h = 2166136261; // FNV-1a
        foreach (char c in s) { h ^= c; h *= 16777619; }
        return (int)h;
    }
}
