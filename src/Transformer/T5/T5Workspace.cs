// Activations of one T5 encode call (B prompts × L tokens), allocated per call: the encoder runs once
// per prompt batch, not once per sampling step, so there is nothing to reuse across calls.
using BlockDance.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Transformer.T5;

/// <summary>Tensors every block reads: the shared position-bias table, a zero bias and a ones gate.</summary>
public sealed class T5SharedTensors(Tensor biasTable, Tensor zeros, Tensor ones) : IDisposable
{
    public Tensor BiasTable { get; } = biasTable;   // (buckets, heads)  encoder.block.0.layer.0.SelfAttention.relative_attention_bias
    public Tensor Ones { get; } = ones;             // (D)               the residual "gate" (T5 adds residuals ungated)
    /// <summary>A zero bias of n elements (T5's linear layers have no bias; the GEMM always adds one).</summary>
    public ILGPU.ArrayView<float> Zeros(int n) => zeros.View.SubView(0, n);
    public void Dispose() { BiasTable.Dispose(); zeros.Dispose(); Ones.Dispose(); }
}

public sealed class T5Workspace : IDisposable
{
    public int Batch { get; }
    public int Length { get; }
    public int Rows => Batch * Length;
    public Tensor H { get; }        // (B·L, D)      residual stream
    public Tensor X { get; }        // (B·L, D)      normed input of a sub-layer
    public Tensor Qkv { get; }      // (B·L, 3·inner)
    public Tensor Attn { get; }     // (B·L, inner)
    public Tensor Gate { get; }     // (B·L, F)      wi_0 output, then gelu_new(gate) ⊙ up
    public Tensor Up { get; }       // (B·L, F)      wi_1 output
    public Tensor Mask { get; }     // (B, L)        1 = real token, 0 = padding (keys only)
    public ILGPU.Runtime.MemoryBuffer1D<int, ILGPU.Stride1D.Dense> BucketBuffer { get; }
    public ILGPU.ArrayView<int> Buckets => BucketBuffer.View; // (2L − 1)   relative-position bucket per offset

    public T5Workspace(ComputeDevice dev, T5Config cfg, int batch, int length, float[] mask)
    {
        Batch = batch;
        Length = length;
        int rows = batch * length;
        H = Tensor.Allocate(dev, "t5.h", rows, cfg.DModel);
        X = Tensor.Allocate(dev, "t5.x", rows, cfg.DModel);
        Qkv = Tensor.Allocate(dev, "t5.qkv", rows, 3 * cfg.Inner);
        Attn = Tensor.Allocate(dev, "t5.attn", rows, cfg.Inner);
        Gate = Tensor.Allocate(dev, "t5.ff_gate", rows, cfg.DFf);
        Up = Tensor.Allocate(dev, "t5.ff_up", rows, cfg.DFf);
        Mask = Tensor.FromHost(dev, "t5.mask", mask, batch, length);
        var buckets = T5RelativePosition.Buckets(length, cfg.NumBuckets, cfg.MaxDistance);
        BucketBuffer = dev.Accelerator.Allocate1D<int>(buckets.Length);
        BucketBuffer.View.CopyFromCPU(buckets);
    }

    public void Dispose()
    {
        foreach (var t in new[] { H, X, Qkv, Attn, Gate, Up, Mask }) t.Dispose();
        BucketBuffer.Dispose();
    }
}
