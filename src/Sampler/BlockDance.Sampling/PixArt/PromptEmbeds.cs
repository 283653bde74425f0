// Precomputed caption features for PixArt-α, under the names diffusers' PixArtAlphaPipeline uses for them
// (so they can be dumped from diffusers, or written by tools/encode_prompt.py from a real T5):
//   prompt_embeds                    (B, L, C_cap)  float (F32, F16, BF16)   T5 last hidden state
//   prompt_attention_mask            (B, L)         I64, I32, BOOL/U8 or float: 1 = real token, 0 = padding
//   negative_prompt_embeds           (1 or B, L', C_cap)                      optional; the unconditional captions
//   negative_prompt_attention_mask   (1 or B, L')
// A missing mask means every token is real. Checks (InvalidValueException, one line): widths against the model's
// caption_channels, mask shapes against the embeddings, mask values 0/1, and no all-zero mask row (a prompt
// must have at least its EOS token; the model would otherwise attend to nothing).
using BlockDance.Kernels;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;

namespace BlockDance.Sampling;

/// <summary>Captions (count, tokens, channels) and their keep mask (count, tokens).</summary>
public sealed record CaptionSet(float[] Embeds, float[] Mask, int Count, int Tokens, int Channels)
{
    /// <summary>Rows first..first + count − 1 as a set of their own.</summary>
    public CaptionSet Rows(int first, int count) => new(
        Embeds[(int)((long)first * Tokens * Channels)..(int)((long)(first + count) * Tokens * Channels)],
        Mask[(first * Tokens)..((first + count) * Tokens)], count, Tokens, Channels);

    /// <summary>The listed rows, in the listed order (a row may repeat), as a set of their own.</summary>
    public CaptionSet Pick(IReadOnlyList<int> rows)
    {
        long row = (long)Tokens * Channels;
        var e = new float[rows.Count * row];
        var m = new float[(long)rows.Count * Tokens];
        for (int i = 0; i < rows.Count; i++)
        {
            if (rows[i] < 0 || rows[i] >= Count) throw new ArgumentOutOfRangeException(nameof(rows), $"caption row {rows[i]} outside 0..{Count - 1}");
            Array.Copy(Embeds, rows[i] * row, e, i * row, row);
            Array.Copy(Mask, (long)rows[i] * Tokens, m, (long)i * Tokens, Tokens);
        }
        return new CaptionSet(e, m, rows.Count, Tokens, Channels);
    }

    /// <summary>Each row's caption summary (count, channels): the mean of its token features under the keep mask,
    /// Σ_l mask_l·e_l / Σ_l mask_l (accumulated in double; an all-masked row gives zeros). What a cache policy sees of a
    /// caption (StepContext.Captions: BlockDance-Ada's decision network reads it beside z_ρ).</summary>
    public float[] MaskedMean()
    {
        var o = new float[(long)Count * Channels];
        var acc = new double[Channels];
        for (int i = 0; i < Count; i++)
        {
            Array.Clear(acc);
            double kept = 0;
            for (int l = 0; l < Tokens; l++)
            {
                float k = Mask[(long)i * Tokens + l];
                if (k == 0) continue;
                kept += k;
                long at = ((long)i * Tokens + l) * Channels;
                for (int c = 0; c < Channels; c++) acc[c] += (double)k * Embeds[at + c];
            }
            for (int c = 0; c < Channels; c++) o[(long)i * Channels + c] = kept > 0 ? (float)(acc[c] / kept) : 0f;
        }
        return o;
    }

    /// <summary>Both sets as one (count₁ + count₂ rows), the shorter padded with masked zero tokens.</summary>
    public static CaptionSet Concat(CaptionSet a, CaptionSet b)
    {
        if (a.Channels != b.Channels) throw new InvalidValueException("negative prompt embeddings width", $"{a.Channels} (as the prompt's)", $"{b.Channels}");
        int l = Math.Max(a.Tokens, b.Tokens), c = a.Channels, n = a.Count + b.Count;
        var e = new float[(long)n * l * c];
        var m = new float[(long)n * l];
        int row = 0;
        foreach (var s in new[] { a, b })
            for (int i = 0; i < s.Count; i++, row++)
            {
                Array.Copy(s.Embeds, (long)i * s.Tokens * c, e, (long)row * l * c, (long)s.Tokens * c);
                Array.Copy(s.Mask, (long)i * s.Tokens, m, (long)row * l, s.Tokens);
            }
        return new CaptionSet(e, m, n, l, c);
    }
}

