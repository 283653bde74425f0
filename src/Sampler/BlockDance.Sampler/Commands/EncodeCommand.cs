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
// (logged), as it would be before a transformer loads. The encoding itself is the library's (TextEncoding).
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
        var prompts = a.GetAll("prompt");
        if (prompts.Count == 0) throw new UsageException("encode: expected --prompt TEXT (\"\" for the empty prompt)");
        int n = prompts.Count;
        string? negative = a.Get("negative-prompt");
        string folder = a.Get("model") ?? throw new UsageException("encode: expected --model DIR (a PixArt folder with text_encoder/ and tokenizer/)");
        string outPath = a.Get("out")!;
        if (!outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase))
            throw new UsageException($"--out {outPath}: expected a .safetensors file name");
        AtomicFile.CheckWritable(outPath, "--out");
        AtomicFile.CheckNotInput(outPath, "--out", folder, "the model folder");   // never overwrite a weight shard, config or tokenizer
        var sw = Stopwatch.StartNew();
        string[] texts = negative is null ? [.. prompts] : [.. prompts, negative];
        int maxLength = a.GetInt("max-length");
        var variant = Variant(a);
        Resolve(folder, variant);                                   // tokenizer and shards checked before the device starts
        EncodedText e;
        using (var dev = CommonOptions.Device(a))
            e = TextEncoding.Encode(dev, folder, texts, maxLength, variant);
        var pos = new PromptEmbeddings(e.Embeds[..(n * e.Length * e.Dim)], [.. Enumerable.Range(0, n).SelectMany(e.Mask)], n, e.Length, e.Dim);
        var neg = negative is null ? null : new PromptEmbeddings(e.Row(n), e.Mask(n), 1, e.Length, e.Dim);
        var metadata = new Dictionary<string, string>
        {
            ["prompt"] = string.Join("|", prompts), ["negative_prompt"] = negative ?? "", ["max_length"] = e.Length.ToString(),
        };
        AtomicFile.Write(outPath, st => PromptEmbeddingsFile.Write(st, pos, neg, metadata));
        Console.WriteLine($"wrote {outPath}: prompt_embeds ({n}, {e.Length}, {e.Dim}) with {string.Join("/", e.Tokens.Take(n).Select(t => t.Length))} real tokens" +
                          (negative is null ? "" : $", negative_prompt_embeds with {e.Tokens[n].Length}") + $" ({sw.Elapsed.TotalSeconds:F1} s)");
        return 0;
    }

    /// <summary>--variant: a weight variant name such as fp16 (null when not given).</summary>
    public static string? Variant(Args a)
    {
        string? variant = a.Get("variant");
        if (variant is not null && (variant.Length == 0 || variant.Any(c => !char.IsAsciiLetterOrDigit(c))))
            throw new UsageException($"--variant: expected a weight variant name such as fp16, found '{variant}'");
        return variant;
    }

    /// <summary>The library's check of the folder's T5 and tokenizer (TextEncoding.Resolve), in the words of --model.</summary>
    public static void Resolve(string folder, string? variant)
    {
        if (!Directory.Exists(folder)) throw new UsageException($"--model {folder}: expected a folder (PixArt layout), found none");
        try { TextEncoding.Resolve(folder, variant); }
        catch (InvalidValueException e) when (e.Message.Contains("spiece.model", StringComparison.Ordinal))
        {
            throw new UsageException($"--model {e.Message}");
        }
    }
}
