// Δ-DiT (Chen et al., "Δ-DiT: A Training-Free Acceleration Method Tailored for Diffusion Transformers", 2024):
// cache the deviation Δ = h_out − h_in of a range of blocks and apply h_out ≈ h_in + Δ_cached. Early in
// sampling (the structure phase, steps before the cutoff) the *rear* blocks L−k..L−1 are cached, late
// (the detail phase) the *front* blocks 0..k−1. In each phase the range is refreshed every N steps,
// starting at the phase's first step (a phase always starts by computing).
// Plan: SpanPlan Residual over the phase's range (two history keys: "rear", "front").
//
// Fixed schedule: every sample (and both CFG halves) follows it; each row keeps its own Δ.
using BlockDance.Kernels;

namespace BlockDance.Cache;

/// <param name="N">Refresh interval (1 = no reuse).</param>
/// <param name="Blocks">k, the size of the cached range (null: ⌈depth / 3⌉).</param>
/// <param name="Cutoff">Fraction of the steps in the structure phase.</param>
public sealed record DeltaDitConfig(int N = 2, int? Blocks = null, double Cutoff = 0.5)
{
    public int RangeSize(int depth) => Blocks ?? Math.Max(1, (depth + 2) / 3);

    public void Validate(int depth)
    {
        if (N < 1) throw new InvalidValueException("delta-dit N", "N ≥ 1", $"{N}");
        if (RangeSize(depth) is var k && (k < 1 || k > depth)) throw new InvalidValueException("delta-dit blocks", $"1..{depth}", $"{k}");
        if (!(Cutoff >= 0 && Cutoff <= 1)) throw new InvalidValueException("delta-dit cutoff", "a fraction 0..1", $"{Cutoff}");
    }

    /// <summary>Per step: (rear phase?, reuse?).</summary>
    public (bool Rear, bool Reuse)[] Schedule(int steps)
    {
        int cut = (int)Math.Ceiling(Cutoff * steps);
        return Enumerable.Range(0, steps).Select(i =>
        {
            bool rear = i < cut;
            int first = rear ? 0 : cut;
            return (rear, (i - first) % N != 0);
        }).ToArray();
    }
}

public sealed class DeltaDitPolicy(DeltaDitConfig config) : ICachePolicy
{
    FeatureStore? store;
    (bool Rear, bool Reuse)[] schedule = [];
    int depth, k;

    public long MemoryBytes => store?.Bytes ?? 0;
    public string Describe() => $"delta-dit N={config.N} k={k} cutoff {config.Cutoff:0.##}";

    public void Check(BlockStack model, int steps)
    {
        config.Validate(model.Depth);
    }

    public void Begin(BlockStack model, ComputeDevice device, int steps)
    {
        Check(model, steps);
        depth = model.Depth;
        k = config.RangeSize(depth);
        schedule = config.Schedule(steps);
        store?.Dispose();
        store = new FeatureStore(device, model, "delta-dit");
    }

    public BlockPlan Plan(StepContext step)
    {
        var s = store ?? throw new InvalidOperationException("delta-dit: Begin was not called");
        var (rear, reuse) = schedule[step.Step];
        var decision = reuse ? SpanDecision.None : SpanDecision.All(step.Cfg.ModelBatch);
        return rear
            ? BlockPlan.Of(new SpanPlan(s, depth - k, depth, SpanValue.Residual, _ => decision, "rear"))
            : BlockPlan.Of(new SpanPlan(s, 0, k, SpanValue.Residual, _ => decision, "front"));
    }

    public void Dispose() => store?.Dispose();
}
