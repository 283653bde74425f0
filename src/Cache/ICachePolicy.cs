// The one interface every feature-cache policy implements. The denoiser calls BeforeStep once per
// sampling step (the single hook in the step loop) and runs the model with the returned plan:
//   full step            → BlockPlan.Full (optionally storing block b's output: a cache step)
//   reuse step           → start at block b+1 from the stored feature (blocks 0..b skipped)
// Right before BeforeStep the denoiser also shows the policy the current sample (ObserveSample); only
// policies that decide from the sample itself (BlockDance-Ada) use it, the default does nothing.
using BlockDance.Kernels;
using BlockDance.Transformer;

namespace BlockDance.Cache;

public interface ICachePolicy : IDisposable
{
    /// <summary>Short name for summaries and reports ("none", "blockdance N=2 b=20 [0.25,0.95)").</summary>
    string Describe();

    /// <summary>Called once before sampling: allocate what the policy needs (once, not per step).</summary>
    void Begin(DiT model, int steps, int batch);

    /// <summary>The plan for sampling step `step` (0 = first step, at the largest t).</summary>
    BlockPlan BeforeStep(int step);

    /// <summary>Called right before BeforeStep(step) with the current sample x (B, C, H, W) — the B samples,
    /// without the CFG duplicates — and their class labels. Default: ignored.</summary>
    void ObserveSample(int step, Tensor x, IReadOnlyList<int> classes) { }

    /// <summary>Device memory the policy holds (the cache buffer).</summary>
    long MemoryBytes { get; }

    /// <summary>Steps (in sampling order) that reused the cache so far in this run.</summary>
    IReadOnlyList<int> ReusedSteps { get; }
}

/// <summary>No caching: every step is a full forward.</summary>
public sealed class NoCache : ICachePolicy
{
    public string Describe() => "none";
    public void Begin(DiT model, int steps, int batch) { }
    public BlockPlan BeforeStep(int step) => BlockPlan.Full;
    public long MemoryBytes => 0;
    public IReadOnlyList<int> ReusedSteps => [];
    public void Dispose() { }
}
