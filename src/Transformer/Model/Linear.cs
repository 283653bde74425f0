// A Linear layer's weights on the device: y = x · Wᵀ + b, W stored [out, in] as in PyTorch.
using BlockDance.Kernels;

namespace BlockDance.Transformer;

public sealed class Linear(Tensor weight, Tensor bias) : IDisposable
{
    public Tensor Weight { get; } = weight;   // (Out, In)
    public Tensor Bias { get; } = bias;       // (Out)
    public int Out => Weight.Shape[0];
    public int In => Weight.Shape[1];

    public static Linear Load(ComputeDevice dev, IWeightSource src, string key, int outF, int inF) => new(
        Tensor.FromHost(dev, key + ".weight", src.Read(key + ".weight", outF, inF), outF, inF),
        Tensor.FromHost(dev, key + ".bias", src.Read(key + ".bias", outF), outF));

    /// <summary>y (rows, Out) = epilogue(x (rows, In) · Wᵀ + b).</summary>
    public void Forward(Tensor x, Tensor y, int rows, Epilogue ep = Epilogue.None, Tensor? residual = null, GateSpec gate = default) =>
        Gemm.Run(Weight.Device, x.View, Weight.View, Bias.View, y.View, rows, Out, In, ep,
            residual is null ? default : residual.View, gate);

    public long Flops(long rows) => Gemm.Flops(rows, Out, In);

    public void Dispose() { Weight.Dispose(); Bias.Dispose(); }
}
