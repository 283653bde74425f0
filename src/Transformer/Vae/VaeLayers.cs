// The VAE's two parametrised layer kinds, holding their weights on the device:
//   Conv2dLayer     weight [C_out, C_in, k, k], bias [C_out]; k = 3 (padding 1) or 1
//   GroupNormLayer  weight (gamma) [C], bias (beta) [C], a group count and eps 1e-6
// Channel counts come from the tensor shapes; the caller passes the channel count it feeds in, so a
// file whose layers do not chain fails at load with the key and both shapes named.
using BlockDance.Kernels;

namespace BlockDance.Transformer.Vae;

public sealed class Conv2dLayer(string name, Tensor weight, Tensor bias, int kernelSize) : IDisposable
{
    public string Name { get; } = name;
    public Tensor Weight { get; } = weight;   // (C_out, C_in·k·k)
    public Tensor Bias { get; } = bias;       // (C_out)
    public int KernelSize { get; } = kernelSize;
    public int Out => Weight.Shape[0];
    public int In => Weight.Shape[1] / (KernelSize * KernelSize);

    /// <summary>Loads `key`.weight/.bias; `inChannels` is what the previous layer produces. `scale` multiplies
    /// the weight (used to fold the latent's 1/0.18215 into post_quant_conv).</summary>
    public static Conv2dLayer Load(ComputeDevice dev, VaeWeights src, string key, int inChannels, float scale = 1f)
    {
        var shape = src.ShapeOf(key + ".weight");
        if (shape.Length != 4 || shape[2] != shape[3] || shape[2] is not (1 or 3))
            throw new ModelException($"{src.Path}: tensor '{key}.weight': expected a 1×1 or 3×3 conv [C_out, C_in, k, k], found [{string.Join(", ", shape)}]");
        if (shape[1] != inChannels)
            throw new ModelException($"{src.Path}: tensor '{key}.weight': expected {inChannels} input channels (the previous layer's output), found [{string.Join(", ", shape)}]");
        int cout = (int)shape[0], k = (int)shape[2];
        var w = src.Read(key + ".weight", shape);
        if (scale != 1f)
            for (int i = 0; i < w.Length; i++) w[i] *= scale;
        return new Conv2dLayer(key, Tensor.FromHost(dev, key + ".weight", w, cout, inChannels * k * k),
            Tensor.FromHost(dev, key + ".bias", src.Read(key + ".bias", cout), cout), k);
    }

    /// <summary>y (n, Out, h, w) = (residual +) conv(x (n, In, h, w)).</summary>
    public void Forward(Tensor x, Tensor y, int n, int h, int w, Tensor? residual = null) =>
        Conv2d.Run(Weight.Device, x.View, Weight.View, Bias.View, y.View, n, In, Out, h, w, KernelSize,
            residual is null ? default : residual.View);

    public long Flops(long n, long h, long w) => Conv2d.Flops(n, In, Out, h, w, KernelSize);
    public long Bytes => Weight.Bytes + Bias.Bytes;

    public void Dispose() { Weight.Dispose(); Bias.Dispose(); }
}

public sealed class GroupNormLayer(string name, Tensor gamma, Tensor beta, int groups) : IDisposable
{
    /// <summary>diffusers' AutoencoderKL passes eps 1e-6 to every GroupNorm (PyTorch's default is 1e-5).</summary>
    public const float Eps = 1e-6f;
    public string Name { get; } = name;
    public Tensor Gamma { get; } = gamma;
    public Tensor Beta { get; } = beta;
    public int Groups { get; } = groups;
    public int Channels => Gamma.Shape[0];

    public static GroupNormLayer Load(ComputeDevice dev, VaeWeights src, string key, int channels, int groups)
    {
        if (channels % groups != 0)
            throw new ModelException($"{src.Path}: '{key}' normalizes {channels} channels, not divisible into {groups} groups " +
                                     "(the group count comes from the file's norm_num_groups metadata or config.json, else 32)");
        return new GroupNormLayer(key, Tensor.FromHost(dev, key + ".weight", src.Read(key + ".weight", channels), channels),
            Tensor.FromHost(dev, key + ".bias", src.Read(key + ".bias", channels), channels), groups);
    }

    /// <summary>y (n, C, hw) = [SiLU](GroupNorm(x)); y may be x.</summary>
    public void Forward(Tensor x, Tensor y, Tensor scratch, int n, long hw, bool silu) =>
        GroupNorm.Run(Gamma.Device, x.View, Gamma.View, Beta.View, y.View, scratch.View, n, Channels, hw, Groups, Eps, silu);

    public long Bytes => Gamma.Bytes + Beta.Bytes;

    public void Dispose() { Gamma.Dispose(); Beta.Dispose(); }
}
