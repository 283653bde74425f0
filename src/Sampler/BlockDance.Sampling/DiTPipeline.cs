// The library's entry point for a class-conditional DiT: load it (an official-key .safetensors file, a PyTorch .pt,
// or a diffusers folder), sample with a cache policy, get the samples as tensors or 8-bit images, and the run's
// accounting (SamplingResult: blocks computed and skipped per sample, FLOPs, time). The `blockdance` program runs
// its DiT commands through it. PixArtPipeline is the text-conditional twin; both sample through SamplingSession.
//
//   using var pipe = DiTPipeline.Load("models/dit_mnist.safetensors", DeviceKind.Cpu);
//   var result = pipe.Sample(new SamplingOptions { Classes = [3, 5], Policy = () => new BlockDancePolicy(new(N: 2)) });
//   var images = pipe.Images(result);
using BlockDance.Kernels;
using BlockDance.Transformer;

namespace BlockDance.Sampling;

public sealed class DiTPipeline : IDisposable
{
    bool ownsDevice;

    public ComputeDevice Device { get; }
    public DiT Model { get; }
    public DiTConfig Config => Model.Config;
    /// <summary>The VAE decoder file of a latent model (null for pixel-space models, or when none was found).</summary>
    public string? VaePath { get; }

    DiTPipeline(ComputeDevice device, bool ownsDevice, DiT model, string? vaePath)
    {
        (Device, this.ownsDevice, Model, VaePath) = (device, ownsDevice, model, vaePath);
    }

    /// <summary>Loads the model at `modelPath` on a new device of the given kind, at `precision` (default as the
    /// program's: bf16 on CUDA, fp32 on the CPU accelerator; logged). A latent model (4 channels) finds its VAE
    /// decoder at `vaePath` or in a vae/ folder beside the model (needed only by Images).</summary>
    public static DiTPipeline Load(string modelPath, DeviceKind device = DeviceKind.Auto, string? vaePath = null, int? heads = null,
        Precision? precision = null)
    {
        var dev = Devices.Create(device, precision);
        try
        {
            var pipe = Load(modelPath, dev, vaePath, heads);
            pipe.ownsDevice = true;
            return pipe;
        }
        catch
        {
            dev.Dispose();
            throw;
        }
    }

    /// <summary>Loads the model on a device the caller owns (and disposes), at the device's precision.</summary>
    public static DiTPipeline Load(string modelPath, ComputeDevice device, string? vaePath = null, int? heads = null)
    {
        using var src = (IDisposable)ModelLoader.OpenSource(modelPath);
        var cfg = ModelLoader.DetectConfig((IWeightSource)src, heads);
        return Load(modelPath, device, (IWeightSource)src, cfg, vaePath, ownsDevice: false);
    }

    /// <summary>Loads from an opened, validated source (the program checks the header before the device starts).</summary>
    public static DiTPipeline Load(string modelPath, ComputeDevice device, IWeightSource src, DiTConfig cfg, string? vaePath) =>
        Load(modelPath, device, src, cfg, vaePath, ownsDevice: false);

    static DiTPipeline Load(string modelPath, ComputeDevice device, IWeightSource src, DiTConfig cfg, string? vaePath, bool ownsDevice)
    {
        var model = ModelLoader.Create(device, src, cfg);
        bool latent = SampleImages.IsLatent(cfg.InChannels);
        return new DiTPipeline(device, ownsDevice, model, latent ? vaePath ?? ModelLoader.FindVae(modelPath, null) : null);
    }

    /// <summary>Runs the sampling job: samples (N, C, H, W) in SamplingResult.Samples, with its accounting.</summary>
    public SamplingResult Sample(SamplingOptions options) => SamplingSession.Run(Model, options);

    /// <summary>The samples as pixels (decoded by the VAE for a latent model; ModelException when none was found).</summary>
    public Pixels Pixels(SamplingResult result) => SampleImages.ToPixels(Device, VaePath, result);

    /// <summary>The samples as 8-bit images: pixel-space samples map [−1, 1] → [0, 255]; latents are decoded
    /// by the VAE first (ModelException when the model is latent and no VAE was found).</summary>
    public IReadOnlyList<SampleImage> Images(SamplingResult result) => SampleImages.Images(Pixels(result));

    public void Dispose()
    {
        Model.Dispose();
        if (ownsDevice) Device.Dispose();
    }
}
