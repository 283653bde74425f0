// The T5 encoder's shape, from the Hugging Face config.json of a text_encoder/ folder.
//
//   XXL (t5-v1_1-xxl, PixArt-α's text encoder): d_model 4096, 24 layers, 64 heads × d_kv 64, d_ff 10240,
//   32 relative-position buckets up to distance 128, eps 1e-6, 32128 embedding rows, gated-gelu.
// d_kv is its own field: heads × d_kv (the attention's inner width) need not equal d_model.
// Only T5 v1.1's gated-GELU feed-forward is implemented (v1.0's plain ReLU FFN is refused with a message).
using System.Text.Json;
using BlockDance.Kernels;

namespace BlockDance.Transformer.T5;

public sealed record T5Config(int DModel, int Layers, int Heads, int DKv, int DFf, int Vocab,
    int NumBuckets = 32, int MaxDistance = 128, float Eps = 1e-6f)
{
    public int Inner => Heads * DKv;

    /// <summary>t5-v1_1-xxl's encoder (what PixArt-α and Open-Sora use).</summary>
    public static readonly T5Config Xxl = new(DModel: 4096, Layers: 24, Heads: 64, DKv: 64, DFf: 10240, Vocab: 32128);

    /// <summary>Parameters of the encoder (embedding, blocks, final norm; no LM head).</summary>
    public long Parameters =>
        (long)Vocab * DModel + (long)NumBuckets * Heads + DModel
        + Layers * (4L * DModel * Inner + 3L * DModel * DFf + 2L * DModel);

    /// <summary>Parameters that live on the device: everything except the embedding table (gathered on the host).</summary>
    public long DeviceParameters => Parameters - (long)Vocab * DModel;

    public override string ToString() =>
        $"T5 encoder: d_model {DModel}, {Layers} layers, {Heads} heads × d_kv {DKv}, d_ff {DFf} (gated-gelu), vocab {Vocab}, " +
        $"{NumBuckets} buckets / max distance {MaxDistance}, {Parameters:N0} parameters";

    public static T5Config FromJson(string path)
    {
        JsonElement root;
        IO.FileKind.RequireRegular(path, "T5 config.json");
        try { root = JsonDocument.Parse(File.ReadAllText(path)).RootElement; }
        catch (JsonException ex) { throw new InvalidValueException(path, "a JSON object (the T5 config)", $"invalid JSON ({ex.Message})"); }
        if (root.ValueKind != JsonValueKind.Object) throw new InvalidValueException(path, "a JSON object (the T5 config)", root.ValueKind.ToString());

        int Int(string key, int? dflt = null)
        {
            if (!root.TryGetProperty(key, out var v))
                return dflt ?? throw new InvalidValueException($"{path} {key}", "an integer", "no such field");
            if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out int i) || i < 1)
                throw new InvalidValueException($"{path} {key}", "a positive integer", v.GetRawText());
            return i;
        }
        string act = root.TryGetProperty("feed_forward_proj", out var f) && f.ValueKind == JsonValueKind.String ? f.GetString()! : "relu";
        if (act != "gated-gelu")
            throw new InvalidValueException($"{path} feed_forward_proj", "\"gated-gelu\" (T5 v1.1, the encoder PixArt uses)", $"\"{act}\"");
        float eps = root.TryGetProperty("layer_norm_epsilon", out var e) && e.ValueKind == JsonValueKind.Number ? e.GetSingle() : 1e-6f;
        if (!(eps > 0 && eps < 1)) throw new InvalidValueException($"{path} layer_norm_epsilon", "a value in (0, 1)", eps.ToString());
        var cfg = new T5Config(
            DModel: Int("d_model"), Layers: Int("num_layers"), Heads: Int("num_heads"), DKv: Int("d_kv"), DFf: Int("d_ff"),
            Vocab: Int("vocab_size"), NumBuckets: Int("relative_attention_num_buckets", 32),
            MaxDistance: Int("relative_attention_max_distance", 128), Eps: eps);
        if (cfg.NumBuckets < 4)
            throw new InvalidValueException($"{path} relative_attention_num_buckets", "at least 4 (two directions, exact and log-spaced halves)", cfg.NumBuckets.ToString());
        return cfg;
    }
}
