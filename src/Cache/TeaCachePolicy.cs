// TeaCache (Liu et al., "Timestep Embedding Tells: It's Time to Cache for Video Diffusion Model", 2025):
// skip the whole block stack while the accumulated, rescaled change of block 0's modulated input stays small.
//
//   m_i = LN(h_0)·(1 + scale_msa) + shift_msa of block 0 at step i    (SpanProbe.ModulatedInput)
//   A ← A + p(d(m_i, m_{i−1}))        p: the model's calibrated polynomial (CacheCalibration)
//   A < δ  → reuse: output of the stack = h_0 + R,   R = (stack output − h_0) of the last computed step
//   else   → compute every block, store R, A ← 0
// The first and last steps always compute; m_{i−1} is the previous step's signal (computed or not).
// Plan: SpanPlan From 0, To L, Residual.
//
// Per sample: every sample keeps its own A, m_{i−1} and R; its signal is measured over both CFG rows, so
// both halves decide together (the residual R is kept per row: the halves share no value, only the decision).
using BlockDance.Kernels;

namespace BlockDance.Cache;

/// <param name="Threshold">δ: larger skips more.</param>
/// <param name="Coefficients">p, highest power first (5 values); from the model's calibration.</param>
public sealed record TeaCacheConfig(double Threshold, double[] Coefficients)
{
    /// <summary>δ when none is given (the coefficients always come from the model's calibration).</summary>
    public const double DefaultThreshold = 0.04;

    public void Validate()
    {
        if (!(Threshold >= 0) || double.IsInfinity(Threshold)) throw new InvalidValueException("teacache threshold", "a finite value ≥ 0", $"{Threshold}");
        if (Coefficients.Length != 5) throw new InvalidValueException("teacache coefficients", "5 values", $"{Coefficients.Length}");
    }

    /// <summary>The decision rule on one sample's signal: true = compute; updates the accumulator.</summary>
    public bool Compute(ref double accumulated, double? change, bool firstOrLast)
    {
        if (firstOrLast || change is null) { accumulated = 0; return true; }
        accumulated += CacheCalibration.Polynomial(Coefficients, change.Value);
        if (accumulated < Threshold) return false;
        accumulated = 0;
        return true;
    }
}

public sealed class TeaCachePolicy(TeaCacheConfig config) : ICachePolicy
{
    FeatureStore? store;
    ChangeSignal? signal;
    double[] acc = [];
    bool hasPrevious;                   // m_{i−1} is in the store's "modulated.prev" slot, (model batch, T, D)
    int depth, rowLen;

    public long MemoryBytes => (store?.Bytes ?? 0) + (signal?.Bytes ?? 0);
    public string Describe() => $"teacache δ={config.Threshold:0.###}";

    public void Check(BlockStack model, int steps)
    {
        config.Validate();
    }

    public void Begin(BlockStack model, ComputeDevice device, int steps)
    {
        Check(model, steps);
        store?.Dispose();
        store = new FeatureStore(device, model, "teacache");
        depth = model.Depth;
        rowLen = model.Tokens * model.Hidden;
        signal?.Dispose();
        signal = new ChangeSignal(device, model.ModelBatch, rowLen);
        hasPrevious = false;
        acc = [];
    }

    public BlockPlan Plan(StepContext step)
    {
        var s = store ?? throw new InvalidOperationException("teacache: Begin was not called");
        if (acc.Length != step.Cfg.Samples) acc = new double[step.Cfg.Samples];
        bool edge = step.Step == 0 || step.Step == step.Steps - 1;
        return BlockPlan.Of(new SpanPlan(s, 0, depth, SpanValue.Residual, probe =>
        {
            // the first and last steps compute whatever the signal says: no read-back there
            var m = probe.ModulatedTensor();
            var prev = s.Slot("modulated.prev");
            double[]? d = hasPrevious && !edge ? signal!.RelativeL1(m, null, prev, step.Cfg) : null;
            prev.CopyFrom(m, 0, (long)probe.Rows * rowLen);   // on the device
            hasPrevious = true;
            var compute = Enumerable.Range(0, step.Cfg.Samples).Where(i => config.Compute(ref acc[i], d?[i], edge));
            return new SpanDecision(step.Cfg.Rows(compute));
        }));
    }

    public void Dispose()
    {
        store?.Dispose();
        signal?.Dispose();
    }
}
