// blockdance sample --model <PixArt-α folder> --prompt-embeds embeds.safetensors [--negative neg.safetensors]
//   [--steps 20] [--sampler dpm++2m|ddim] [--cfg 4.5] [--seed 0] [--noise n.safetensors] [--cache …] --out img.png|x.safetensors
// One image per prompt row of the embeddings file (diffusers' names: prompt_embeds, prompt_attention_mask,
// negative_prompt_embeds, negative_prompt_attention_mask). Defaults are diffusers' PixArt-α pipeline:
// DPM-Solver++ 2M, 20 steps, guidance 4.5 on all ε channels; BlockDance's default window is the paper's
// [0.40, 0.95) for PixArt. Every input is checked before any device work (one line, exit 2).
using System.Text.Json;
using BlockDance.Kernels;
using BlockDance.Sampler.Cli;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;

namespace BlockDance.Sampler.Commands;

public static class PixArtSample
{
    /// <summary>The PixArt options of sample and analyze: config, prompt embeddings and sampling settings, all checked.</summary>
    public static (PixArtConfig Config, PromptEmbeds Prompts, SamplingOptions Options) Options(Args a, string modelPath)
    {
        a = a.ForModel(ModelKind.PixArt);   // PixArt-α's defaults (Opts): 20 steps, DPM-Solver++ 2M, cfg 4.5, window [0.40, 0.95)
        if (a.Has("class")) throw new UsageException($"--class: expected --prompt-embeds FILE for the text-conditional PixArt-α model {modelPath}, found --class");
        foreach (var opt in new[] { "heads", "cfg-channels", "batch" })
            if (a.Has(opt)) throw new UsageException($"--{opt}: not a PixArt-α setting (heads come from transformer/config.json, guidance covers every ε channel, all prompts run as one batch)");
        if (a.Has("prompt") && (a.Has("prompt-embeds") || a.Has("negative")))
            throw new UsageException("--prompt: expected either --prompt TEXT [--negative-prompt TEXT] or --prompt-embeds FILE [--negative FILE], found both");
        if (!a.Has("prompt") && (a.Has("negative-prompt") || a.Has("max-length") || a.Has("variant")))
            throw new UsageException("--negative-prompt/--max-length/--variant: expected with --prompt TEXT (the text encoder runs), found without");
        var embedsPath = a.Has("prompt") ? null : a.Get("prompt-embeds") ?? throw new UsageException(
            $"--prompt-embeds: expected --prompt TEXT or a safetensors file with '{PromptEmbeds.Embeds}' (and masks) for the PixArt-α model {modelPath}, found neither");
        if (embedsPath != null) FileKind.RequireRegular(embedsPath, "--prompt-embeds");
        if (a.Get("negative") is string np) FileKind.RequireRegular(np, "--negative");

        var cfg = PixArtConfig.Read(modelPath);
        PixArt.Preflight(modelPath, cfg);
        var prompts = embedsPath != null ? PromptEmbeds.Load(embedsPath, a.Get("negative"), cfg.CaptionChannels) : EncodePrompt(a, modelPath, cfg);
        int n = prompts.Prompts.Count;
        var opts = PixArtSession.Defaults(n) with
        {
            Steps = a.GetInt("steps"),
            Sampler = a.GetChoice<SamplerKind>("sampler"),
            Spacing = a.GetChoice<Spacing>("spacing"),
            Eta = a.GetDouble("eta"),
            Cfg = (float)a.GetDouble("cfg"),
            Seed = (ulong)a.GetInt("seed"),
            Policy = CommonOptions.Cache(a, cfg.Stack),
            Progress = true,
        };
        if (opts.Cfg > 1 && prompts.Negative is null)
            throw new UsageException($"--prompt-embeds {embedsPath}: guidance {opts.Cfg} needs the unconditional captions: expected '{PromptEmbeds.NegEmbeds}' " +
                                     "in the file or --negative FILE, found neither (or pass --cfg 1)");
        return (cfg, prompts, opts);
    }

