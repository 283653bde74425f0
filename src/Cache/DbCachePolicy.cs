// DBCache ("dual block cache", cache-dit): the first Fn blocks always compute and serve as the probe; on a
// hit the middle blocks Fn..L−Bn−1 are replaced by their cached residual, and the last Bn blocks compute.
//
//   R_F = h_Fn − h_0 (the residual of the first Fn blocks);  d = d(R_F,i, R_F,last)  (relative L1)
//   reuse when d < threshold and the guards allow: step ≥ warm-up, consecutive reuses < max consecutive,
//   reuses so far < max cached;  else compute the middle blocks, store their residual, R_F,last ← R_F,i
// Plan: SpanPlan From Fn, To L − Bn, Residual.
//
// Per sample: the signal, the guards' counters and the cached residual are per sample (both CFG rows
// decide together; each row keeps its own residual).
using BlockDance.Kernels;

namespace BlockDance.Cache;

/// <param name="Fn">Blocks always computed first (the probe).</param>
/// <param name="Bn">Blocks always computed last.</param>
/// <param name="Warmup">Steps that always compute.</param>
/// <param name="MaxConsecutive">Reuses in a row at most (0 = no cap).</param>
/// <param name="MaxCached">Reuses per run at most (0 = no cap).</param>
public sealed record DbCacheConfig(int Fn = 1, int Bn = 0, double Threshold = 0.08, int Warmup = 8, int MaxConsecutive = 0, int MaxCached = 0)
{
    public void Validate(int depth)
    {
        if (Fn < 1 || Bn < 0 || Fn + Bn >= depth)
            throw new InvalidValueException("dbcache Fn/Bn", $"Fn ≥ 1, Bn ≥ 0 and Fn + Bn < {depth} (blocks of the model)", $"Fn {Fn}, Bn {Bn}");
        if (!(Threshold >= 0) || double.IsInfinity(Threshold)) throw new InvalidValueException("dbcache threshold", "a finite value ≥ 0", $"{Threshold}");
        if (Warmup < 0 || MaxConsecutive < 0 || MaxCached < 0)
            throw new InvalidValueException("dbcache guards", "warm-up, max consecutive and max cached ≥ 0", $"{Warmup}, {MaxConsecutive}, {MaxCached}");
    }

    /// <summary>The rule for one sample: true = compute the middle blocks. Updates its counters.</summary>
    public bool Compute(int step, double? change, ref int consecutive, ref int cached)
    {
        bool reuse = step >= Warmup && change is double d && d < Threshold
                     && (MaxConsecutive == 0 || consecutive < MaxConsecutive) && (MaxCached == 0 || cached < MaxCached);
        if (reuse) { consecutive++; cached++; return false; }
        consecutive = 0;
        return true;
    }
}

public sealed class DbCachePolicy(DbCacheConfig config) : ICachePolicy
{
    FeatureStore? store;
    int[] consecutive = [], cached = [];
    int depth, rowLen;

    ChangeSignal? signal;
    bool hasLast;

    public long MemoryBytes => (store?.Bytes ?? 0) + (signal?.Bytes ?? 0);
    public string Describe() => $"dbcache F{config.Fn}B{config.Bn} threshold={config.Threshold:0.###} warm-up {config.Warmup}" +
        (config.MaxConsecutive > 0 ? $" max consecutive {config.MaxConsecutive}" : "") + (config.MaxCached > 0 ? $" max cached {config.MaxCached}" : "");

    public void Check(BlockStack model, int steps)
    {
        config.Validate(model.Depth);
    }

    public void Begin(BlockStack model, ComputeDevice device, int steps)
    {
        Check(model, steps);
        store?.Dispose();
        store = new FeatureStore(device, model, "dbcache");
        depth = model.Depth;
        rowLen = model.Tokens * model.Hidden;
        signal?.Dispose();
        signal = new ChangeSignal(device, model.ModelBatch, rowLen);
        hasLast = false;
        consecutive = cached = [];
    }

    public BlockPlan Plan(StepContext step)
    {
        var s = store ?? throw new InvalidOperationException("dbcache: Begin was not called");
        int samples = step.Cfg.Samples;
        if (consecutive.Length != samples) { consecutive = new int[samples]; cached = new int[samples]; }
        return BlockPlan.Of(new SpanPlan(s, config.Fn, depth - config.Bn, SpanValue.Residual, probe =>
        {
            // rf = h_s − h_0 on the device; d against the rows' last computed rf (one read-back, only when the rule reads it)
            Tensor now = s.Slot("probe.now"), last = s.Slot("probe.last");
            double[]? d = null;
            if (hasLast && step.Step >= config.Warmup) d = signal!.RelativeL1(probe.InputTensor, probe.TokensTensor, last, step.Cfg, current: now);
            else signal!.Keep(probe.InputTensor, probe.TokensTensor, now, probe.Rows);
            var compute = Enumerable.Range(0, samples).Where(i => config.Compute(step.Step, d?[i], ref consecutive[i], ref cached[i])).ToArray();
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
