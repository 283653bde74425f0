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
    int depth, rowLen;

    ChangeSignal? signal;
    bool hasLast;

    public long MemoryBytes => (store?.Bytes ?? 0) + (signal?.Bytes ?? 0);
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
        signal?.Dispose();
        signal = new ChangeSignal(device, model.ModelBatch, rowLen);
        hasLast = false;
    }

    public BlockPlan Plan(StepContext step)
    {
        var s = store ?? throw new InvalidOperationException("fbcache: Begin was not called");
        return BlockPlan.Of(new SpanPlan(s, 1, depth, SpanValue.Residual, probe =>
        {
            // r1 = h_s − h_0 on the device; d against the rows' last computed r1 (one read-back, only when the rule reads it)
            Tensor now = s.Slot("probe.now"), last = s.Slot("probe.last");
            double[]? d = null;
            if (hasLast) d = signal!.RelativeL1(probe.InputTensor, probe.TokensTensor, last, step.Cfg, current: now);
            else signal!.Keep(probe.InputTensor, probe.TokensTensor, now, probe.Rows);
            var compute = Enumerable.Range(0, step.Cfg.Samples).Where(i => config.Compute(d?[i])).ToArray();
            foreach (var r in step.Cfg.Rows(compute)) last.CopyFrom(now, (long)r * rowLen, rowLen);
            hasLast = true;
            return new SpanDecision(step.Cfg.Rows(compute));
        }));
    }

    public void Dispose()
    {
        store?.Dispose();
        signal?.Dispose();
    }
}
