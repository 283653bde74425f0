// The library's entry point for PixArt-α (a diffusers-layout folder: transformer/, vae/, and for text text_encoder/ and
// tokenizer/): prompts in, images and latents out, on one device.
//
//   using var pipe = PixArtPipeline.Load("models/pixart", DeviceKind.Auto);     // bf16 GEMMs on CUDA, fp32 on the CPU
//   var captions = pipe.Encode("a red fox in snow");                            // tokenizer + T5 on the same device
//   var result = pipe.Sample(captions, PixArtPipeline.DefaultOptions);          // DPM-Solver++ 2M, 20 steps, cfg 4.5
//   var images = pipe.Images(result);
// Sample takes the captions beside the options (they are its Conditioning); Encode loads the T5 encoder for the call and
// frees it. Precomputed features (a --prompt-embeds file) come in through PromptEmbeds.Load.
using BlockDance.Kernels;
using BlockDance.Transformer;
using BlockDance.Transformer.Tokenizers;

namespace BlockDance.Sampling;

public sealed class PixArtPipeline : IDisposable
{
    bool ownsDevice;

    public ComputeDevice Device { get; }
    public PixArt Model { get; }
    public PixArtConfig Config => Model.PixArtConfig;
    public string Folder { get; }
    /// <summary>The VAE decoder file (null when the folder has none: latents only).</summary>
    public string? VaePath { get; }

    /// <summary>diffusers' PixArt-α defaults: DPM-Solver++ 2M (its linspace timesteps), 20 steps, guidance 4.5 on every ε channel.</summary>
    public static SamplingOptions DefaultOptions { get; } = new()
    {
        Steps = 20,
        Sampler = SamplerKind.DpmSolver2M,
        Cfg = 4.5f,
        CfgChannels = CfgChannels.All,
    };

    PixArtPipeline(ComputeDevice device, PixArt model, string folder, string? vaePath)
    {
        (Device, Model, Folder, VaePath) = (device, model, folder, vaePath);
    }

    /// <summary>Loads the folder's transformer on a new device of `device` kind at `precision` (default: bf16 on CUDA,
    /// fp32 on the CPU accelerator; logged), with the VAE at `vaePath` or in the folder's vae/.</summary>
    public static PixArtPipeline Load(string folder, DeviceKind device = DeviceKind.Auto, Precision? precision = null, string? vaePath = null)
    {
        var dev = Devices.Create(device, precision);
        try
        {
            var pipe = Load(folder, dev, vaePath);
            pipe.ownsDevice = true;
            return pipe;
        }
        catch
        {
            dev.Dispose();
            throw;
        }
    }

    /// <summary>Loads on a device the caller owns (and disposes), at the device's precision: the same path as the DiT's
    /// (every weight checked for NaN/Inf, layers at the device's precision).</summary>
    public static PixArtPipeline Load(string folder, ComputeDevice device, string? vaePath = null)
    {
        var model = PixArt.Load(device, folder);
        return new PixArtPipeline(device, model, folder, ModelLoader.FindVae(folder, vaePath));
    }

    /// <summary>What the folder's model needs on the device (MemoryPlan), from its config and header alone.</summary>
    public static ModelFootprint Footprint(string folder, PixArtConfig cfg, int captionTokens)
    {
        using var w = new PixArtWeights(folder);
        return ModelFootprint.Of(cfg, w.Elements, captionTokens);
    }

    /// <summary>The prompt (and, under guidance, the negative prompt: "" by default, as diffusers) as captions, by the
    /// folder's tokenizer and T5 on this pipeline's device.</summary>
    public PromptEmbeds Encode(string prompt, string? negative = "", int maxLength = T5Tokenizer.PixArtMaxLength, string? variant = null) =>
        TextEncoding.Captions(Device, Folder, prompt, negative, Config.CaptionChannels, maxLength, variant);

    /// <summary>One sample per prompt row of `captions`; o's Classes are not used.</summary>
    public SamplingResult Sample(PromptEmbeds captions, SamplingOptions o) => SamplingSession.Run(Model, new Captions(captions), o);

    /// <summary>The latents decoded by the VAE (ModelException when the folder has none).</summary>
    public Pixels Pixels(SamplingResult result) => SampleImages.ToPixels(Device, VaePath, result);

    public IReadOnlyList<SampleImage> Images(SamplingResult result) => SampleImages.Images(Pixels(result));

    public void Dispose()
    {
        Model.Dispose();
        if (ownsDevice) Device.Dispose();
    }
}
