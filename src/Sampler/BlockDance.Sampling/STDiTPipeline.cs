// The library's entry point for Open-Sora 1.0's STDiT (text-to-video): a .pth / .safetensors file, or a folder with
// config.json beside the weights (and, for text, text_encoder/ and tokenizer/); captions in, (B, C, T, H, W) latents
// out, on one device. The frame count, image size and table scales come from config.json or the VideoOptions.
//
//   using var pipe = STDiTPipeline.Load("models/stdit", DeviceKind.Auto, new(Frames: 16, ImageSize: 256));
//   var result = pipe.Sample(pipe.Encode("a dog running on the beach"), STDiTPipeline.DefaultOptions);
// Guidance runs against the model's learned null caption (y_embedder.y_embedding) with each prompt's mask, as
// Open-Sora 1.0's forward_with_cfg does: there is no negative prompt. The VAE decodes per frame (the program's
// VideoDecode); a video is written by the program's VideoWriter.
using BlockDance.Kernels;
using BlockDance.Transformer;
using BlockDance.Transformer.Tokenizers;

namespace BlockDance.Sampling;

public sealed class STDiTPipeline : IDisposable
{
    bool ownsDevice;

    public ComputeDevice Device { get; }
    public STDiT Model { get; }
    public STDiTConfig Config => Model.VideoConfig;
    public string Path { get; }

    /// <summary>Open-Sora 1.0's inference defaults (configs/opensora/inference): IDDPM with learned-range variance, 100
    /// respaced steps, guidance 7.0 on the first 3 ε channels, [cond, uncond]; BlockDance's window [0.25, 0.95).</summary>
    public static SamplingOptions DefaultOptions { get; } = new()
    {
        Steps = 100,
        Sampler = SamplerKind.Ddpm,
        Cfg = 7f,
        CfgChannels = CfgChannels.Official,
    };

    public static readonly double[] DefaultWindow = [0.25, 0.95];

    STDiTPipeline(ComputeDevice device, STDiT model, string path) => (Device, Model, Path) = (device, model, path);

    /// <summary>Loads the model on a new device of `device` kind at `precision` (default: bf16 on CUDA, fp32 on the CPU; logged).</summary>
    public static STDiTPipeline Load(string path, DeviceKind device = DeviceKind.Auto, STDiTConfig.VideoOptions? options = null, Precision? precision = null)
    {
        var dev = Devices.Create(device, precision);
        try
        {
            var pipe = Load(path, dev, options);
            pipe.ownsDevice = true;
            return pipe;
        }
        catch
        {
            dev.Dispose();
            throw;
        }
    }

    /// <summary>Loads on a device the caller owns (and disposes), at the device's precision.</summary>
    public static STDiTPipeline Load(string path, ComputeDevice device, STDiTConfig.VideoOptions? options = null) =>
        new(device, STDiT.Load(device, path, options), path);

    /// <summary>What the model needs on the device (MemoryPlan), from its config alone; captions of `captionTokens` tokens.</summary>
    public static ModelFootprint Footprint(STDiTConfig cfg, int captionTokens, ComputeDevice dev) =>
        ModelFootprint.Of(cfg, captionTokens, halfWeights: dev.IsCuda && dev.Precision != Precision.Fp32);

    /// <summary>The unconditional half of Open-Sora 1.0: y_embedding (L, C) for every prompt, with that prompt's mask.</summary>
    public static CaptionSet NullCaptions(CaptionSet prompts, float[] yEmbedding, STDiTConfig cfg)
    {
        if (prompts.Tokens != cfg.MaxTokens)
            throw new InvalidValueException("prompt embeddings length", $"{cfg.MaxTokens} tokens (model_max_length: the null caption y_embedding has that many rows)", $"{prompts.Tokens}");
        var e = new float[(long)prompts.Count * yEmbedding.Length];
        for (int i = 0; i < prompts.Count; i++) yEmbedding.CopyTo(e, (long)i * yEmbedding.Length);
        return new CaptionSet(e, (float[])prompts.Mask.Clone(), prompts.Count, prompts.Tokens, prompts.Channels);
    }

    /// <summary>The prompts as captions with the null captions as their unconditional half (when `guided`).</summary>
    public Captions Conditioning(CaptionSet prompts, bool guided) =>
        new(new PromptEmbeds(prompts, guided ? NullCaptions(prompts, Model.NullCaption, Config) : null));

    /// <summary>The prompt through the folder's tokenizer and T5 on this pipeline's device (no negative prompt).</summary>
    public CaptionSet Encode(string prompt, int maxLength = T5Tokenizer.PixArtMaxLength, string? variant = null) =>
        TextEncoding.Captions(Device, Path, prompt, null, Config.CaptionChannels, maxLength, variant).Prompts;

    /// <summary>One video per prompt row of `prompts`.</summary>
    public SamplingResult Sample(CaptionSet prompts, SamplingOptions o) =>
        SamplingSession.Run(Model, Conditioning(prompts, o.Cfg > 1), o);

    public void Dispose()
    {
        Model.Dispose();
        if (ownsDevice) Device.Dispose();
    }
}
