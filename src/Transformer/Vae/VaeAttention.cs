// The VAE mid block's self-attention (diffusers Attention with one head of size C, residual connection):
//
//   h   = GroupNorm(x)                          (N, C, H, W)
//   t   = h viewed as tokens                    (N, H·W, C)     transpose
//   qkv = t · [W_q; W_k; W_v]ᵀ + b              (N, H·W, 3C)    one GEMM: the three Linears are
//                                                                concatenated at load time
//   a   = softmax(q · kᵀ / √C) · v              (N, H·W, C)     Attention.Run, 1 head, head dim C
//   o   = a · W_outᵀ + b_out                    (N, H·W, C)     to_out.0
//   out = x + o viewed back as NCHW             (N, C, H, W)    transpose with the residual fused
//
// Key names: to_q / to_k / to_v / to_out.0 (current diffusers) or query / key / value / proj_attn
// (older conversions, e.g. some sd-vae-ft-* files); group_norm in both. A Linear stored as a 1×1 conv
// [C, C, 1, 1] is accepted too (same numbers).
using BlockDance.Kernels;

namespace BlockDance.Transformer.Vae;

public sealed class VaeAttention(string name, GroupNormLayer norm, Linear qkv, Linear proj) : IDisposable
{
    public string Name { get; } = name;
    public GroupNormLayer GroupNorm { get; } = norm;  // .group_norm                     [C]
    public Linear Qkv { get; } = qkv;                 // cat(.to_q, .to_k, .to_v)         [3C, C]
    public Linear ToOut { get; } = proj;              // .to_out.0                        [C, C]
    public int Channels => ToOut.Out;

    public static VaeAttention Load(ComputeDevice dev, VaeWeights src, string key, int channels, int groups)
    {
        var norm = GroupNormLayer.Load(dev, src, key + ".group_norm", channels, groups);
        int c = channels;
        var w = new float[3 * c * c];
        var b = new float[3 * c];
        string[][] names = [["to_q", "query"], ["to_k", "key"], ["to_v", "value"]];
        for (int i = 0; i < 3; i++)
        {
            var (wi, bi) = ReadLinear(src, src.FirstPresent(key, names[i]), c);
            wi.CopyTo(w, i * c * c);
            bi.CopyTo(b, i * c);
        }
        var qkv = new Linear(Tensor.FromHost(dev, key + ".qkv.weight", w, 3 * c, c), Tensor.FromHost(dev, key + ".qkv.bias", b, 3 * c));
        var outKey = src.FirstPresent(key, "to_out.0", "proj_attn");
        var (wo, bo) = ReadLinear(src, outKey, c);
        var proj = new Linear(Tensor.FromHost(dev, outKey + ".weight", wo, c, c), Tensor.FromHost(dev, outKey + ".bias", bo, c));
        return new VaeAttention(key, norm, qkv, proj);
    }

    static (float[] w, float[] b) ReadLinear(VaeWeights src, string key, int c)
    {
        var shape = src.ShapeOf(key + ".weight");
        long[] expected = shape.Length == 4 ? [c, c, 1, 1] : [c, c];
        return (src.Read(key + ".weight", expected), src.Read(key + ".bias", c));
    }

    /// <summary>output (n, C, h, w) = x + attention(GroupNorm(x)); output must not be input.</summary>
    public void Forward(Tensor input, Tensor output, VaeWorkspace ws, int n, int h, int w)
    {
        var dev = ws.Device;
        int c = Channels, t = h * w;
        GroupNorm.Forward(input, ws.T1, ws.Scratch, n, t, silu: false);                  // (N, C, H·W)
        Transpose.Run(dev, ws.T1.View, ws.T2.View, n, c, t);                              // (N, H·W, C)
        Qkv.Forward(ws.T2, ws.Qkv, n * t);                                                // (N, H·W, 3C)
        Attention.Run(dev, ws.Qkv.View, ws.T1.View, n, t, 1, c, 1f / MathF.Sqrt(c));      // (N, H·W, C)
        ToOut.Forward(ws.T1, ws.T2, n * t);                                               // (N, H·W, C)
        Transpose.Run(dev, ws.T2.View, output.View, n, t, c, input.View);                 // (N, C, H, W) + x
    }

    public long Flops(long n, long h, long w)
    {
        long t = h * w;
        return Qkv.Flops(n * t) + ToOut.Flops(n * t) + Attention.Flops(n, t, 1, Channels);
    }

    public long Bytes => GroupNorm.Bytes + Qkv.Weight.Bytes + Qkv.Bias.Bytes + ToOut.Weight.Bytes + ToOut.Bias.Bytes;

    public void Dispose() { GroupNorm.Dispose(); Qkv.Dispose(); ToOut.Dispose(); }
}
