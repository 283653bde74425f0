// AdaCache (Kahatapitiya et al., "Adaptive Caching for Faster Video Generation with Diffusion Transformers", Meta 2024):
// each block's residuals (its attention residual and its cross-attention + MLP residual, as added to the stream) are
// cached at a compute step and added unchanged on the following cached steps; how many steps are cached comes from a
// codebook over how much a probe residual changed between the last two compute steps:
//
//   c = d(p_i, p_j) / k                  relative L1 change of the probe residual between compute steps j < i, per step
//   next compute step = i + codebook(c)  codebook (100 steps): c < 0.03 → 12, < 0.05 → 10, < 0.07 → 8, < 0.09 → 6,
//                                        < 0.11 → 4, otherwise 3
//   the first two steps (c needs two computed residuals) and the last step always compute
//
// In this engine the cached residuals are added unchanged, so on a cached step every block adds a constant: their sum
// is the residual of the whole stack, h_L − h_0, and the plan caches that (SpanPlan Residual over blocks 0..L−1,
// history 2: the two newest computed residuals). The probe is that stack residual (the source probes one block's
// residual). Mapping to this run: intervals scale by steps/100 (rounded, ≥ 1) and k is counted in 100-step units, so c
// is the change per step of the published setting. Left out: the optional motion regularisation (video-only).
//
// Per sample: each sample keeps its own compute steps and next step (both CFG rows decide together); the rows that compute
// run as a sub-batch when the samples differ.
using BlockDance.Kernels;

namespace BlockDance.Cache;

/// <param name="Thresholds">The codebook's upper bounds on c, ascending; the last entry's interval applies above them.</param>
/// <param name="Intervals">The codebook's recompute intervals at ReferenceSteps steps (one more than Thresholds, or as many).</param>
/// <param name="Scale">Multiplies every threshold (the speed/quality knob: larger caches longer).</param>
public sealed record AdaCacheConfig(double[] Thresholds, int[] Intervals, double Scale = 1)
{
    public const int ReferenceSteps = 100;
    public static readonly double[] DefaultThresholds = [0.03, 0.05, 0.07, 0.09, 0.11, 1.00];
    public static readonly int[] DefaultIntervals = [12, 10, 8, 6, 4, 3];

    public AdaCacheConfig() : this(DefaultThresholds, DefaultIntervals) { }

    public void Validate()
    {
        if (Thresholds.Length == 0 || Intervals.Length != Thresholds.Length)
            throw new InvalidValueException("adacache codebook", "as many intervals as thresholds, at least one", $"{Thresholds.Length} thresholds, {Intervals.Length} intervals");
        for (int j = 1; j < Thresholds.Length; j++)
            if (!(Thresholds[j] > Thresholds[j - 1])) throw new InvalidValueException("adacache codebook", "ascending thresholds", string.Join(", ", Thresholds));
        if (Intervals.Any(v => v < 1)) throw new InvalidValueException("adacache codebook", "intervals ≥ 1", string.Join(", ", Intervals));
        if (!(Scale >= 0) || double.IsInfinity(Scale)) throw new InvalidValueException("adacache scale", "a finite value ≥ 0", $"{Scale}");
    }

    /// <summary>The codebook's interval for change c, mapped to a run of `steps`.</summary>
    public int Interval(double c, int steps)
    {
        int j = Array.FindIndex(Thresholds, th => c < th * Scale);
        int v = Intervals[j < 0 ? Intervals.Length - 1 : j];
        return Math.Max(1, (int)Math.Round(v * (double)steps / ReferenceSteps, MidpointRounding.AwayFromZero));
    }

    /// <summary>c: the relative change d between compute steps `gap` apart, per step of the published setting.</summary>
    public static double PerStep(double d, int gap, int steps) => d / (gap * (double)ReferenceSteps / steps);
}

public sealed class AdaCachePolicy(AdaCacheConfig config) : ICachePolicy
{
    FeatureStore? store;
    ChangeSignal? signal;
    int depth, steps, rowLen;
    int[] last = [], previous = [], next = [], computed = [], decidedAt = [];

    public long MemoryBytes => (store?.Bytes ?? 0) + (signal?.Bytes ?? 0);
    public string Describe() => $"adacache scale={config.Scale:0.###} codebook {string.Join(" ", config.Thresholds.Zip(config.Intervals, (t, v) => $"{t:0.###}:{v}"))} @{AdaCacheConfig.ReferenceSteps}";

    public void Check(BlockStack model, int steps) => config.Validate();

    public void Begin(BlockStack model, ComputeDevice device, int steps)
    {
        Check(model, steps);
        depth = model.Depth;
        rowLen = model.RowLength;
        this.steps = steps;
        int b = model.Cfg.Samples;
        last = new int[b]; previous = new int[b]; next = new int[b]; computed = new int[b];
        decidedAt = Enumerable.Repeat(-1, b).ToArray();
        store?.Dispose();
        store = new FeatureStore(device, model, "adacache");
        signal?.Dispose();
        signal = new ChangeSignal(device, model.ModelBatch, rowLen);
    }

    public BlockPlan Plan(StepContext step)
    {
        var s = store ?? throw new InvalidOperationException("adacache: Begin was not called");
        var span = new SpanPlan(s, 0, depth, SpanValue.Residual, _ => Decide(step, s), "adacache", History: 2);
        return BlockPlan.Of(span);
    }

    SpanDecision Decide(StepContext step, FeatureStore s)
    {
        int i = step.Step, b = step.Cfg.Samples;
        // a sample with two computed residuals and no decision since its last compute step reads the codebook now
        var undecided = Enumerable.Range(0, b).Where(k => computed[k] >= 2 && decidedAt[k] != last[k]).ToArray();
        if (undecided.Length > 0)
        {
            // d(newest, previous) per sample, reduced on the device: one read-back, only on a step that reads the codebook
            var change = signal!.RelativeL1(s.Slot("adacache.h0"), null, s.Slot("adacache.h1"), step.Cfg);
            foreach (var k in undecided)
            {
                double c = AdaCacheConfig.PerStep(change[k], last[k] - previous[k], steps);
                next[k] = last[k] + config.Interval(c, steps);
                decidedAt[k] = last[k];
            }
        }
        var compute = Enumerable.Range(0, b).Where(k => computed[k] < 2 || i == steps - 1 || i >= next[k]).ToArray();
        foreach (var k in compute)
        {
            previous[k] = last[k];
            last[k] = i;
            computed[k]++;
        }
        return new SpanDecision(step.Cfg.Rows(compute));
    }

    public void Dispose()
    {
        store?.Dispose();
        signal?.Dispose();
    }
}
