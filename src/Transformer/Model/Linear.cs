// A Linear layer's weights on the device: y = x · Wᵀ + b, W stored [out, in] as in PyTorch.
// The weights' form is decided once, at load, by GemmWeights.ForLayer from the device and its --precision
// (16-bit for tensor cores on CUDA, packed panels on the host backend, plain fp32 on the simulator, values
// rounded to 16 bits where 16-bit arithmetic is emulated); Gemm.Run(GemmWeights) picks the kernel from it.
using BlockDance.Kernels;

namespace BlockDance.Transformer;

public sealed class Linear : IDisposable
{
    public GemmWeights Weights { get; }
    readonly Tensor? placeholder;
    /// <summary>The fp32 weight storage: (Out, In), or its packed panels on the host backend; a 1-element
    /// placeholder when the weights live in 16 bits (GemmWeights.Bits).</summary>
    public Tensor Weight => Weights.Values ?? placeholder!;
    public Tensor Bias { get; }     // (Out)
    public int Out { get; }
    public int In { get; }
    /// <summary>Precision of the operands (Fp32, or the 16-bit format emulated/run on tensor cores).</summary>
    public Precision Precision => Weights.Precision;

    /// <summary>A layer from fp32 weights already on the device, weight (Out, In) (the Linear owns both
    /// tensors; on the host backend the weights are packed and the given tensor released).</summary>
    public Linear(Tensor weight, Tensor bias) : this(GemmWeights.FromTensor(weight), bias) { }

    Linear(GemmWeights weights, Tensor bias)
    {
        Weights = weights; Bias = bias; Out = weights.N; In = weights.K;
        if (weights.Values is null) placeholder = Tensor.Allocate(bias.Device, "weight(16-bit)", 1);
    }

    public static Linear Load(ComputeDevice dev, IWeightSource src, string key, int outF, int inF) =>
        FromHost(dev, key, src.Read(key + ".weight", outF, inF), src.Read(key + ".bias", outF), outF, inF);

    /// <summary>The layer `key` from host weights w (Out, In) and bias b (Out), stored for the device's precision.</summary>
    public static Linear FromHost(ComputeDevice dev, string key, float[] w, float[] b, int outF, int inF)
    {
        var bias = Tensor.FromHost(dev, key + ".bias", b, outF);
        return new Linear(GemmWeights.ForLayer(dev, key + ".weight", w, outF, inF), bias);
    }

    /// <summary>y (rows, Out) = epilogue(x (rows, In) · Wᵀ + b).</summary>
    public void Forward(Tensor x, Tensor y, int rows, Epilogue ep = Epilogue.None, Tensor? residual = null, GateSpec gate = default) =>
        Gemm.Run(Bias.Device, x.View, Weights, Bias.View, y.View, rows, ep, residual is null ? default : residual.View, gate);

    public long Flops(long rows) => Gemm.Flops(rows, Out, In);

    public void Dispose() { Weights.Dispose(); Bias.Dispose(); placeholder?.Dispose(); }
}
