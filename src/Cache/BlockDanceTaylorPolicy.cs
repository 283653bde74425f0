// bd-taylor: BlockDance-N whose reuse steps forecast the boundary feature instead of copying it.
//
// The schedule is BlockDance-N's (BlockDanceConfig: cache steps outside the window and at the start of
// each group of N inside it). A cache step computes blocks 0..b and keeps F = block b's output in a
// history of order + 1 values; a reuse step k steps after the last cache step hands blocks b+1..L−1
//   F̂ = Σ_{j ≤ order} Δʲ F · (k/Δ)ʲ / j!        (TaylorForecast; Δ = spacing of the last two cache steps)
// instead of F. Order 0 is BlockDance-N itself. Before order + 1 cache steps exist the order drops.
// Plan: SpanPlan From 0, To b + 1, Feature, History order + 1.
//
// Fixed schedule: the same for every sample; each row forecasts its own feature (CFG halves included).
using BlockDance.Kernels;

namespace BlockDance.Cache;

public sealed record BlockDanceTaylorConfig(BlockDanceConfig Schedule, int Order = 1)
{
    /// <summary>N when none is given: one cache step, then two forecast reuse steps.</summary>
    public const int DefaultN = 3;

    public void Validate(int depth)
    {
        Schedule.Validate(depth);
        if (Order is < 0 or > 2) throw new InvalidValueException("bd-taylor order", "0, 1 or 2", $"{Order}");
    }
}

public sealed class BlockDanceTaylorPolicy(BlockDanceTaylorConfig config) : ICachePolicy
{
    FeatureStore? store;
    bool[] reuse = [];
    readonly List<int> cacheSteps = new();
    int boundary;

    public long MemoryBytes => store?.Bytes ?? 0;
    public string Describe() => $"bd-taylor N={config.Schedule.N} b={boundary} order {config.Order} window [{config.Schedule.WindowStart:0.##}, {config.Schedule.WindowEnd:0.##})";

    public void Check(BlockStack model, int steps)
    {
        config.Validate(model.Depth);
    }

    public void Begin(BlockStack model, ComputeDevice device, int steps)
    {
        Check(model, steps);
        boundary = config.Schedule.Boundary ?? BlockDanceConfig.DefaultBoundary(model.Depth);
        reuse = config.Schedule.ReuseSchedule(steps);
        cacheSteps.Clear();
        store?.Dispose();
        store = new FeatureStore(device, model, "bd-taylor");
    }

    public BlockPlan Plan(StepContext step)
    {
        var s = store ?? throw new InvalidOperationException("bd-taylor: Begin was not called");
        int n = step.Cfg.ModelBatch, history = config.Order + 1;
        SpanDecision decision;
        if (!reuse[step.Step] || cacheSteps.Count == 0)
        {
            decision = SpanDecision.All(n);
            cacheSteps.Add(step.Step);
        }
        else
        {
            int order = Math.Min(config.Order, cacheSteps.Count - 1);
            int last = cacheSteps[^1], spacing = cacheSteps.Count > 1 ? last - cacheSteps[^2] : 1;
            var w = TaylorForecast.Weights(order, step.Step - last, spacing);
            var f = new float[n * history];
            for (int r = 0; r < n; r++) Array.Copy(w, 0, f, r * history, w.Length);
            decision = new SpanDecision([], f);
        }
        return BlockPlan.Of(new SpanPlan(s, 0, boundary + 1, SpanValue.Feature, _ => decision, "feature", history));
    }

    public void Dispose() => store?.Dispose();
}
