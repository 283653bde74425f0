// Samples → pictures, shared by both pipelines and the program: latents go through the VAE decoder (a few samples at a
// time, bounded memory), pixel-space samples map [−1, 1] → [0, 255].
using System.Diagnostics;
using BlockDance.Kernels;
using BlockDance.Transformer;
using BlockDance.Transformer.Vae;

namespace BlockDance.Sampling;

/// <summary>One image, pixels row-major and interleaved (H, W, C), 8 bits per channel.</summary>
public sealed record SampleImage(int Width, int Height, int Channels, byte[] Pixels);

/// <summary>Decoded pixels (N, C, H, W) in [Lo, Hi].</summary>
public sealed record Pixels(float[] Values, int[] Shape, float Lo, float Hi, double Seconds);

public static class SampleImages
{
    public const int DecodeChunk = 4;

    /// <summary>Whether samples of `channels` channels are VAE latents (not 1- or 3-channel pixels).</summary>
    public static bool IsLatent(int channels) => channels is not (1 or 3);

    /// <summary>Latents (N, 4, h, w) → pixels (N, 3, 8h, 8w) in [0, 255] by the VAE decoder file `vaePath`.</summary>
    public static Pixels Decode(ComputeDevice dev, string vaePath, float[] latents, int[] shape)
    {
        var sw = Stopwatch.StartNew();
        using var vae = VaeDecoder.Load(dev, vaePath);
        Console.WriteLine($"vae: {vaePath}: {vae.Describe()}");
        if (vae.LatentChannels != shape[1])
            throw new ModelException($"{vaePath}: the VAE expects {vae.LatentChannels} latent channels, the model produces {shape[1]}");
        int n = shape[0], per = shape[1] * shape[2] * shape[3];
        int f = vae.UpscaleFactor, outPer = vae.OutChannels * shape[2] * f * shape[3] * f;
        var pixels = new float[(long)n * outPer];
        for (int first = 0; first < n; first += DecodeChunk)
        {
            int b = Math.Min(DecodeChunk, n - first);
            using var z = Tensor.FromHost(dev, "latent", latents[(first * per)..((first + b) * per)], b, shape[1], shape[2], shape[3]);
            vae.Decode(z).ToHost().CopyTo(pixels, (long)first * outPer);
        }
        return new Pixels(pixels, [n, vae.OutChannels, shape[2] * f, shape[3] * f], 0f, 255f, sw.Elapsed.TotalSeconds);
    }

    /// <summary>The samples of a run as pixels: decoded when they are latents (vaePath needed), else as they are.</summary>
    public static Pixels ToPixels(ComputeDevice dev, string? vaePath, SamplingResult result)
    {
        if (!IsLatent(result.Shape[1])) return new Pixels(result.Samples, result.Shape, -1f, 1f, 0);
        return Decode(dev, vaePath ?? throw new ModelException(
            $"{result.Shape[1]}-channel latents need a VAE decoder for images; none was given or found beside the model"), result.Samples, result.Shape);
    }

    /// <summary>Pixels as 8-bit images, one per sample.</summary>
    public static IReadOnlyList<SampleImage> Images(Pixels p)
    {
        int n = p.Shape[0], c = p.Shape[1], h = p.Shape[2], w = p.Shape[3];
        var images = new SampleImage[n];
        for (int i = 0; i < n; i++)
        {
            var px = new byte[h * w * c];
            for (int ch = 0; ch < c; ch++)
                for (int q = 0; q < h * w; q++)
                    px[q * c + ch] = (byte)Math.Clamp(Math.Round((p.Values[((long)i * c + ch) * h * w + q] - p.Lo) / (p.Hi - p.Lo) * 255.0), 0, 255);
            images[i] = new SampleImage(w, h, c, px);
        }
        return images;
    }
}
