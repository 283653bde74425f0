// The one interface every feature-cache policy implements, hooked into the step loop at one place:
// the denoiser calls Plan once per sampling step with the step's context (index, t, the current
// sample, the labels, the CFG layout) and PlanRunner executes the returned plan. A policy keeps its
// features in a FeatureStore; what was computed and skipped is counted from the executed plans
// (PlanRunner.Accounting), not reported by the policy.
using BlockDance.Kernels;

namespace BlockDance.Cache;

public interface ICachePolicy : IDisposable
{
    /// <summary>Short name for summaries and reports ("none", "blockdance N=2 b=20 [0.25,0.95)").</summary>
    string Describe();

    /// <summary>Checks the settings against the block stack and the run, without a device: a method that cannot
    /// apply is refused (CacheException / InvalidValueException) before any device work when the caller asks first.</summary>
    void Check(BlockStack stack, int steps);

    /// <summary>Called once before sampling: Check, then allocate what the policy needs (once, not per step).</summary>
    void Begin(BlockStack stack, ComputeDevice device, int steps);

    /// <summary>The plan of one sampling step.</summary>
    BlockPlan Plan(StepContext step);

    /// <summary>Device memory the policy holds (its feature store, networks).</summary>
    long MemoryBytes { get; }
}

/// <summary>No caching: every step is a full forward.</summary>
public sealed class NoCache : ICachePolicy
{
    public string Describe() => "none";
    public void Check(BlockStack stack, int steps) { }
    public void Begin(BlockStack stack, ComputeDevice device, int steps) { }
    public BlockPlan Plan(StepContext step) => BlockPlan.Full;
    public long MemoryBytes => 0;
    public void Dispose() { }
}
