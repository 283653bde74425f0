// First-Block Cache (ParaAttention / diffusers "FirstBlockCache"): always compute block 0; if its residual
// R1 = B_0(h_0) − h_0 changed little since the last computed step, skip blocks 1..L−1 and add their cached
// residual (stack output − h_1 of the last computed step).
//
//   d = d(R1_i, R1_last)  (relative L1; R1_last from the last step that computed the rest)
//   d < threshold → reuse,  else compute blocks 1..L−1, store their residual and R1_last ← R1_i
// Plan: SpanPlan From 1, To L, Residual. Step 0 always computes.
//
// Per sample: each sample compares its own R1 with its own last computed one (over both CFG rows, which
// decide together); the cached residual is kept per row.
using BlockDance.Kernels;

namespace BlockDance.Cache;

public sealed record FirstBlockCacheConfig(double Threshold = 0.05)
{
    public void Validate()
    {
        if (!(Threshold >= 0) || double.IsInfinity(Threshold)) throw new InvalidValueException("fbcache threshold", "a finite value ≥ 0", $"{Threshold}");
    }

    /// <summary>The rule: true = compute the rest of the stack.</summary>
    public bool Compute(double? change) => change is not double d || d >= Threshold;
}

public sealed class FirstBlockCachePolicy(FirstBlockCacheConfig config) : ICachePolicy
{
    FeatureStore? store;
    float[]? last;                      // R1 of each row at its last computed step, (model batch, T, D)
    int depth, rowLen;

    public long MemoryBytes => store?.Bytes ?? 0;
    public string Describe() => $"fbcache threshold={config.Threshold:0.###}";

    public void Check(BlockStack model, int steps)
    {
        config.Validate();
        if (model.Depth < 2) throw new CacheException($"fbcache: expected a model of at least 2 blocks, found {model.Depth}");
    }

    public void Begin(BlockStack model, ComputeDevice device, int steps)
    {
        Check(model, steps);
        store?.Dispose();
        store = new FeatureStore(device, model, "fbcache");
        depth = model.Depth;
        rowLen = model.Tokens * model.Hidden;
        last = null;
    }

    public BlockPlan Plan(StepContext step)
    {
        var s = store ?? throw new InvalidOperationException("fbcache: Begin was not called");
        return BlockPlan.Of(new SpanPlan(s, 1, depth, SpanValue.Residual, probe =>
        {
            var r1 = CacheSignals.Difference(probe.Input(), probe.Tokens());
            var d = last is null ? null : CacheSignals.RelativeL1(r1, last, step.Cfg, rowLen);
            var compute = Enumerable.Range(0, step.Cfg.Samples).Where(i => config.Compute(d?[i])).ToArray();
            last ??= new float[r1.Length];
            foreach (var r in step.Cfg.Rows(compute)) Array.Copy(r1, (long)r * rowLen, last, (long)r * rowLen, rowLen);
            return new SpanDecision(step.Cfg.Rows(compute));
        }));
    }

    public void Dispose() => store?.Dispose();
}
