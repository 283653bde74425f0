// blockdance encode: prompt → T5 features, written for reuse (e.g. by a PixArt run or diffusers).
//
//   blockdance encode --model <pixart folder> --prompt "a red fox in snow" [--negative-prompt "…"]
//                     [--max-length 120] [--variant fp16] [--device auto|cuda|cpu] --out embeds.safetensors
// The folder is diffusers' PixArt layout: text_encoder/ (config.json + sharded safetensors and their
// index) and tokenizer/spiece.model; a text_encoder/ folder itself works too, with the tokenizer beside it.
// The output holds prompt_embeds (B, L, D) F32 and prompt_attention_mask (B, L) I64 (and negative_* with
// --negative-prompt), the names PixArtAlphaPipeline takes. An empty prompt is valid: it encodes as the EOS
// alone (mask [1, 0, …]), which is what PixArt's pipeline does for the default empty negative prompt.
// Prompts longer than --max-length − 1 tokens are truncated (logged). The encoder is freed after encoding
// (logged), as it would be before a transformer loads.
using System.Diagnostics;
using BlockDance.Kernels;
using BlockDance.Sampler.Cli;
using BlockDance.Transformer.T5;
using BlockDance.Transformer.Tokenizers;

namespace BlockDance.Sampler.Commands;

public static class EncodeCommand
{
    public static int Run(string[] argv)
    {
        var a = Args.Parse("encode", argv);
        string prompt = a.Get("prompt") ?? throw new UsageException("encode: expected --prompt TEXT (\"\" for the empty prompt)");
        string? negative = a.Get("negative-prompt");
        string folder = a.Get("model") ?? throw new UsageException("encode: expected --model DIR (a PixArt folder with text_encoder/ and tokenizer/)");
        string outPath = a.Get("out")!;
        if (!outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            throw new UsageException($"--out {outPath}: expected a .safetensors file name");
        AtomicFile.CheckWritable(outPath, "--out");
        var sw = Stopwatch.StartNew();
        var texts = negative is null ? new[] { prompt } : new[] { prompt, negative };
        var e = Encode(a, folder, texts);
        var pos = new PromptEmbeddings(e.Row(0), e.Mask(0), 1, e.Length, e.Dim);
        var neg = negative is null ? null : new PromptEmbeddings(e.Row(1), e.Mask(1), 1, e.Length, e.Dim);
        var metadata = new Dictionary<string, string>
        {
            ["prompt"] = prompt, ["negative_prompt"] = negative ?? "", ["max_length"] = e.Length.ToString(),
        };
        AtomicFile.Write(outPath, st => PromptEmbeddingsFile.Write(st, pos, neg, metadata));
        Console.WriteLine($"wrote {outPath}: prompt_embeds (1, {e.Length}, {e.Dim}) with {e.Tokens[0].Length} real tokens" +
                          (negative is null ? "" : $", negative_prompt_embeds with {e.Tokens[1].Length}") + $" ({sw.Elapsed.TotalSeconds:F1} s)");
        return 0;
    }

    /// <summary>T5 features of each text, row b = texts[b]: (B, L, D) on the host, with the token masks.</summary>
    public sealed record Encoded(float[] Embeds, IReadOnlyList<T5Tokens> Tokens, int Length, int Dim)
    {
        public float[] Row(int b) => Embeds.AsSpan(b * Length * Dim, Length * Dim).ToArray();
        public long[] Mask(int b) => Tokens[b].Mask.Select(m => (long)m).ToArray();
    }

    /// <summary>
    /// Tokenizes and encodes texts with the PixArt folder's T5 (--max-length, --variant, --device from `a`):
    /// tokenizer and shards are checked before the device starts; the encoder is freed (logged) before this
    /// returns, so a transformer loaded next has the device to itself. Shared by `encode` and `sample --prompt`.
    /// </summary>
    public static Encoded Encode(Args a, string folder, IReadOnlyList<string> texts)
    {
        int maxLength = a.GetInt("max-length");
        if (!Directory.Exists(folder)) throw new UsageException($"--model {folder}: expected a folder (PixArt layout), found none");
        string encoderDir = T5Encoder.ResolveFolder(folder);
        string? variant = a.Get("variant");
        if (variant is not null && (variant.Length == 0 || variant.Any(c => !char.IsAsciiLetterOrDigit(c))))
            throw new UsageException($"--variant: expected a weight variant name such as fp16, found '{variant}'");
        T5Encoder.Probe(encoderDir, variant);
        var tokenizer = T5Tokenizer.Load(FindTokenizer(folder, encoderDir));
        var tokens = new List<T5Tokens>();
        foreach (var text in texts)
        {
            if (text.Length == 0) Log.Info("empty prompt: encoded as the EOS token alone (mask [1, 0, …])");
            tokens.Add(tokenizer.Encode(text, maxLength));
        }

        using var dev = CommonOptions.Device(a);
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
            return new Encoded(output.Embeddings.ToHost(), tokens, maxLength, dim);
    }

    /// <summary>tokenizer/spiece.model of the PixArt folder, or beside the text_encoder folder.</summary>
    static string FindTokenizer(string folder, string encoderDir)
    {
        foreach (var dir in new[] { Path.Combine(folder, "tokenizer"), Path.Combine(Path.GetDirectoryName(Path.GetFullPath(encoderDir))!, "tokenizer") })
            if (File.Exists(Path.Combine(dir, "spiece.model"))) return Path.Combine(dir, "spiece.model");
        throw new UsageException($"--model {folder}: expected tokenizer/spiece.model (the T5 SentencePiece model) in the PixArt folder, found none");
    }
}
