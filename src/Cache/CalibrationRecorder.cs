// Records what `blockdance calibrate` fits (CacheCalibration) from an uncached run: every step computes the
// whole stack as a span (From 0, To L, Residual: output bit-identical to no cache) and, per sample and step,
// the recorder keeps
//   the relative L1 change of block 0's modulated input    (TeaCache's input signal)
//   the relative L1 change of the whole-stack output       (TeaCache's fitted target)
//   the mean magnitude of the whole-stack residual r = output − h_0   (MagCache's ratio curve)
// Step i's output and residual are read at step i + 1's gate, before they are overwritten, so the last step
// contributes no output change and no ratio (it always computes in both methods).
using BlockDance.Kernels;

namespace BlockDance.Cache;

public sealed class CalibrationRecorder : ICachePolicy
{
    FeatureStore? store;
    int depth, rowLen;
    float[]? prevModulated, prevOutput;
    double[]? prevInputChange;

    /// <summary>(input change, output change) pairs, one per sample and step 1 … K−2.</summary>
    public List<(double Input, double Output)> TeaPairs { get; } = new();
    /// <summary>Mean |r| per step (index) and sample, appended as read.</summary>
    public List<(int Step, double Magnitude)> Magnitudes { get; } = new();
    /// <summary>The modulated-input change per step and sample (for threshold suggestions).</summary>
    public List<(int Step, int Sample, double Change)> InputChanges { get; } = new();

    public long MemoryBytes => store?.Bytes ?? 0;
    public string Describe() => "calibration recorder (uncached)";

    public void Check(BlockStack model, int steps) { }

    public void Begin(BlockStack model, ComputeDevice device, int steps)
    {
        Check(model, steps);
        store?.Dispose();
        store = new FeatureStore(device, model, "calibration");
        depth = model.Depth;
        rowLen = model.Tokens * model.Hidden;
        prevModulated = prevOutput = null;
        prevInputChange = null;
    }

    public BlockPlan Plan(StepContext step)
    {
        var s = store ?? throw new InvalidOperationException("calibration: Begin was not called");
        return BlockPlan.Of(new SpanPlan(s, 0, depth, SpanValue.Residual, probe =>
        {
            if (step.Step > 0)
            {
                var output = s.Read("out");                                       // step − 1's stack output
                foreach (var (m, i) in CacheSignals.MeanAbs(s.Read("span.h0"), step.Cfg, rowLen).Select((m, i) => (m, i)))
                    Magnitudes.Add((step.Step - 1, m));
                if (prevOutput != null && prevInputChange != null)
                {
                    var dOut = CacheSignals.RelativeL1(output, prevOutput, step.Cfg, rowLen);
                    for (int i = 0; i < dOut.Length; i++) TeaPairs.Add((prevInputChange[i], dOut[i]));
                }
                prevOutput = output;
            }
            var mod = probe.ModulatedInput();
            if (prevModulated != null)
            {
                prevInputChange = CacheSignals.RelativeL1(mod, prevModulated, step.Cfg, rowLen);
                for (int i = 0; i < prevInputChange.Length; i++) InputChanges.Add((step.Step, i, prevInputChange[i]));
            }
            prevModulated = mod;
            return SpanDecision.All(step.Cfg.ModelBatch);
        }));
    }

    /// <summary>The calibration from what was recorded over `steps` steps.</summary>
    public CacheCalibration Fit(string model, int steps, int samples)
    {
        var coef = CacheCalibration.FitPolynomial(TeaPairs.Select(p => p.Input).ToList(), TeaPairs.Select(p => p.Output).ToList());
        var mean = Enumerable.Range(0, steps).Select(i => Magnitudes.Where(m => m.Step == i).Select(m => m.Magnitude).DefaultIfEmpty(double.NaN).Average()).ToArray();
        var ratios = new double[steps];
        for (int i = 0; i < steps; i++)
            ratios[i] = i == 0 || double.IsNaN(mean[i]) || double.IsNaN(mean[i - 1]) || mean[i - 1] == 0 ? 1 : mean[i] / mean[i - 1];
        return new CacheCalibration(model, steps, samples, coef, ratios);
    }

    public void Dispose() => store?.Dispose();
}
