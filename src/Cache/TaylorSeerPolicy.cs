// TaylorSeer (Liu et al., "From Reusing to Forecasting: Accelerating Diffusion Models with TaylorSeers", 2025):
// instead of copying a cached feature, forecast it from its finite differences at the last computed steps.
// Here the cached value is the whole-stack residual R = stack output − h_0 (the paper also forecasts
// per-block attention/MLP outputs; this engine forecasts the hidden-state residual, the variant
// diffusers and cache-dit apply to a cached hidden state).
//
//   the first `Warmup` steps compute; then every `Interval`-th step computes, the others forecast
//   R(k steps after the last compute) = Σ_{j ≤ order} Δʲ R · (k/Δ)ʲ / j!   (TaylorForecast; Δ = spacing of
//   the last two computed steps); with fewer computed values than order + 1 the order drops (logged).
// Plan: SpanPlan From 0, To L, Residual, History order + 1, forecast weights per row.
//
// Fixed schedule: same decisions for every sample; the forecast is per row (each row its own history).
using BlockDance.Kernels;

namespace BlockDance.Cache;

public sealed record TaylorSeerConfig(int Interval = 5, int Order = 1, int Warmup = 3)
{
    public void Validate()
    {
        if (Interval < 1) throw new InvalidValueException("taylorseer interval", "N ≥ 1", $"{Interval}");
        if (Order is < 0 or > 2) throw new InvalidValueException("taylorseer order", "0, 1 or 2", $"{Order}");
        if (Warmup < 0) throw new InvalidValueException("taylorseer warm-up", "≥ 0 steps", $"{Warmup}");
    }

    /// <summary>true for the steps that compute: warm-up, then every Interval-th step after it, and the last step.</summary>
    public bool[] ComputeSchedule(int steps) =>
        Enumerable.Range(0, steps).Select(i => i < Math.Max(1, Warmup) || (i - Math.Max(1, Warmup) + 1) % Interval == 0 || i == steps - 1).ToArray();
}

public sealed class TaylorSeerPolicy(TaylorSeerConfig config) : ICachePolicy
{
    FeatureStore? store;
    bool[] compute = [];
    readonly List<int> computedSteps = new();
    bool loggedDrop;
    int depth;

    public long MemoryBytes => store?.Bytes ?? 0;
    public string Describe() => $"taylorseer interval {config.Interval} order {config.Order} warm-up {config.Warmup}";

    public void Check(BlockStack model, int steps)
    {
        config.Validate();
    }

    public void Begin(BlockStack model, ComputeDevice device, int steps)
    {
        Check(model, steps);
        compute = config.ComputeSchedule(steps);
        computedSteps.Clear();
        loggedDrop = false;
        store?.Dispose();
        store = new FeatureStore(device, model, "taylorseer");
        depth = model.Depth;
    }

    public BlockPlan Plan(StepContext step)
    {
        var s = store ?? throw new InvalidOperationException("taylorseer: Begin was not called");
        int n = step.Cfg.ModelBatch, history = config.Order + 1;
        SpanDecision decision;
        if (compute[step.Step] || computedSteps.Count == 0)
        {
            decision = SpanDecision.All(n);
            computedSteps.Add(step.Step);
        }
        else
        {
            int order = Math.Min(config.Order, computedSteps.Count - 1);
            if (order < config.Order && !loggedDrop)
            {
                Log.Info($"taylorseer: step {step.Step} forecasts with order {order} (only {computedSteps.Count} computed steps so far)");
                loggedDrop = true;
            }
            int last = computedSteps[^1], spacing = computedSteps.Count > 1 ? last - computedSteps[^2] : 1;
            var w = TaylorForecast.Weights(order, step.Step - last, spacing);
            var f = new float[n * history];
            for (int r = 0; r < n; r++) Array.Copy(w, 0, f, r * history, w.Length);
            decision = new SpanDecision([], f);
        }
        return BlockPlan.Of(new SpanPlan(s, 0, depth, SpanValue.Residual, _ => decision, "residual", history));
    }

    public void Dispose() => store?.Dispose();
}
