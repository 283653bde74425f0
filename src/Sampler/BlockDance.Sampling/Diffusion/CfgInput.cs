// The model input of a guided step: classifier-free guidance runs the model on [x; x] (the conditional and the
// unconditional half) and mixes the two outputs afterwards (Guidance). Shared by the DiT and PixArt denoisers.
using BlockDance.Kernels;
using ILGPU.Runtime;

namespace BlockDance.Sampling;

public static class CfgInput
{
    /// <summary>The model input for x (B, C, H, W): x itself without guidance (input null), else input (2B, C, H, W)
    /// filled with [x; x] by two device copies — the reference duplicates the first half each step (forward_with_cfg).</summary>
    public static Tensor For(Tensor x, Tensor? input)
    {
        if (input is null) return x;
        long half = x.Length;
        x.View.CopyTo(input.View.SubView(0, half));
        x.View.CopyTo(input.View.SubView(half, half));
        return input;
    }
}
