// MagCache (Ma et al., "MagCache: Fast Video Generation with Magnitude-Aware Cache", 2025): the magnitude
// ratio of the whole-stack residual between adjacent steps follows one curve for a model, whatever the
// input; calibrated once (CacheCalibration.MagRatios), it predicts the error of reusing the residual.
//
//   after a computed step Γ ← 1, E ← 0;  at step i: Γ ← Γ·γ_i,  E ← E + |1 − Γ|
//   reuse (output = h_0 + R of the last computed step) while E ≤ δ and consecutive reuses < K;
//   the first `Warmup` fraction of the steps (and the last step) always compute.
// Plan: SpanPlan From 0, To L, Residual.
//
// The schedule does not depend on the sample (the curve is the model's), so every sample of a batch gets
// the same decisions it would get alone; CFG: both halves reuse together, each row its own residual.
using BlockDance.Kernels;

namespace BlockDance.Cache;

public sealed record MagCacheConfig(double[] Ratios, double Threshold = 0.06, int MaxConsecutive = 3, double Warmup = 0.2)
{
    public void Validate(int steps)
    {
        if (Ratios.Length != steps)
            throw new InvalidValueException("magcache calibration", $"a ratio curve for {steps} steps (a calibration run of {steps} steps writes one)", $"{Ratios.Length} steps");
        if (!(Threshold >= 0) || double.IsInfinity(Threshold)) throw new InvalidValueException("magcache threshold", "a finite value ≥ 0", $"{Threshold}");
        if (MaxConsecutive < 0) throw new InvalidValueException("magcache max consecutive", "K ≥ 0", $"{MaxConsecutive}");
        if (!(Warmup >= 0 && Warmup <= 1)) throw new InvalidValueException("magcache warm-up", "a fraction 0..1", $"{Warmup}");
    }

    /// <summary>true for the steps that reuse.</summary>
    public bool[] ReuseSchedule(int steps)
    {
        var reuse = new bool[steps];
        double gamma = 1, err = 0;
        int consecutive = 0;
        for (int i = 0; i < steps; i++)
        {
            bool always = i < Warmup * steps || i == 0 || i == steps - 1;
            gamma *= Ratios[i];
            err += Math.Abs(1 - gamma);
            if (!always && err <= Threshold && consecutive < MaxConsecutive) { reuse[i] = true; consecutive++; continue; }
            gamma = 1; err = 0; consecutive = 0;
        }
        return reuse;
    }
}

public sealed class MagCachePolicy(MagCacheConfig config) : ICachePolicy
{
    FeatureStore? store;
    bool[] schedule = [];
    int depth;

    public long MemoryBytes => store?.Bytes ?? 0;
    public string Describe() => $"magcache δ={config.Threshold:0.###} K={config.MaxConsecutive}, {schedule.Count(r => r)} of {schedule.Length} steps reused";

    public void Check(BlockStack model, int steps)
    {
        config.Validate(steps);
    }

    public void Begin(BlockStack model, ComputeDevice device, int steps)
    {
        Check(model, steps);
        schedule = config.ReuseSchedule(steps);
        store?.Dispose();
        store = new FeatureStore(device, model, "magcache");
        depth = model.Depth;
    }

    public BlockPlan Plan(StepContext step)
    {
        var s = store ?? throw new InvalidOperationException("magcache: Begin was not called");
        bool reuse = schedule[step.Step];
        return BlockPlan.Of(new SpanPlan(s, 0, depth, SpanValue.Residual,
            _ => reuse ? SpanDecision.None : SpanDecision.All(step.Cfg.ModelBatch)));
    }

    public void Dispose() => store?.Dispose();
}
