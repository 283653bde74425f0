// Activation buffers of an STDiT forward for one batch size: the DiT workspace over T·S tokens (the blocks use the
// same shapes; Norm doubles as block 0's temporal input x + tpe), plus the adaLN-single output t0, a row of ones
// (the ungated cross-attention residual), the sub-batch buffers of a per-row refresh and the per-frame layouts of
// the input and output latents.
using BlockDance.Kernels;
using ILGPU.Runtime;

namespace BlockDance.Transformer;

public sealed class STDiTWorkspace : IDisposable
{
    public Workspace Base { get; }
    public Tensor T0, T0Sub;          // (N, 6D) adaLN-single output (whole batch, gathered sub-batch)
    public Tensor Ones;               // (D)
    public Tensor FramesIn;           // (N, T, C_in, H·W) the input latent frame-major
    public Tensor FramesOut;          // (N·T, C_out, H, W) the unpatchified output before (N, C_out, T, H, W)
    public MemoryBuffer1D<int, ILGPU.Stride1D.Dense> CaptionRowsSub;   // (N)
    public int Batch => Base.Batch;

    public STDiTWorkspace(ComputeDevice dev, STDiTConfig cfg, int n)
    {
        Base = new Workspace(dev, cfg.Workspace, n);
        int d = cfg.Hidden, hw = cfg.LatentSize * cfg.LatentSize;
        T0 = Tensor.Allocate(dev, "t0", n, 6 * d);
        T0Sub = Tensor.Allocate(dev, "t0_sub", n, 6 * d);
        Ones = Tensor.FromHost(dev, "ones", Enumerable.Repeat(1f, d).ToArray(), d);
        FramesIn = Tensor.Allocate(dev, "frames_in", n, cfg.Frames, cfg.InChannels, hw);
        FramesOut = Tensor.Allocate(dev, "frames_out", n * cfg.Frames, cfg.OutChannels, cfg.LatentSize, cfg.LatentSize);
        CaptionRowsSub = dev.Accelerator.Allocate1D<int>(n);
    }

    public long Bytes => Base.Bytes + new[] { T0, T0Sub, Ones, FramesIn, FramesOut }.Sum(x => x.Bytes) + CaptionRowsSub.LengthInBytes;

    public void Dispose()
    {
        Base.Dispose();
        foreach (var x in new[] { T0, T0Sub, Ones, FramesIn, FramesOut }) x.Dispose();
        CaptionRowsSub.Dispose();
    }
}
