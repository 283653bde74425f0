// What `sample` and `analyze` run, for any model kind: everything the user gave, read and checked against the model's
// header before any device work (one line, exit 2), then loaded through the library (DiTPipeline, PixArtPipeline) on
// one device. A model kind contributes its option reading (ForDiT, ForPixArt) and its loader; the rest — device, memory
// plan, session, outputs — is the same code.
//   DiT      --class labels, the DiT defaults (DDIM, 50 steps, cfg 4 on the official channels)
//   PixArt-α --prompt-embeds FILE [--negative FILE] or --prompt TEXT [--negative-prompt TEXT]; diffusers' defaults
//            (DPM-Solver++ 2M, 20 steps, cfg 4.5 on every ε channel); BlockDance's window is the paper's [0.40, 0.95)
//   STDiT    Open-Sora 1.0 (video): --prompt-embeds FILE or --prompt TEXT, the video options (--frames, --image-size,
//            --fps, …); the unconditional half is the model's null caption; Open-Sora's defaults (IDDPM, 100 steps,
//            cfg 7 on the first 3 ε channels); BlockDance's window is the paper's [0.25, 0.95); samples (C, T, H, W)
using BlockDance.Kernels;
using BlockDance.Sampler.Cli;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;
using BlockDance.Transformer.Tokenizers;
using BlockDance.Transformer.Vae;

namespace BlockDance.Sampler.Commands;

public sealed class ModelRun
{
    static readonly string[] PixArtOnly = ["prompt-embeds", "negative", "prompt", "negative-prompt", "max-length", "variant"];

    public required string ModelPath { get; init; }
    /// <summary>The block stack as the model seam describes it (depth, tokens, width, the samples it takes), read from the
    /// model's files; its name and description for the console and the report.</summary>
    public required BlockShape Shape { get; init; }
    public required string Name { get; init; }
    public required string ConfigText { get; init; }
    public required SamplingOptions Options { get; init; }
    /// <summary>Samples the run draws (known before the device starts).</summary>
    public required int Samples { get; init; }
    /// <summary>The conditioning, given the device (a --prompt is encoded on it, before the transformer loads).</summary>
    public required Func<ComputeDevice, Conditioning> Conditioning { get; init; }
    public required Func<ComputeDevice, Conditioning, ModelFootprint> Footprint { get; init; }
    public required Func<ComputeDevice, IBlockModel> Load { get; init; }
    public string? VaePath { get; init; }
    public bool Latent { get; init; }
    /// <summary>Where the conditioning came from, for the output's metadata: (key, value).</summary>
    public (string Key, string Value) Source { get; init; }
    public bool IsPixArt { get; init; }
    /// <summary>The prompt texts of a --prompt run, one per sample in order; null when the captions came as features.</summary>
    public IReadOnlyList<string>? Prompts { get; init; }
    /// <summary>A video model (STDiT): samples (C, T, H, W), written by VideoWriter at Fps.</summary>
    public bool IsVideo { get; init; }
    public int Fps { get; init; }
    /// <summary>One sample's shape: (C, H, W), or (C, T, H, W) for a video model.</summary>
    public int[] SampleShape => Shape.Sample;

    /// <summary>The kind of model a --model path names (from its files, no device).</summary>
    public static ModelKind KindOf(string modelPath) =>
        STDiTWeights.IsSTDiT(modelPath) ? ModelKind.STDiT : PixArtConfig.IsPixArtFolder(modelPath) ? ModelKind.PixArt : ModelKind.DiT;

    public ModelKind Kind => IsVideo ? ModelKind.STDiT : IsPixArt ? ModelKind.PixArt : ModelKind.DiT;

    public static ModelRun For(Args a, string modelPath)
    {
        if (STDiTWeights.IsSTDiT(modelPath)) return ForSTDiT(a, modelPath);
        foreach (var opt in (string[])["step-noise", .. VideoOptions.Names])
            if (a.Has(opt)) throw new UsageException($"--{opt}: expected an Open-Sora 1.0 STDiT model (video), found {modelPath}");
        return PixArtConfig.IsPixArtFolder(modelPath) ? ForPixArt(a, modelPath) : ForDiT(a, modelPath);
    }

