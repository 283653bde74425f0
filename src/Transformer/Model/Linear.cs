// A Linear layer's weights on the device: y = x · Wᵀ + b, W stored [out, in] as in PyTorch.
// Precision (the device's --precision, read at load time):
//   fp32        W in fp32, Gemm.Run picks the fp32 version for the device (v1 on the CPU, v2/small-M on CUDA).
//   bf16/fp16   on CUDA (sm_80+, In % 8 == 0): W stored in 16 bits only (GemmWeights, half the memory),
//               GEMM v3 on tensor cores (x rounded to 16 bits on the way in, fp32 accumulation and output).
//               Elsewhere (the CPU accelerator, or In % 8 != 0): the same arithmetic emulated — W rounded
//               to 16-bit values once, x rounded before each GEMM, the fp32 kernel multiplies (products of
//               16-bit values are exact in fp32). Logged once per device.
using BlockDance.Kernels;

namespace BlockDance.Transformer;

public sealed class Linear : IDisposable
{
    public Tensor Weight { get; }   // (Out, In); a 1-element placeholder when the weights live in Packed
    public Tensor Bias { get; }     // (Out)
    public int Out { get; }
    public int In { get; }
    /// <summary>16-bit weights for GEMM v3 (null in fp32 and in the emulated 16-bit path).</summary>
    public GemmWeights? Packed { get; }
    /// <summary>Precision of the operands (Fp32, or the 16-bit format emulated/run on tensor cores).</summary>
    public Precision Precision { get; }

    public Linear(Tensor weight, Tensor bias)
    {
        Weight = weight; Bias = bias; Out = weight.Shape[0]; In = weight.Shape[1]; Precision = Precision.Fp32;
    }

    Linear(Tensor weight, Tensor bias, int outF, int inF, GemmWeights? packed, Precision p)
    {
        Weight = weight; Bias = bias; Out = outF; In = inF; Packed = packed; Precision = p;
    }

    public static Linear Load(ComputeDevice dev, IWeightSource src, string key, int outF, int inF) =>
        FromHost(dev, key, src.Read(key + ".weight", outF, inF), src.Read(key + ".bias", outF), outF, inF);

    /// <summary>The layer `key` from host weights w (Out, In) and bias b (Out), stored for the device's precision.</summary>
    public static Linear FromHost(ComputeDevice dev, string key, float[] w, float[] b, int outF, int inF)
    {
        var bias = Tensor.FromHost(dev, key + ".bias", b, outF);
        var p = dev.Precision;
        if (p == Precision.Fp32) return new Linear(Tensor.FromHost(dev, key + ".weight", w, outF, inF), bias);
        if (dev.IsCuda && GemmV3.Supports(dev) && GemmV3.SupportsK(inF))
        {
            Gemm.Chosen(dev, $"gemm: {Name(p)} v3 (tensor cores, weights stored in 16 bits)");
            return new Linear(Tensor.Allocate(dev, key + ".weight(packed)", 1), bias, outF, inF, GemmWeights.FromHost(dev, w, outF, inF, p), p);
        }
        Gemm.Chosen(dev, $"gemm: {Name(p)} emulated on {(dev.IsCuda ? "CUDA (a layer's K is not a multiple of 8, or no sm_80)" : "the CPU accelerator")}: " +
                         "operands rounded to 16 bits, fp32 kernel (slower path, same arithmetic as tensor cores)");
        return new Linear(Tensor.FromHost(dev, key + ".weight", GemmWeights.RoundHost(w, p), outF, inF), bias, outF, inF, null, p);
    }

    static string Name(Precision p) => p.ToString().ToLowerInvariant();

    /// <summary>y (rows, Out) = epilogue(x (rows, In) · Wᵀ + b).</summary>
    public void Forward(Tensor x, Tensor y, int rows, Epilogue ep = Epilogue.None, Tensor? residual = null, GateSpec gate = default)
    {
        var res = residual is null ? default : residual.View;
        if (Packed != null)
        {
            GemmV3.Run(Bias.Device, x.View, Packed, Bias.View, y.View, rows, In, ep, res, gate);
            return;
        }
        var xv = x.View;
        if (Precision != Precision.Fp32)
            xv = GemmWeights.RoundedCopy(Bias.Device, xv, (long)rows * In, Precision);   // x as a 16-bit operand carries it
        Gemm.Run(Bias.Device, xv, Weight.View, Bias.View, y.View, rows, Out, In, ep, res, gate);
    }

    public long Flops(long rows) => Gemm.Flops(rows, Out, In);

    public void Dispose() { Weight.Dispose(); Bias.Dispose(); Packed?.Dispose(); }
}
