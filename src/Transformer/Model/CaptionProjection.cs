// The caption side that PixArt-α and Open-Sora 1.0's STDiT share (ICaptionModel.SetCaptions): both project the T5
// features of a caption set once, not per step, with the same two-layer MLP and then, per block, to the
// cross-attention keys and values:
//   c (C·L, D)           = fc2(GELU_tanh(fc1(y (C·L, C_cap))))     PixArt: caption_projection; STDiT: y_embedder.y_proj
//   kv_i (C, L, 2D)      = block i's cross-attention kv projection of c
// and keep the key mask (C, L) on the device (1 = real token, 0 = padding).
using BlockDance.Kernels;

namespace BlockDance.Transformer;

public static class CaptionProjection
{
    /// <summary>Checks a caption set: count × tokens × channels features, a count × tokens mask of 0/1 values.</summary>
    public static void Check(float[] y, float[] keepMask, int count, int tokens, int channels)
    {
        if (count < 1 || tokens < 1) throw new InvalidValueException("captions", "at least one caption of at least one token", $"{count} × {tokens}");
        if (y.LongLength != (long)count * tokens * channels)
            throw new InvalidValueException("caption embeddings", $"{count} × {tokens} × {channels} values (the model's caption_channels)", $"{y.LongLength}");
        if (keepMask.LongLength != (long)count * tokens)
            throw new InvalidValueException("caption mask", $"{count} × {tokens} values", $"{keepMask.LongLength}");
        foreach (var v in keepMask)
            if (v != 0f && v != 1f) throw new InvalidValueException("caption mask value", "0 or 1", $"{v}");
    }

    /// <summary>The mask (count, tokens) on the device and each block's keys and values (count, tokens, 2D) of the captions
    /// y (count, tokens, channels) (checked by Check before the caller frees the previous set); the caller owns the tensors.</summary>
    public static (Tensor Keep, Tensor[] Kv) Project(ComputeDevice dev, Linear fc1, Linear fc2, IReadOnlyList<Linear> crossKv,
        float[] y, float[] keepMask, int count, int tokens, int channels, int hidden)
    {
        var keep = Tensor.FromHost(dev, "caption_keep", keepMask, count, tokens);
        int rows = count * tokens;
        using var raw = Tensor.FromHost(dev, "captions", y, rows, channels);
        using var h = Tensor.Allocate(dev, "caption_hidden", rows, hidden);
        using var c = Tensor.Allocate(dev, "caption_features", rows, hidden);
        fc1.Forward(raw, h, rows, Epilogue.Gelu);                                                   // (C·L, D)
        fc2.Forward(h, c, rows);                                                                    // (C·L, D)
        var kv = new Tensor[crossKv.Count];
        for (int i = 0; i < kv.Length; i++)
        {
            kv[i] = Tensor.Allocate(dev, $"block{i}.caption_kv", count, tokens, 2 * hidden);
            crossKv[i].Forward(c, kv[i], rows);                                                     // (C, L, 2D)
        }
        return (keep, kv);
    }
}
