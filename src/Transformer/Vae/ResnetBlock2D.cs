// ResnetBlock2D of the VAE decoder (diffusers; output_scale_factor 1, no time embedding, no dropout
// at inference):
//
//   h   = conv1(SiLU(norm1(x)))            (N, C_out, H, W)
//   h   = conv2(SiLU(norm2(h)))            (N, C_out, H, W)
//   out = shortcut(x) + h                  shortcut = conv_shortcut (1×1) when C_in ≠ C_out, else identity
//
// The final add is fused into conv2 (Conv2d's residual epilogue). Out-of-place: reads x, writes output.
using BlockDance.Kernels;

namespace BlockDance.Transformer.Vae;

public sealed class ResnetBlock2D(string name, GroupNormLayer norm1, Conv2dLayer conv1, GroupNormLayer norm2, Conv2dLayer conv2,
    Conv2dLayer? convShortcut) : IDisposable
{
    public string Name { get; } = name;
    public GroupNormLayer Norm1 { get; } = norm1;         // .norm1          [C_in]
    public Conv2dLayer Conv1 { get; } = conv1;            // .conv1          [C_out, C_in, 3, 3]
    public GroupNormLayer Norm2 { get; } = norm2;         // .norm2          [C_out]
    public Conv2dLayer Conv2 { get; } = conv2;            // .conv2          [C_out, C_out, 3, 3]
    public Conv2dLayer? ConvShortcut { get; } = convShortcut; // .conv_shortcut [C_out, C_in, 1, 1] or none
    public int In => Conv1.In;
    public int Out => Conv2.Out;

    public static ResnetBlock2D Load(ComputeDevice dev, VaeWeights src, string key, int inChannels, int groups)
    {
        var norm1 = GroupNormLayer.Load(dev, src, key + ".norm1", inChannels, groups);
        var conv1 = Conv2dLayer.Load(dev, src, key + ".conv1", inChannels);
        int c = conv1.Out;
        var norm2 = GroupNormLayer.Load(dev, src, key + ".norm2", c, groups);
        var conv2 = Conv2dLayer.Load(dev, src, key + ".conv2", c);
        Conv2dLayer? sc = src.Has(key + ".conv_shortcut.weight") ? Conv2dLayer.Load(dev, src, key + ".conv_shortcut", inChannels) : null;
        if (sc is null && inChannels != conv2.Out)
            throw new ModelException($"{src.Path}: '{key}' maps {inChannels} to {conv2.Out} channels but has no conv_shortcut");
        return new ResnetBlock2D(key, norm1, conv1, norm2, conv2, sc);
    }

    /// <summary>output (n, Out, h, w) = block(input (n, In, h, w)); output must not be input.</summary>
    public void Forward(Tensor input, Tensor output, VaeWorkspace ws, int n, int h, int w)
    {
        long hw = (long)h * w;
        Norm1.Forward(input, ws.T1, ws.Scratch, n, hw, silu: true);        // (N, C_in, H, W)
        Conv1.Forward(ws.T1, ws.T2, n, h, w);                               // (N, C_out, H, W)
        Norm2.Forward(ws.T2, ws.T2, ws.Scratch, n, hw, silu: true);        // (N, C_out, H, W), in place
        Tensor residual = input;
        if (ConvShortcut != null)
        {
            ConvShortcut.Forward(input, output, n, h, w);                   // (N, C_out, H, W)
            residual = output;                                              // conv2 adds onto it in place
        }
        Conv2.Forward(ws.T2, output, n, h, w, residual);                    // (N, C_out, H, W)
    }

    public long Flops(long n, long h, long w) =>
        Conv1.Flops(n, h, w) + Conv2.Flops(n, h, w) + (ConvShortcut?.Flops(n, h, w) ?? 0);

    public long Bytes => Norm1.Bytes + Conv1.Bytes + Norm2.Bytes + Conv2.Bytes + (ConvShortcut?.Bytes ?? 0);

    public void Dispose()
    {
        Norm1.Dispose(); Conv1.Dispose(); Norm2.Dispose(); Conv2.Dispose(); ConvShortcut?.Dispose();
    }
}
