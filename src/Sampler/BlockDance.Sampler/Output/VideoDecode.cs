// Video latents → pixels, the VAE per frame as Open-Sora 1.0 does (its image VAE sees the frames as a batch):
//   latents (B, C, T, h, w) → frames (B·T, C, h, w) (SwapAxes on the device) → VAE decode in micro-batches of
//   `frameBatch` frames (the decoder's workspace is sized for one micro-batch) → pixels (B, T, 3, 8h, 8w) in [0, 255].
// A pixel-space model's samples (B, C, T, H, W) in [-1, 1] (C = 1 grey or 3 RGB) become the same layout (FromPixels).
using System.Diagnostics;
using BlockDance.Kernels;
using BlockDance.Transformer;
using BlockDance.Transformer.Vae;

namespace BlockDance.Sampler;

public static class VideoDecode
{
    /// <summary>Frames per VAE call: 4 (the image path's chunk), enough to keep the decoder's activations small.</summary>
    public const int DefaultFrameBatch = 4;

    public static (float[] Pixels, int[] Shape, double Seconds) Run(ComputeDevice dev, string vaePath, float[] latents, int[] shape, int frameBatch = DefaultFrameBatch)
    {
        var sw = Stopwatch.StartNew();
        int b = shape[0], c = shape[1], t = shape[2], h = shape[3], w = shape[4];
        using var vae = VaeDecoder.Load(dev, vaePath);
        Console.WriteLine($"vae: {vaePath}: {vae.Describe()}");
        if (vae.LatentChannels != c)
            throw new ModelException($"{vaePath}: the VAE expects {vae.LatentChannels} latent channels, the model produces {c}");
        long per = (long)c * h * w;
        using var video = Tensor.FromHost(dev, "video_latents", latents, b, c, t, h * w);
        using var frames = Tensor.Allocate(dev, "frame_latents", b * t, c, h, w);
        SwapAxes.Run(dev, video.View, frames.View, b, c, t, h * w);                             // (B·T, C, h, w)
        int f = vae.UpscaleFactor, outPer = vae.OutChannels * h * f * w * f, n = b * t;
        var pixels = new float[(long)n * outPer];
        var host = frames.ToHost();                                                              // (B·T, C, h, w)
        int chunk = Math.Max(1, Math.Min(frameBatch, n));
        for (int first = 0; first < n; first += chunk)
        {
            int m = Math.Min(chunk, n - first);
            using var z = Tensor.Allocate(dev, "frame_batch", m, c, h, w);
            z.CopyFromHost(host[(int)(first * per)..(int)((first + m) * per)]);
            vae.Decode(z).ToHost().CopyTo(pixels, (long)first * outPer);
        }
        return (pixels, [b, t, vae.OutChannels, h * f, w * f], sw.Elapsed.TotalSeconds);
    }

    /// <summary>Pixel-space video samples (B, C, T, H, W) in [-1, 1], C = 1 or 3 → pixels (B, T, 3, H, W) in [0, 255].</summary>
    public static (float[] Pixels, int[] Shape, double Seconds) FromPixels(float[] samples, int[] shape)
    {
        int b = shape[0], c = shape[1], t = shape[2], hw = shape[3] * shape[4];
        if (c is not (1 or 3)) throw new ArgumentException($"pixel video with {c} channels (expected 1 or 3)");
        var px = new float[(long)b * t * 3 * hw];
        for (int i = 0; i < b; i++)
            for (int f = 0; f < t; f++)
                for (int ch = 0; ch < 3; ch++)
                {
                    long src = (((long)i * c + (c == 1 ? 0 : ch)) * t + f) * hw, dst = (((long)i * t + f) * 3 + ch) * hw;
                    for (int q = 0; q < hw; q++) px[dst + q] = (Math.Clamp(samples[src + q], -1f, 1f) + 1f) * 127.5f;
                }
        return (px, [b, t, 3, shape[3], shape[4]], 0);
    }
}