    public static ModelRun ForDiT(Args a, string modelPath)
    {
        foreach (var opt in PixArtOnly)
            if (a.Has(opt)) throw new UsageException($"--{opt}: expected a text-conditional PixArt-α folder (--model DIR with transformer/config.json), found the class-conditional DiT {modelPath} (use --class)");
        var src = ModelLoader.OpenSource(modelPath);
        try
        {
            var cfg = CommonOptions.DetectConfig(a, src);
            var opts = CommonOptions.Sampling(a, cfg) with { Policy = CommonOptions.Cache(a, cfg) };
            bool latent = SampleImages.IsLatent(cfg.InChannels);
            string? vaePath = latent ? ModelLoader.FindVae(modelPath, a.Get("vae")) : null;
            if (vaePath != null) VaeWeights.Preflight(vaePath);   // config and header checked before sampling, not after
            if (!latent && a.Has("vae")) throw new UsageException($"--vae: this is a {cfg.InChannels}-channel pixel-space model; it needs no VAE");
            var classes = new ClassLabels(opts.Classes);
            return new ModelRun
            {
                ModelPath = modelPath, Shape = cfg.Shape, Name = cfg.Name, ConfigText = cfg.ToString(), Options = opts, Samples = opts.Classes.Count,
                Conditioning = _ => classes,
                Footprint = (_, _) => ModelFootprint.Of(cfg),
                Load = dev =>
                {
                    try { return DiTPipeline.Load(modelPath, dev, src, cfg, vaePath).Model; }
                    finally { (src as IDisposable)?.Dispose(); }
                },
                VaePath = vaePath, Latent = latent, Source = ("classes", string.Join(",", opts.Classes)),
            };
        }
        catch
        {
            (src as IDisposable)?.Dispose();
            throw;
        }
    }

    /// <summary>The prompts as the run's log shows them: "a", "b".</summary>
    static string Quoted(IReadOnlyList<string> texts) => string.Join(", ", texts.Select(t => $"\"{t}\""));