    /// <summary>
    /// --prompt TEXT: tokenizer → T5 (the folder's text_encoder/ and tokenizer/) → caption features, in memory. With
    /// guidance the negative caption is --negative-prompt, default "" (as diffusers' PixArt pipeline does); the
    /// encoder is freed before the transformer loads.
    /// </summary>
    static PromptEmbeds EncodePrompt(Args a, string modelPath, PixArtConfig cfg)
    {
        float guidance = (float)a.GetDouble("cfg");
        string prompt = a.Get("prompt")!;
        string? negative = guidance > 1 ? a.Get("negative-prompt") ?? "" : a.Get("negative-prompt");
        var texts = negative is null ? new[] { prompt } : new[] { prompt, negative };
        var e = EncodeCommand.Encode(a, modelPath, texts);
        if (e.Dim != cfg.CaptionChannels)
            throw new UsageException($"--prompt: the text encoder gives {e.Dim}-wide features, the transformer expects caption_channels {cfg.CaptionChannels}");
        CaptionSet Set(int b) => new(e.Row(b), e.Tokens[b].Mask.Select(m => (float)m).ToArray(), 1, e.Length, e.Dim);
        return new PromptEmbeds(Set(0), negative is null ? null : Set(1));
    }

    public static int Run(Args a, string modelPath, string outPath, string ext)
    {
        a = a.ForModel(ModelKind.PixArt);
        var (cfg, prompts, opts) = Options(a, modelPath);
        int n = prompts.Prompts.Count;
        var embedsPath = a.Get("prompt-embeds") ?? $"--prompt \"{a.Get("prompt")}\"";
        if (a.Get("noise") is string noisePath) opts = opts with { InitialNoise = SampleCommand.ReadNoise(noisePath, n, cfg.Stack) };
        string? vaePath = ModelLoader.FindVae(modelPath, a.Get("vae"));
        if (ext == ".png" && vaePath == null)
            throw new UsageException($"--out {outPath}: PixArt-α samples latents and no VAE decoder was found (expected a vae/ folder in {modelPath}, or --vae DIR|FILE); " +
                                     "or write the latents with --out FILE.safetensors");

        using var dev = CommonOptions.Device(a);
        Console.WriteLine($"model: {modelPath}");
        Console.WriteLine($"       {cfg}");
        Console.WriteLine($"prompts: {embedsPath}: {n} × {prompts.Prompts.Tokens} tokens" +
                          (prompts.Negative is { } ng ? $", negative {ng.Count} × {ng.Tokens}" : ""));
        using var model = PixArt.Load(dev, modelPath);
        var result = PixArtSession.Run(model, prompts, opts);

        string wrote;
        var summary = Summary.Of(dev, modelPath, cfg.Stack, opts, result) with { Config = cfg.ToString() };
        var reportPath = a.Get("report");
        using (var outputs = AtomicFile.BeginGroup())
        {
            if (ext == ".png")
            {
                var (pixels, shape, seconds) = SampleCommand.Decode(dev, vaePath!, result.Samples, result.Shape);
                ImageGrid.WritePng(outPath, pixels, shape, lo: 0f, hi: 255f, columns: Math.Min(shape[0], 4));
                wrote = $"wrote {outPath}: {shape[0]} images {shape[2]}×{shape[3]} decoded by the VAE in {seconds:F2} s";
            }
            else
            {
                AtomicFile.Write(outPath, s => SafeTensorsWriter.Write(s, [("sample", result.Shape.Select(x => (long)x).ToArray(), result.Samples)],
                    new Dictionary<string, string> { [a.Has("prompt") ? "prompt" : "prompt_embeds"] = a.Get("prompt") ?? Path.GetFileName(embedsPath), ["seed"] = opts.Seed.ToString(),
                        ["sampler"] = opts.SamplerName, ["steps"] = opts.Steps.ToString(), ["cfg"] = opts.Cfg.ToString("R") }));
                wrote = $"wrote {outPath}: tensor 'sample' {Tensor.ShapeString(result.Shape)} (VAE latents, not pixels: decode with a .png output)";
            }
            if (reportPath != null) AtomicFile.Write(reportPath, s => JsonSerializer.Serialize(s, summary, Summary.Json));
            outputs.Commit();
        }
        Console.WriteLine(wrote);
        summary.Print();
        if (reportPath != null) Console.WriteLine($"report: {reportPath}");
        return 0;
    }
}
