// Activation buffers of a PixArt-α forward for one batch size: the DiT's (the blocks use the same shapes)
// plus the adaLN-single output t0, the micro-condition scratch, a row of ones (the ungated residual of the
// cross-attention) and the sub-batch buffers of a per-row refresh.
using BlockDance.Kernels;
using ILGPU.Runtime;

namespace BlockDance.Transformer;

public sealed class PixArtWorkspace : IDisposable
{
    public Workspace Base { get; }
    public Tensor T0, T0Sub;          // (N, 6D) adaLN-single output (whole batch, gathered sub-batch)
    public Tensor MicroHidden, Micro; // (N, D/3) micro-condition MLP
    public Tensor Ones;               // (D)
    public MemoryBuffer1D<int, ILGPU.Stride1D.Dense> CaptionRowsSub;   // (N)
    public int Batch => Base.Batch;

    public PixArtWorkspace(ComputeDevice dev, PixArtConfig cfg, int n)
    {
        Base = new Workspace(dev, cfg.Workspace, n);
        int d = cfg.Hidden;
        T0 = Tensor.Allocate(dev, "t0", n, 6 * d);
        T0Sub = Tensor.Allocate(dev, "t0_sub", n, 6 * d);
        MicroHidden = Tensor.Allocate(dev, "micro_hidden", n, Math.Max(1, cfg.MicroWidth));
        Micro = Tensor.Allocate(dev, "micro", n, Math.Max(1, cfg.MicroWidth));
        Ones = Tensor.FromHost(dev, "ones", Enumerable.Repeat(1f, d).ToArray(), d);
        CaptionRowsSub = dev.Accelerator.Allocate1D<int>(n);
    }

    public long Bytes => Base.Bytes + new[] { T0, T0Sub, MicroHidden, Micro, Ones }.Sum(x => x.Bytes) + CaptionRowsSub.LengthInBytes;

    public void Dispose()
    {
        Base.Dispose();
        foreach (var x in new[] { T0, T0Sub, MicroHidden, Micro, Ones }) x.Dispose();
        CaptionRowsSub.Dispose();
    }
}