    public static ModelRun ForPixArt(Args a, string modelPath)
    {
        a = a.ForModel(ModelKind.PixArt);   // PixArt-α's defaults (Opts): 20 steps, DPM-Solver++ 2M, cfg 4.5, window [0.40, 0.95)
        if (a.Has("class")) throw new UsageException($"--class: expected --prompt-embeds FILE or --prompt TEXT for the text-conditional PixArt-α model {modelPath}, found --class");
        foreach (var opt in new[] { "heads", "cfg-channels", "batch" })
            if (a.Has(opt)) throw new UsageException($"--{opt}: not a PixArt-α setting (heads come from transformer/config.json, guidance covers every ε channel, the memory plan sets the batch)");
        bool text = a.Has("prompt");
        if (text && (a.Has("prompt-embeds") || a.Has("negative")))
            throw new UsageException("--prompt: expected either --prompt TEXT [--negative-prompt TEXT] or --prompt-embeds FILE [--negative FILE], found both");
        if (!text && (a.Has("negative-prompt") || a.Has("max-length") || a.Has("variant")))
            throw new UsageException("--negative-prompt/--max-length/--variant: expected with --prompt TEXT (the text encoder runs), found without");
        var embedsPath = text ? null : a.Get("prompt-embeds") ?? throw new UsageException(
            $"--prompt-embeds: expected --prompt TEXT or a safetensors file with '{PromptEmbeds.Embeds}' (and masks) for the PixArt-α model {modelPath}, found neither");
        if (embedsPath != null) FileKind.RequireRegular(embedsPath, "--prompt-embeds");
        if (a.Get("negative") is string np) FileKind.RequireRegular(np, "--negative");

        var cfg = PixArtConfig.Read(modelPath);
        PixArt.Preflight(modelPath, cfg);
        var dflt = PixArtPipeline.DefaultOptions;
        var opts = CommonOptions.SamplerSettings(a, dflt) with
        {
            Cfg = (float)a.GetDouble("cfg"),
            Seed = (ulong)a.GetInt("seed"),
            Policy = CommonOptions.Cache(a, cfg.Shape),
        };

        Func<ComputeDevice, Conditioning> conditioning;
        (string, string) source;
        int samples = 1;
        if (embedsPath != null)
        {
            var prompts = PromptEmbeds.Load(embedsPath, a.Get("negative"), cfg.CaptionChannels);
            if (opts.Cfg > 1 && prompts.Negative is null)
                throw new UsageException($"--prompt-embeds {embedsPath}: guidance {opts.Cfg} needs the unconditional captions: expected '{PromptEmbeds.NegEmbeds}' " +
                                         "in the file or --negative FILE, found neither (or pass --cfg 1)");
            Console.WriteLine($"prompts: {embedsPath}: {prompts.Prompts.Count} × {prompts.Prompts.Tokens} tokens" +
                              (prompts.Negative is { } ng ? $", negative {ng.Count} × {ng.Tokens}" : ""));
            var captions = new Captions(prompts);
            samples = captions.Count;
            conditioning = _ => captions;
            source = ("prompt_embeds", Path.GetFileName(embedsPath));
        }
        else
        {
            // --prompt TEXT: tokenizer → T5 (the folder's text_encoder/ and tokenizer/) on the run's device, before the
            // transformer loads; with guidance the negative caption is --negative-prompt, default "" (as diffusers).
            var texts = a.GetAll("prompt");
            string prompt = Quoted(texts);
            samples = texts.Count;
            string? negative = opts.Cfg > 1 ? a.Get("negative-prompt") ?? "" : a.Get("negative-prompt");
            int maxLength = a.GetInt("max-length", orElse: T5Tokenizer.PixArtMaxLength);
            string? variant = EncodeCommand.Variant(a);
            EncodeCommand.Resolve(modelPath, variant);                                   // checked before the device starts
            conditioning = dev =>
            {
                try
                {
                    var prompts = TextEncoding.Captions(dev, modelPath, texts, negative, cfg.CaptionChannels, maxLength, variant);
                    Console.WriteLine($"prompts: --prompt {prompt}: {prompts.Prompts.Count} × {prompts.Prompts.Tokens} tokens" +
                                      (prompts.Negative is { } ng ? $", negative {ng.Count} × {ng.Tokens}" : ""));
                    return new Captions(prompts);
                }
                catch (InvalidValueException e) when (e.Message.StartsWith("text encoder width", StringComparison.Ordinal))
                { throw new UsageException($"--prompt: {e.Message}"); }
            };
            source = ("prompt", string.Join("|", texts));
        }
        // A 1- or 3-channel folder is a pixel-space model (the text-to-image demo): no VAE, the output is the image.
        bool latent = SampleImages.IsLatent(cfg.InChannels);
        if (!latent && a.Has("vae")) throw new UsageException($"--vae: this is a {cfg.InChannels}-channel pixel-space model; it needs no VAE");
        string? vaePath = latent ? ModelLoader.FindVae(modelPath, a.Get("vae")) : null;
        if (vaePath != null) VaeWeights.Preflight(vaePath);   // config and header checked before sampling, not after
        return new ModelRun
        {
            ModelPath = modelPath, Shape = cfg.Shape, Name = "PixArt-α", ConfigText = cfg.ToString(), Options = opts, Samples = samples,
            Conditioning = conditioning,
            Footprint = (_, c) => PixArtPipeline.Footprint(modelPath, cfg, ((Captions)c).Prompts.Prompts.Tokens),
            Load = dev => PixArtPipeline.Load(modelPath, dev, vaePath).Model,
            VaePath = vaePath, Latent = latent, Source = source, IsPixArt = true, Prompts = a.Has("prompt") ? a.GetAll("prompt") : null,
        };
    }