public sealed record PromptEmbeds(CaptionSet Prompts, CaptionSet? Negative)
{
    public const string Embeds = "prompt_embeds", Mask = "prompt_attention_mask";
    public const string NegEmbeds = "negative_prompt_embeds", NegMask = "negative_prompt_attention_mask";

    /// <summary>Reads the prompts (and the negatives, when the file has them) from `path`; `negativePath` (another
    /// file with prompt_embeds or negative_prompt_embeds) overrides the negatives.</summary>
    public static PromptEmbeds Load(string path, string? negativePath, int captionChannels)
    {
        using var f = SafeTensorsFile.Open(path);
        var prompts = ReadSet(f, path, Embeds, Mask, captionChannels)
            ?? throw new InvalidValueException($"{path}", $"a tensor '{Embeds}' (B, L, {captionChannels})", $"tensors {string.Join(", ", f.Tensors.Select(t => t.Name))}");
        CaptionSet? neg = ReadSet(f, path, NegEmbeds, NegMask, captionChannels);
        if (negativePath != null)
        {
            using var g = SafeTensorsFile.Open(negativePath);
            neg = ReadSet(g, negativePath, NegEmbeds, NegMask, captionChannels) ?? ReadSet(g, negativePath, Embeds, Mask, captionChannels)
                ?? throw new InvalidValueException($"{negativePath}", $"a tensor '{NegEmbeds}' or '{Embeds}'", $"tensors {string.Join(", ", g.Tensors.Select(t => t.Name))}");
        }
        if (neg != null && neg.Count != 1 && neg.Count != prompts.Count)
            throw new InvalidValueException("negative prompt embeddings", $"1 or {prompts.Count} rows (one per prompt)", $"{neg.Count}");
        return new PromptEmbeds(prompts, neg);
    }

    static CaptionSet? ReadSet(SafeTensorsFile f, string path, string embedsName, string maskName, int channels)
    {
        if (!f.Contains(embedsName)) return null;
        var shape = f.Get(embedsName).Shape;
        if (shape.Length != 3 || shape[0] < 1 || shape[1] < 1)
            throw new InvalidValueException($"{path}: '{embedsName}'", "shape (B, L, C) with B, L ≥ 1", $"[{string.Join(", ", shape)}]");
        if (shape[2] != channels)
            throw new InvalidValueException($"{path}: '{embedsName}' width", $"{channels} (the model's caption_channels)", $"{shape[2]}");
        if (f.Get(embedsName).DType is not ("F32" or "F16" or "BF16" or "F64"))
            throw new InvalidValueException($"{path}: '{embedsName}' dtype", "F32, F16 or BF16", f.Get(embedsName).DType);
        int b = (int)shape[0], l = (int)shape[1];
        var e = f.ReadFloat32(embedsName);
        long bad = NonFinite.CountReference(e);
        if (bad > 0) throw new InvalidValueException($"{path}: '{embedsName}'", "finite values", $"{bad} NaN/Inf");
        var m = new float[(long)b * l];
        if (f.Contains(maskName))
        {
            var info = f.Get(maskName);
            if (!info.Shape.SequenceEqual(new long[] { b, l }))
                throw new InvalidValueException($"{path}: '{maskName}' shape", $"[{b}, {l}] (as '{embedsName}')", $"[{string.Join(", ", info.Shape)}]");
            m = f.ReadFloat32(maskName);   // I64, I32, BOOL/U8 or float
            foreach (var v in m)
                if (v != 0 && v != 1) throw new InvalidValueException($"{path}: '{maskName}' value", "0 or 1", $"{v}");
        }
        else Array.Fill(m, 1f);
        for (int i = 0; i < b; i++)
            if (m.AsSpan(i * l, l).IndexOfAnyExcept(0f) < 0)
                throw new InvalidValueException($"{path}: '{maskName}' row {i}", "at least one real token (1)", "all zeros");
        return new CaptionSet(e, m, b, l, channels);
    }
}
