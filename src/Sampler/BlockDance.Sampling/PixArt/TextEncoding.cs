// Prompt text → T5 caption features, the library's path from text (used by PixArtPipeline.Encode and by the program's
// `encode` and `sample --prompt`). The folder is diffusers' PixArt layout: text_encoder/ (config.json + sharded
// safetensors and their index) and tokenizer/spiece.model; a text_encoder/ folder itself works too, with the tokenizer
// beside it. Tokenizer and shards are checked before the device does any work; the encoder runs on the caller's
// device and is freed (logged) before this returns, so a transformer loaded next has the device to itself.
// An empty prompt is valid: it encodes as the EOS alone (mask [1, 0, …]), what PixArt's pipeline does for its default
// empty negative prompt. Prompts longer than maxLength − 1 tokens are truncated (logged by the tokenizer).
using System.Diagnostics;
using BlockDance.Kernels;
using BlockDance.Transformer;
using BlockDance.Transformer.T5;
using BlockDance.Transformer.Tokenizers;

namespace BlockDance.Sampling;

/// <summary>T5 features of each text, row b = texts[b]: (B, L, D) on the host, with the token masks.</summary>
public sealed record EncodedText(float[] Embeds, IReadOnlyList<T5Tokens> Tokens, int Length, int Dim)
{
    public float[] Row(int b) => Embeds.AsSpan(b * Length * Dim, Length * Dim).ToArray();
    public long[] Mask(int b) => Tokens[b].Mask.Select(m => (long)m).ToArray();
    /// <summary>Row b as a caption set of one caption.</summary>
    public CaptionSet Caption(int b) => Captions(b, 1);
    /// <summary>Rows first..first + count − 1 as one caption set.</summary>
    public CaptionSet Captions(int first, int count) => new(
        Embeds.AsSpan(first * Length * Dim, count * Length * Dim).ToArray(),
        Enumerable.Range(first, count).SelectMany(b => Tokens[b].Mask.Select(m => (float)m)).ToArray(), count, Length, Dim);
}

public static class TextEncoding
{
    /// <summary>Checks, without the device, that `folder` holds a T5 encoder (variant: a weight variant such as fp16)
    /// and its tokenizer; returns the encoder folder and the tokenizer file.</summary>
    public static (string EncoderDir, string Tokenizer) Resolve(string folder, string? variant = null)
    {
        if (!Directory.Exists(folder)) throw new InvalidValueException("text encoder folder", "a folder (PixArt layout)", $"no folder {folder}");
        if (variant is not null && (variant.Length == 0 || variant.Any(c => !char.IsAsciiLetterOrDigit(c))))
            throw new InvalidValueException("weight variant", "a name such as fp16", $"'{variant}'");
        string encoderDir = T5Encoder.ResolveFolder(folder);
        T5Encoder.Probe(encoderDir, variant);
        return (encoderDir, FindTokenizer(folder, encoderDir));
    }

    /// <summary>Tokenizes and encodes `texts` with the folder's T5 on `dev`; the encoder is freed before this returns.</summary>
    public static EncodedText Encode(ComputeDevice dev, string folder, IReadOnlyList<string> texts,
        int maxLength = T5Tokenizer.PixArtMaxLength, string? variant = null)
    {
        if (maxLength < 1) throw new InvalidValueException("maximum prompt length", "≥ 1 token", $"{maxLength}");
        var (encoderDir, tokenizerPath) = Resolve(folder, variant);
        var tokenizer = T5Tokenizer.Load(tokenizerPath);
        var tokens = new List<T5Tokens>();
        foreach (var text in texts)
        {
            if (text.Length == 0) Log.Info("empty prompt: encoded as the EOS token alone (mask [1, 0, …])");
            tokens.Add(tokenizer.Encode(text, maxLength));
        }
        T5Output output;
        int dim;
        using (var encoder = T5Encoder.Load(dev, encoderDir, variant, MemoryPlan.Budget(dev)))
        {
            Console.WriteLine($"text encoder: {encoderDir}");
            Console.WriteLine($"       {encoder.Config}");
            dim = encoder.Config.DModel;
            var t = Stopwatch.StartNew();
            output = encoder.Encode(tokens);
            dev.Synchronize();
            Console.WriteLine($"encoded {tokens.Count} prompt(s) × {maxLength} tokens in {t.Elapsed.TotalSeconds:F2} s " +
                              $"({encoder.Flops(tokens.Count, maxLength) / 1e9:F2} GFLOP)");
        }
        using (output)
            return new EncodedText(output.Embeddings.ToHost(), tokens, maxLength, dim);
    }

    /// <summary>The prompt (and, when given, the negative prompt) as PixArt-α captions of `captionChannels` width.</summary>
    public static PromptEmbeds Captions(ComputeDevice dev, string folder, string prompt, string? negative, int captionChannels,
        int maxLength = T5Tokenizer.PixArtMaxLength, string? variant = null)
        => Captions(dev, folder, [prompt], negative, captionChannels, maxLength, variant);

    /// <summary>The prompts, one caption each in order (and, when given, the one negative prompt every sample is guided
    /// against), encoded in one batch, as captions of `captionChannels` width.</summary>
    public static PromptEmbeds Captions(ComputeDevice dev, string folder, IReadOnlyList<string> prompts, string? negative,
        int captionChannels, int maxLength = T5Tokenizer.PixArtMaxLength, string? variant = null)
    {
        if (prompts.Count == 0) throw new InvalidValueException("prompts", "at least one prompt", "none");
        var texts = negative is null ? prompts.ToArray() : [.. prompts, negative];
        var e = Encode(dev, folder, texts, maxLength, variant);
        if (e.Dim != captionChannels)
            throw new InvalidValueException("text encoder width", $"{captionChannels} (the transformer's caption_channels)", $"{e.Dim}");
        return new PromptEmbeds(e.Captions(0, prompts.Count), negative is null ? null : e.Caption(prompts.Count));
    }

    /// <summary>tokenizer/spiece.model of the PixArt folder, or beside the text_encoder folder.</summary>
    static string FindTokenizer(string folder, string encoderDir)
    {
        foreach (var dir in new[] { Path.Combine(folder, "tokenizer"), Path.Combine(Path.GetDirectoryName(Path.GetFullPath(encoderDir))!, "tokenizer") })
            if (File.Exists(Path.Combine(dir, "spiece.model"))) return Path.Combine(dir, "spiece.model");
        throw new InvalidValueException($"{folder}", "tokenizer/spiece.model (the T5 SentencePiece model) in the PixArt folder", "none");
    }
}