    public static ModelRun ForSTDiT(Args a, string modelPath)
    {
        a = a.ForModel(ModelKind.STDiT);   // Open-Sora 1.0's defaults (Opts): 100 steps, IDDPM, cfg 7 on the official channels, window [0.25, 0.95)
        foreach (var opt in new[] { "class", "batch", "negative", "negative-prompt" })
            if (a.Has(opt)) throw new UsageException($"--{opt}: not an Open-Sora 1.0 setting (text-conditional; the memory plan sets the batch; the unconditional half is the model's null caption)");
        bool text = a.Has("prompt");
        if (text && a.Has("prompt-embeds"))
            throw new UsageException("--prompt: expected either --prompt TEXT or --prompt-embeds FILE, found both");
        if (!text && (a.Has("max-length") || a.Has("variant")))
            throw new UsageException("--max-length/--variant: expected with --prompt TEXT (the text encoder runs), found without");
        var embedsPath = text ? null : a.Get("prompt-embeds") ?? throw new UsageException(
            $"--prompt-embeds: expected --prompt TEXT or a safetensors file with '{PromptEmbeds.Embeds}' (and masks) for the text-conditional model {modelPath}, found neither");
        if (embedsPath != null) FileKind.RequireRegular(embedsPath, "--prompt-embeds");

        var video = VideoOptions.From(a);
        var (src, config) = STDiTWeights.Open(modelPath);
        STDiTConfig cfg;
        float[] nullCaption;
        using (src as IDisposable)
        {
            cfg = STDiTWeights.Configure(src, config, video);
            nullCaption = src.Read("y_embedder.y_embedding", cfg.MaxTokens, cfg.CaptionChannels);   // the unconditional caption
        }
        var opts = CommonOptions.SamplerSettings(a, STDiTPipeline.DefaultOptions) with
        {
            Cfg = (float)a.GetDouble("cfg"),
            CfgChannels = a.GetChoice<CfgChannels>("cfg-channels"),
            Seed = (ulong)a.GetInt("seed"),
        };
        opts = opts with { Policy = CommonOptions.Cache(a, cfg.Shape) };

        Func<CaptionSet, Captions> withNull = p => new Captions(new PromptEmbeds(p, opts.Cfg > 1 ? STDiTPipeline.NullCaptions(p, nullCaption, cfg) : null));
        Func<ComputeDevice, Conditioning> conditioning;
        (string, string) source;
        int samples = 1;
        if (embedsPath != null)
        {
            var prompts = PromptEmbeds.Load(embedsPath, null, cfg.CaptionChannels).Prompts;
            Console.WriteLine($"prompts: {embedsPath}: {prompts.Count} × {prompts.Tokens} tokens");
            var captions = withNull(prompts);
            samples = captions.Count;
            conditioning = _ => captions;
            source = ("prompt_embeds", Path.GetFileName(embedsPath));
        }
        else
        {
            var texts = a.GetAll("prompt");
            string prompt = Quoted(texts);
            samples = texts.Count;
            int maxLength = a.GetInt("max-length", orElse: cfg.MaxTokens);   // Open-Sora encodes to model_max_length
            string? variant = EncodeCommand.Variant(a);
            EncodeCommand.Resolve(modelPath, variant);                                   // checked before the device starts
            conditioning = dev =>
            {
                try
                {
                    var prompts = TextEncoding.Captions(dev, modelPath, texts, null, cfg.CaptionChannels, maxLength, variant).Prompts;
                    Console.WriteLine($"prompts: --prompt {prompt}: {prompts.Count} × {prompts.Tokens} tokens");
                    return withNull(prompts);
                }
                catch (InvalidValueException e) when (e.Message.StartsWith("text encoder width", StringComparison.Ordinal))
                { throw new UsageException($"--prompt: {e.Message}"); }
            };
            source = ("prompt", string.Join("|", texts));
        }
        // A 1- or 3-channel STDiT is a pixel-space model (the text-to-video demo): no VAE, its output is the frames.
        bool latent = SampleImages.IsLatent(cfg.InChannels);
        if (!latent && a.Has("vae")) throw new UsageException($"--vae: this is a {cfg.InChannels}-channel pixel-space model; it needs no VAE");
        string? vaePath = latent ? ModelLoader.FindVae(Directory.Exists(modelPath) ? modelPath : Path.GetDirectoryName(Path.GetFullPath(modelPath))!, a.Get("vae")) : null;
        if (vaePath != null) VaeWeights.Preflight(vaePath);   // config and header checked before sampling, not after
        return new ModelRun
        {
            ModelPath = modelPath, Shape = cfg.Shape, Name = cfg.Name, ConfigText = cfg.ToString(), Options = opts, Samples = samples,
            Conditioning = conditioning,
            Footprint = (dev, c) => STDiTPipeline.Footprint(cfg, ((Captions)c).Prompts.Prompts.Tokens, dev),
            Load = dev => STDiTPipeline.Load(modelPath, dev, video).Model,
            VaePath = vaePath, Latent = latent, Source = source, IsVideo = true, Prompts = a.Has("prompt") ? a.GetAll("prompt") : null, Fps = VideoOptions.Fps(a),
        };
    }
}
