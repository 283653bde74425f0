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

    /// <summary>Reads a Hugging Face T5 config.json through IO/ConfigJson: each field the encoder uses is checked for type and a
    /// range that keeps every size product within int (a d_kv of 2^29 or a max distance of 1 is refused, not computed with).</summary>
    public static T5Config FromJson(string path)
    {
        var c = IO.ConfigJson.Read(path, "T5 config.json");
        c.String("feed_forward_proj", ["gated-gelu"], "relu");   // T5 v1.1 (HF's default "relu" is v1.0's FFN, refused)
        c.String("dense_act_fn", ["gelu_new", "gelu_pytorch_tanh"], "gelu_new", nullIsAbsent: true);
        if (c.Has("is_encoder_decoder") || c.Has("model_type")) c.String("model_type", ["t5", "umt5", "mt5"], "t5");
        float eps = (float)c.Number("layer_norm_epsilon", 1e-12, 1e-2, 1e-6);   // fp32 RMSNorm: 1e-6 in every T5; a denormal is a typo
        int dModel = c.Int("d_model", 1, 16384), heads = c.Int("num_heads", 1, 1024), dKv = c.Int("d_kv", 1, 1024);
        if ((long)heads * dKv > 65536) throw c.Error("num_heads", "num_heads × d_kv ≤ 65536", $"{heads} × {dKv}");
        int buckets = c.Int("relative_attention_num_buckets", 4, 1024, 32);
        // Distances past num_buckets/4 are log-spaced up to max_distance (T5RelativePosition): it must lie beyond them.
        int maxDistance = c.Int("relative_attention_max_distance", buckets / 4 + 1, 1 << 20, 128);
        var cfg = new T5Config(
            DModel: dModel, Layers: c.Int("num_layers", 1, 256), Heads: heads, DKv: dKv, DFf: c.Int("d_ff", 1, 262144),
            Vocab: c.Int("vocab_size", 1, 1_000_000), NumBuckets: buckets, MaxDistance: maxDistance, Eps: eps);
        if ((long)cfg.Vocab * cfg.DModel > int.MaxValue)
            throw c.Error("vocab_size", $"vocab_size × d_model ≤ {int.MaxValue} (one host array)", $"{cfg.Vocab} × {cfg.DModel}");
        return cfg;
    }
}
