// Activation buffers of one VAE decode, allocated once for a (batch, latent size) and reused.
// X0/X1 carry the feature map from layer to layer (ping-pong); T1/T2 are the temporaries inside a
// ResnetBlock2D / the attention; all four hold the largest feature map of the decode (at 256 px:
// 256 ch × 256 × 256 after up_blocks.2's upsampler, 67 MB per image).
using BlockDance.Kernels;

namespace BlockDance.Transformer.Vae;

public sealed class VaeWorkspace : IDisposable
{
    public ComputeDevice Device { get; }
    public int Batch { get; }
    public int LatentHeight { get; }
    public int LatentWidth { get; }
    public Tensor X0, X1;      // (N, C, H, W) stage inputs/outputs, reshaped per stage
    public Tensor T1, T2;      // temporaries of the largest feature map size
    public Tensor Qkv;         // (N, h·w, 3C) of the mid-block attention
    public Tensor Scratch;     // GroupNorm partial statistics
    public Tensor Image;       // (N, 3, H_img, W_img) decoded pixels in [0, 255]

    public VaeWorkspace(ComputeDevice dev, int batch, int h, int w, long maxFeature, long qkv, long scratch, int[] imageShape)
    {
        Device = dev;
        Batch = batch;
        LatentHeight = h;
        LatentWidth = w;
        X0 = Tensor.Allocate(dev, "vae_x0", batch, (int)(maxFeature / batch));
        X1 = Tensor.Allocate(dev, "vae_x1", batch, (int)(maxFeature / batch));
        T1 = Tensor.Allocate(dev, "vae_t1", batch, (int)(maxFeature / batch));
        T2 = Tensor.Allocate(dev, "vae_t2", batch, (int)(maxFeature / batch));
        Qkv = Tensor.Allocate(dev, "vae_qkv", batch, (int)(qkv / batch));
        Scratch = Tensor.Allocate(dev, "vae_groupnorm_scratch", (int)scratch);
        Image = Tensor.Allocate(dev, "vae_image", imageShape);
    }

    public long Bytes => new[] { X0, X1, T1, T2, Qkv, Scratch, Image }.Sum(t => t.Bytes);

    public void Dispose()
    {
        foreach (var t in new[] { X0, X1, T1, T2, Qkv, Scratch, Image }) t.Dispose();
    }
}
