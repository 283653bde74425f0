// Activation buffers of one forward pass, allocated once for a batch size and reused every step
// (allocation is a driver call on CUDA). Blocks ping-pong between X0 and X1. The same buffers serve the DiT,
// PixArt-α and STDiT (whose workspaces add their own next to it): what they are sized by is WorkspaceShape.
using BlockDance.Kernels;
using ILGPU.Runtime;

namespace BlockDance.Transformer;

/// <summary>The sizes of a block stack's shared buffers: tokens per row T, hidden width D, the MLP's hidden width, and the
/// final layer's outputs per token (p²·C_out). Each model config gives its own (DiTConfig, PixArtConfig, STDiTConfig.Workspace).</summary>
public sealed record WorkspaceShape(int Tokens, int Hidden, int MlpHidden, int FinalPerToken);

public sealed class Workspace : IDisposable
{
    public ComputeDevice Device { get; }
    public int Batch { get; }
    public Tensor X0, X1;        // (N, T, D) block inputs/outputs
    public Tensor Norm;          // (N, T, D) modulated LayerNorm output
    public Tensor Qkv;           // (N, T, 3D)
    public Tensor Attn;          // (N, T, D)
    public Tensor Hidden;        // (N, T, 4D) MLP hidden
    public Tensor Mod;           // (N, 6D) adaLN output of the current block
    public Tensor TFreq;         // (N, 256) sinusoidal timestep features
    public Tensor THidden;       // (N, D) after t_embedder.mlp.0 + SiLU
    public Tensor TEmb;          // (N, D) t_embedder output
    public Tensor C;             // (N, D) condition c = t_emb + y_emb
    public Tensor SiluC;         // (N, D) SiLU(c), shared by every adaLN_modulation
    public Tensor SiluCSub;      // (N, D) SiLU(c) of a gathered sub-batch (its first rows)
    public Tensor FinalTokens;   // (N, T, p²·C_out)
    public Tensor Timesteps;     // (N)
    public Tensor Freqs;         // (128) timestep frequencies
    public MemoryBuffer1D<int, ILGPU.Stride1D.Dense> Labels; // (N)
    public MemoryBuffer1D<int, ILGPU.Stride1D.Dense> Rows;   // (N) row indices of a gathered sub-batch

    public Workspace(ComputeDevice dev, WorkspaceShape cfg, int batch)
    {
        Device = dev;
        Batch = batch;
        int n = batch, t = cfg.Tokens, d = cfg.Hidden;
        X0 = Tensor.Allocate(dev, "x0", n, t, d);
        X1 = Tensor.Allocate(dev, "x1", n, t, d);
        Norm = Tensor.Allocate(dev, "norm", n, t, d);
        Qkv = Tensor.Allocate(dev, "qkv", n, t, 3 * d);
        Attn = Tensor.Allocate(dev, "attn", n, t, d);
        Hidden = Tensor.Allocate(dev, "mlp_hidden", n, t, cfg.MlpHidden);
        Mod = Tensor.Allocate(dev, "adaLN", n, 6 * d);
        TFreq = Tensor.Allocate(dev, "t_freq", n, TimestepEmbedding.Dim);
        THidden = Tensor.Allocate(dev, "t_hidden", n, d);
        TEmb = Tensor.Allocate(dev, "t_emb", n, d);
        C = Tensor.Allocate(dev, "c", n, d);
        SiluC = Tensor.Allocate(dev, "silu_c", n, d);
        SiluCSub = Tensor.Allocate(dev, "silu_c_sub", n, d);
        FinalTokens = Tensor.Allocate(dev, "final_tokens", n, t, cfg.FinalPerToken);
        Timesteps = Tensor.Allocate(dev, "t", n);
        Freqs = Tensor.FromHost(dev, "t_freqs", TimestepEmbedding.Frequencies(), TimestepEmbedding.Dim / 2);
        Labels = dev.Accelerator.Allocate1D<int>(n);
        Rows = dev.Accelerator.Allocate1D<int>(n);
    }

    public long Bytes => new[] { X0, X1, Norm, Qkv, Attn, Hidden, Mod, TFreq, THidden, TEmb, C, SiluC, SiluCSub, FinalTokens, Timesteps, Freqs }
        .Sum(x => x.Bytes) + Labels.LengthInBytes + Rows.LengthInBytes;

    public void Dispose()
    {
        foreach (var x in new[] { X0, X1, Norm, Qkv, Attn, Hidden, Mod, TFreq, THidden, TEmb, C, SiluC, SiluCSub, FinalTokens, Timesteps, Freqs })
            x.Dispose();
        Labels.Dispose();
        Rows.Dispose();
    }
}
