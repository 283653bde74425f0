// The library's entry point for a .NET user: load a DiT (an official-key .safetensors file or a diffusers
// folder), sample with a cache policy, get the samples as tensors or 8-bit images, and the run's
// accounting (SamplingResult: blocks computed and skipped per sample, FLOPs, time). The `blockdance`
// program is built on the same pieces (SamplingSession, the cache policies of src/Cache).
//
//   using var pipe = DiTPipeline.Load("models/dit_mnist.safetensors", DeviceKind.Cpu);
//   var result = pipe.Sample(new SamplingOptions { Classes = [3, 5], Policy = () => new BlockDancePolicy(new(N: 2)) });
//   var images = pipe.Images(result);
using BlockDance.Kernels;
using BlockDance.Transformer;
using BlockDance.Transformer.Vae;

namespace BlockDance.Sampler;

/// <summary>One image, pixels row-major and interleaved (H, W, C), 8 bits per channel.</summary>
public sealed record SampleImage(int Width, int Height, int Channels, byte[] Pixels);

public sealed class DiTPipeline : IDisposable
{
    readonly bool ownsDevice;
    readonly string? vaePath;
    VaeDecoder? vae;

    public ComputeDevice Device { get; }
    public DiT Model { get; }
    public DiTConfig Config => Model.Config;

    DiTPipeline(ComputeDevice device, bool ownsDevice, DiT model, string? vaePath)
    {
        (Device, this.ownsDevice, Model, this.vaePath) = (device, ownsDevice, model, vaePath);
    }

    /// <summary>Loads the model at `modelPath` on a new device of the given kind. A latent model (4 channels)
    /// finds its VAE decoder at `vaePath` or in a vae/ folder beside the model (needed only by Images).</summary>
    public static DiTPipeline Load(string modelPath, DeviceKind device = DeviceKind.Auto, string? vaePath = null, int? heads = null)
    {
        var dev = ComputeDevice.Create(device);
        try { return Load(modelPath, dev, vaePath, heads, ownsDevice: true); }
        catch
        {
            dev.Dispose();
            throw;
        }
    }

    /// <summary>Loads the model on a device the caller owns (and disposes).</summary>
    public static DiTPipeline Load(string modelPath, ComputeDevice device, string? vaePath = null, int? heads = null) =>
        Load(modelPath, device, vaePath, heads, ownsDevice: false);

    static DiTPipeline Load(string modelPath, ComputeDevice device, string? vaePath, int? heads, bool ownsDevice)
    {
        var model = ModelLoader.Load(device, modelPath, heads);
        bool latent = model.Config.InChannels is not (1 or 3);
        return new DiTPipeline(device, ownsDevice, model, latent ? ModelLoader.FindVae(modelPath, vaePath) : null);
    }

    /// <summary>Runs the sampling job: samples (N, C, H, W) in SamplingResult.Samples, with its accounting.</summary>
    public SamplingResult Sample(SamplingOptions options) => SamplingSession.Run(Model, options);

    /// <summary>The samples as 8-bit images: pixel-space samples map [−1, 1] → [0, 255]; latents are decoded
    /// by the VAE first (ModelException when the model is latent and no VAE was found).</summary>
    public IReadOnlyList<SampleImage> Images(SamplingResult result)
    {
        var (pixels, shape, lo, hi) = (result.Samples, result.Shape, -1f, 1f);
        if (Config.InChannels is not (1 or 3))
        {
            (pixels, shape) = Decode(result.Samples, result.Shape);
            (lo, hi) = (0f, 255f);
        }
        int n = shape[0], c = shape[1], h = shape[2], w = shape[3];
        var images = new SampleImage[n];
        for (int i = 0; i < n; i++)
        {
            var px = new byte[h * w * c];
            for (int ch = 0; ch < c; ch++)
                for (int p = 0; p < h * w; p++)
                    px[p * c + ch] = (byte)Math.Clamp(Math.Round((pixels[((long)i * c + ch) * h * w + p] - lo) / (hi - lo) * 255.0), 0, 255);
            images[i] = new SampleImage(w, h, c, px);
        }
        return images;
    }

    /// <summary>Latents (N, 4, h, w) → images (N, 3, 8h, 8w) in [0, 255], one sample at a time (bounded memory).</summary>
    (float[] Pixels, int[] Shape) Decode(float[] latents, int[] shape)
    {
        vae ??= VaeDecoder.Load(Device, vaePath ?? throw new ModelException(
            $"a {Config.InChannels}-channel latent model needs a VAE decoder for images; none was given or found beside the model"));
        if (vae.LatentChannels != shape[1])
            throw new ModelException($"the VAE expects {vae.LatentChannels} latent channels, the model produces {shape[1]}");
        int n = shape[0], per = shape[1] * shape[2] * shape[3], f = vae.UpscaleFactor;
        int outPer = vae.OutChannels * shape[2] * f * shape[3] * f;
        var pixels = new float[(long)n * outPer];
        for (int i = 0; i < n; i++)
        {
            using var z = Tensor.FromHost(Device, "latent", latents[(i * per)..((i + 1) * per)], 1, shape[1], shape[2], shape[3]);
            vae.Decode(z).ToHost().CopyTo(pixels, (long)i * outPer);
        }
        return (pixels, [n, vae.OutChannels, shape[2] * f, shape[3] * f]);
    }

    public void Dispose()
    {
        vae?.Dispose();
        Model.Dispose();
        if (ownsDevice) Device.Dispose();
    }
}
