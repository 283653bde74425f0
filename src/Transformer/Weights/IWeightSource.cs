// Where model weights come from. The model asks by OFFICIAL key name (blocks.3.attn.qkv.weight);
// a source maps that to its own file layout (official safetensors, or the diffusers folder where
// qkv is split into to_q/to_k/to_v and pos_embed is not stored).
namespace BlockDance.Transformer;

public interface IWeightSource
{
    /// <summary>Human-readable origin, used in messages (file or folder path).</summary>
    string Origin { get; }
    IReadOnlyDictionary<string, string> Metadata { get; }
    bool Has(string officialKey);
    /// <summary>Shape of a tensor, or a ModelException naming the key if it is missing.</summary>
    long[] ShapeOf(string officialKey);
    /// <summary>Reads a tensor as float32, checking its shape; mismatches are ModelExceptions naming key, expected and found.</summary>
    float[] Read(string officialKey, params long[] expectedShape);
    /// <summary>All official keys this source provides (for inspect).</summary>
    IEnumerable<string> Keys { get; }
    /// <summary>Storage dtype of a tensor as the file labels it ("F32", "F16", "BF16", "I32", …); weights must be float.</summary>
    string DTypeOf(string officialKey) => "F32";
}
