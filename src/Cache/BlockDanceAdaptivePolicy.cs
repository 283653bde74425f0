// bd-adaptive: BlockDance whose reuse steps are decided per sample by how fast its boundary feature changes,
// instead of a fixed N.
//
// After each cache step of sample i with two stored features, its change rate is
//   v_i = d(F_i^new, F_i^prev) / (steps between them)          (relative L1 of block b's output)
// Inside the window, before each step: if A_i + v_i ≤ δ and the sample has reused fewer than `MaxConsecutive`
// steps in a row → reuse (A_i ← A_i + v_i: the accumulated predicted drift of the stored feature), else cache
// (A_i ← 0). Outside the window, and until a sample has two stored features, every step is a cache step.
// Order > 0 forecasts the reused feature from the last cache steps (as bd-taylor) instead of copying it.
// Plan: SpanPlan From 0, To b + 1, Feature, History max(2, order + 1): the reusing rows read their feature
// where it lies, the caching rows run blocks 0..b as a gathered sub-batch (as Ada's refresh rows).
//
// Per sample: v_i, A_i and the counters are the sample's own, measured over both CFG rows (which decide
// together), so a batch gives each sample the decisions it would get alone.
using BlockDance.Kernels;

namespace BlockDance.Cache;

public sealed record BlockDanceAdaptiveConfig(double Threshold = 0.1, int MaxConsecutive = 3, int? Boundary = null,
    double WindowStart = 0.25, double WindowEnd = 0.95, int Order = 0)
{
    public void Validate(int depth)
    {
        new BlockDanceConfig(1, Boundary, WindowStart, WindowEnd).Validate(depth);
        if (!(Threshold >= 0) || double.IsInfinity(Threshold)) throw new InvalidValueException("bd-adaptive threshold", "a finite value ≥ 0", $"{Threshold}");
        if (MaxConsecutive < 0) throw new InvalidValueException("bd-adaptive max consecutive", "≥ 0", $"{MaxConsecutive}");
        if (Order is < 0 or > 2) throw new InvalidValueException("bd-adaptive order", "0, 1 or 2", $"{Order}");
    }

    public bool InWindow(int step, int steps) => step / (double)steps >= WindowStart && step / (double)steps < WindowEnd;

    /// <summary>The rule for one sample at one step: true = reuse. Updates its accumulator and counter.</summary>
    public bool Reuse(bool inWindow, double? rate, ref double accumulated, ref int consecutive)
    {
        if (inWindow && rate is double v && accumulated + v <= Threshold && consecutive < MaxConsecutive)
        {
            accumulated += v;
            consecutive++;
            return true;
        }
        accumulated = 0;
        consecutive = 0;
        return false;
    }
}

public sealed class BlockDanceAdaptivePolicy(BlockDanceAdaptiveConfig config) : ICachePolicy
{
    FeatureStore? store;
    ChangeSignal? signal;
    int boundary, rowLen, history;
    double[] acc = [];
    double?[] rate = [];
    int[] consecutive = [];
    List<int>[] cacheSteps = [];
    int[] lastCached = [];              // samples that cached at the previous step

    public long MemoryBytes => (store?.Bytes ?? 0) + (signal?.Bytes ?? 0);
    public int Boundary => boundary;
    public string Describe() => $"bd-adaptive δ={config.Threshold:0.###} max {config.MaxConsecutive} b={boundary} order {config.Order} window [{config.WindowStart:0.##}, {config.WindowEnd:0.##})";

    public void Check(BlockStack model, int steps)
    {
        config.Validate(model.Depth);
    }

    public void Begin(BlockStack model, ComputeDevice device, int steps)
    {
        Check(model, steps);
        boundary = config.Boundary ?? BlockDanceConfig.DefaultBoundary(model.Depth);
        rowLen = model.Tokens * model.Hidden;
        history = Math.Max(2, config.Order + 1);
        acc = []; rate = []; consecutive = []; cacheSteps = []; lastCached = [];
        store?.Dispose();
        store = new FeatureStore(device, model, "bd-adaptive");
        signal?.Dispose();
        signal = new ChangeSignal(device, model.ModelBatch, rowLen);
    }

    public BlockPlan Plan(StepContext step)
    {
        var s = store ?? throw new InvalidOperationException("bd-adaptive: Begin was not called");
        int samples = step.Cfg.Samples, n = step.Cfg.ModelBatch;
        if (acc.Length != samples)
        {
            acc = new double[samples]; rate = new double?[samples]; consecutive = new int[samples];
            cacheSteps = Enumerable.Range(0, samples).Select(_ => new List<int>()).ToArray();
        }
        UpdateRates(s, step.Cfg);
        bool inWindow = config.InWindow(step.Step, step.Steps);
        var caching = new List<int>();
        var f = new float[n * history];
        for (int i = 0; i < samples; i++)
        {
            if (!config.Reuse(inWindow, rate[i], ref acc[i], ref consecutive[i])) { caching.Add(i); continue; }
            var steps = cacheSteps[i];
            int order = Math.Min(config.Order, steps.Count - 1), last = steps[^1];
            var w = TaylorForecast.Weights(order, step.Step - last, steps.Count > 1 ? last - steps[^2] : 1);
            for (int h = 0; h < step.Cfg.Halves; h++) Array.Copy(w, 0, f, step.Cfg.Row(i, h) * history, w.Length);
        }
        foreach (var i in caching) cacheSteps[i].Add(step.Step);
        lastCached = caching.ToArray();
        var decision = new SpanDecision(step.Cfg.Rows(caching), f);
        return BlockPlan.Of(new SpanPlan(s, 0, boundary + 1, SpanValue.Feature, _ => decision, "feature", history));
    }

    /// <summary>Samples that cached at the previous step: their new change rate from their last two stored features.</summary>
    void UpdateRates(FeatureStore s, CfgLayout cfg)
    {
        var ready = lastCached.Where(i => cacheSteps[i].Count >= 2).ToArray();
        if (ready.Length == 0) return;
        var d = signal!.RelativeL1(s.Slot("feature.h0"), null, s.Slot("feature.h1"), cfg);   // on the device, one read-back
        foreach (var i in ready)
            rate[i] = d[i] / (cacheSteps[i][^1] - cacheSteps[i][^2]);
    }

    public void Dispose()
    {
        store?.Dispose();
        signal?.Dispose();
    }
}
