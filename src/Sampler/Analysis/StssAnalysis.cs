// The STSS observation (BlockDance, Zhang et al. CVPR 2025, Figures 2 and 6) measured on any model:
// for every block b and every pair of adjacent sampling steps (s−1, s), how close is the block's
// output at step s to its output at step s−1?
//   MSE    = Σ(F_s − F_{s−1})² / numel          cosine = ⟨F_s, F_{s−1}⟩ / (‖F_s‖·‖F_{s−1}‖)
// F is the block's output (N, T, D) for the WHOLE model batch, CFG halves included (conditional
// and null-label rows), flattened into one vector: sums are pooled over the samples, and over the
// batches when --batch splits the classes.
//
// How: one uncached sampling run with the model's OnBlockOutput hooked (DiT or PixArt-α, IBlockModel); its policy (StepTracker, always a full
// step) reads the current step from the step context, so each block output is filed under it. Each block keeps a copy
// of its previous-step output on the device (depth buffers of (N, T, D), allocated once); at each
// block output the FeatureSimilarity kernel adds the four sums into a small device results buffer
// at slot (s−1)·depth + b, then the output is copied (device to device) over the previous one.
// The results buffer is copied to the host once, after the run.
using System.Diagnostics;
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Transformer;
using ILGPU.Runtime;

namespace BlockDance.Sampler.Analysis;

/// <summary>Per block and step pair: MSE and cosine of the block's outputs at steps s−1 and s.
/// Pair p (0-based) compares sampling steps p and p+1; it is labelled s = p + 1 (the CSV's step_pair).</summary>
public sealed record StssResult(
    int Steps,
    int Depth,
    int[] StepTimesteps,      // (Steps) original timestep of each sampling step, step 0 = largest t
    double[,] Mse,            // (Depth, Steps − 1)
    double[,] Cosine,         // (Depth, Steps − 1)
    double[,] Rms,            // (Depth, Steps − 1) √(Σ F_s² / numel): the feature scale MSE depends on
    int ModelBatch,           // rows per forward (2× the samples with CFG)
    long ElementsPerPair,     // numel pooled into every (block, pair) value
    SamplingResult Sampling,
    double AnalysisSeconds)   // wall time of the whole analysed run
{
    public int Pairs => Steps - 1;
    public double Log10Mse(int block, int pair) => Math.Log10(Mse[block, pair]);
}

public static class StssAnalysis
{
    /// <summary>Runs one uncached sampling job of `o` on `model` and measures every block at every step pair.
    /// A handler already on model.OnBlockOutput keeps being called (first) and is restored afterwards.</summary>
    public static StssResult Run(DiT model, SamplingOptions o) => Run(model, o, opts => SamplingSession.Run(model, opts));

    /// <summary>The same on any IBlockModel (PixArt-α), `sample` running the job with the options it is given.</summary>
    public static StssResult Run(IBlockModel model, SamplingOptions o, Func<SamplingOptions, SamplingResult> sample)
    {
        if (o.Steps < 2)
            throw new InvalidValueException("STSS analysis steps (it compares adjacent steps)", "at least 2", $"{o.Steps}");
        var cfg = model.Shape;
        var dev = model.Device;
        var schedule = new Schedule(o.Steps, o.Spacing);
        int steps = schedule.Steps, depth = cfg.Depth, pairs = steps - 1;
        int modelBatch = o.EffectiveBatch * (o.Cfg > 1 ? 2 : 1);

        var prev = new Tensor[depth];
        using var results = dev.Accelerator.Allocate1D<double>((long)pairs * depth * FeatureSimilarity.Stats);
        using var scratch = new FeatureSimilarity.Scratch(dev);
        var outer = model.OnBlockOutput;
        try
        {
            for (int b = 0; b < depth; b++)
                prev[b] = Tensor.Allocate(dev, $"stss.prev.block{b}", modelBatch, cfg.Tokens, cfg.Hidden);   // (N, T, D)
            Log.Info($"stss: {depth} previous-step buffers of {Tensor.ShapeString(prev[0].Shape)}, " +
                     $"{depth * prev[0].Bytes / 1048576.0:F1} MiB; results {results.LengthInBytes / 1024.0:F1} KiB on the device");
            results.MemSetToZero();

            var tracker = new StepTracker();
            long elementsPerPair = 0;
            model.OnBlockOutput = (block, output) =>
            {
                outer?.Invoke(block, output);
                int step = tracker.Step;   // a new batch of classes starts again at step 0 (nothing to compare with)
                if (block == 0 && step == 1) elementsPerPair += output.Length;
                var previous = prev[block].View.SubView(0, output.Length);
                if (step > 0)
                    FeatureSimilarity.Run(dev, output.View, previous, output.Length, results.View, (step - 1) * depth + block, scratch);
                output.View.CopyTo(previous);                                                   // device → device
            };

            var wall = Stopwatch.StartNew();
            var sampling = sample(o with { Policy = () => tracker });
            var sums = new double[results.Length];
            results.View.CopyToCPU(sums);                                                       // the one copy to the host
            double seconds = wall.Elapsed.TotalSeconds;

            var mse = new double[depth, pairs];
            var cos = new double[depth, pairs];
            var rms = new double[depth, pairs];
            for (int p = 0; p < pairs; p++)
                for (int b = 0; b < depth; b++)
                {
                    int slot = p * depth + b;
                    (mse[b, p], cos[b, p]) = FeatureSimilarity.Finish(sums, slot, elementsPerPair);
                    rms[b, p] = Math.Sqrt(sums[slot * FeatureSimilarity.Stats + 2] / elementsPerPair);   // Σa², a = step s
                }
            var timesteps = o.Sampler == SamplerKind.DpmSolver2M ? new DpmSolver(steps).Timesteps : schedule.Timesteps.Reverse().ToArray();
            return new StssResult(steps, depth, timesteps, mse, cos, rms, modelBatch,
                elementsPerPair, sampling, seconds);
        }
        finally
        {
            model.OnBlockOutput = outer;
            foreach (var t in prev) t?.Dispose();
        }
    }
}

/// <summary>No caching (a full step every step); remembers the step being run, for the block-output hook.</summary>
sealed class StepTracker : ICachePolicy
{
    public int Step { get; private set; } = -1;
    public string Describe() => "none";
    public void Check(BlockStack stack, int steps) { }
    public void Begin(BlockStack stack, ComputeDevice device, int steps) => Step = -1;
    public BlockPlan Plan(StepContext step)
    {
        Step = step.Step;
        return BlockPlan.Full;
    }
    public long MemoryBytes => 0;
    public void Dispose() { }
}

/// <summary>
/// "Where does reuse look safest?" — the paper's two claims checked on the measured model:
///   1. later steps are more similar: mean cosine of the pairs inside the reuse window [start, end)
///      vs the pairs before it (pair s is in the window when s / steps ∈ [start, end), the same rule
///      BlockDance uses to pick reuse steps; a reuse at step s feeds step s−1's feature into step s);
///   2. shallow/middle blocks (0..b, b = the model's default BlockDance boundary) are more similar
///      than the deep ones (b+1..L−1), over the window.
/// Plus two numbers to choose settings with: the deepest boundary whose blocks 0..b all keep
/// cosine ≥ threshold at every pair of the window, and the first step from which blocks 0..b stay
/// ≥ threshold up to the window's end.
/// </summary>
public sealed class StssSummary(StssResult r, double windowStart, double windowEnd, double threshold, int shallowEnd)
{
    public double Threshold => threshold;
    public int ShallowEnd => shallowEnd;
    public int[] EarlyPairs { get; } = PairsWhere(r, f => f < windowStart);
    public int[] WindowPairs { get; } = PairsWhere(r, f => f >= windowStart && f < windowEnd);
    public int[] LatePairs { get; } = PairsWhere(r, f => f >= windowEnd);

    static int[] PairsWhere(StssResult r, Func<double, bool> keep) =>
        Enumerable.Range(0, r.Pairs).Where(p => keep((p + 1) / (double)r.Steps)).ToArray();

    public double MeanCos(IEnumerable<int> blocks, IEnumerable<int> pairs) => Mean(blocks, pairs, (b, p) => r.Cosine[b, p]);
    public double MeanLog10Mse(IEnumerable<int> blocks, IEnumerable<int> pairs) => Mean(blocks, pairs, r.Log10Mse);
    public double MinCos(int block, IEnumerable<int> pairs) => pairs.Select(p => r.Cosine[block, p]).DefaultIfEmpty(double.NaN).Min();

    static double Mean(IEnumerable<int> blocks, IEnumerable<int> pairs, Func<int, int, double> v)
    {
        var xs = blocks.SelectMany(b => pairs.Select(p => v(b, p))).Where(double.IsFinite).ToList();
        return xs.Count == 0 ? double.NaN : xs.Average();
    }

    IEnumerable<int> Blocks(int from, int to) => Enumerable.Range(from, Math.Max(0, to - from + 1));

    /// <summary>Deepest b with min cosine ≥ threshold over the window for every block 0..b; −1 if block 0 already fails.</summary>
    public int SafeBoundary()
    {
        int b = -1;
        while (b + 1 < r.Depth && WindowPairs.Length > 0 && MinCos(b + 1, WindowPairs) >= threshold) b++;
        return b;
    }

    /// <summary>First step label s from which blocks 0..ShallowEnd keep cosine ≥ threshold at every pair up to the
    /// window's last pair (all pairs when the window is empty); −1 if the last such pair already fails.</summary>
    public int SimilarFromStep()
    {
        int last = WindowPairs.Length > 0 ? WindowPairs[^1] : r.Pairs - 1;
        int first = last + 1;
        while (first - 1 >= 0 && Blocks(0, shallowEnd).All(b => r.Cosine[b, first - 1] >= threshold)) first--;
        return first > last ? -1 : first + 1;
    }

    static string F(double v, string fmt = "F6") => double.IsNaN(v) ? "-" : v.ToString(fmt, System.Globalization.CultureInfo.InvariantCulture);
    static string Range(int[] pairs) => pairs.Length == 0 ? "none" : $"{pairs[0] + 1}..{pairs[^1] + 1}";

    public IEnumerable<string> Lines()
    {
        int depth = r.Depth;
        yield return $"---- STSS: block outputs at adjacent steps (s-1 -> s), whole model batch of {r.ModelBatch} incl. CFG halves ----";
        yield return $"step pairs: early {Range(EarlyPairs)} | window [{windowStart:0.##}, {windowEnd:0.##}) {Range(WindowPairs)} | late {Range(LatePairs)}  (of {r.Steps} steps)";
        yield return "block  cos early  cos window  min cos window (at s)  cos late  log10 MSE early  window";
        for (int b = 0; b < depth; b++)
        {
            var minAt = WindowPairs.Length == 0 ? -1 : WindowPairs.MinBy(p => r.Cosine[b, p]);
            yield return $"{b,5}  {F(MeanCos([b], EarlyPairs)),9}  {F(MeanCos([b], WindowPairs)),10}  " +
                         $"{F(MinCos(b, WindowPairs)),14} {(minAt < 0 ? "" : $"({minAt + 1})"),-6}  {F(MeanCos([b], LatePairs)),8}  " +
                         $"{F(MeanLog10Mse([b], EarlyPairs), "F2"),15}  {F(MeanLog10Mse([b], WindowPairs), "F2"),6}";
        }
        var all = Blocks(0, depth - 1).ToArray();
        double early = MeanCos(all, EarlyPairs), window = MeanCos(all, WindowPairs);
        double mseEarly = MeanLog10Mse(all, EarlyPairs), mseWindow = MeanLog10Mse(all, WindowPairs);
        yield return $"later steps more similar (window vs early): cosine {F(window)} vs {F(early)} -> {Verdict(window, early)}; " +
                     $"log10 MSE {F(mseWindow, "F2")} vs {F(mseEarly, "F2")} -> {Verdict(mseEarly, mseWindow)}";
        yield return $"  feature RMS (sets the MSE scale): early {F(Mean(all, EarlyPairs, (b, p) => r.Rms[b, p]), "G4")}, " +
                     $"window {F(Mean(all, WindowPairs, (b, p) => r.Rms[b, p]), "G4")}";
        if (shallowEnd + 1 < depth)
        {
            var shallowBlocks = Blocks(0, shallowEnd).ToArray();
            var deepBlocks = Blocks(shallowEnd + 1, depth - 1).ToArray();
            double shallow = MeanCos(shallowBlocks, WindowPairs), deep = MeanCos(deepBlocks, WindowPairs);
            double mseShallow = MeanLog10Mse(shallowBlocks, WindowPairs), mseDeep = MeanLog10Mse(deepBlocks, WindowPairs);
            yield return $"shallow/middle more similar (blocks 0..{shallowEnd} vs {shallowEnd + 1}..{depth - 1}, window): " +
                         $"cosine {F(shallow)} vs {F(deep)} -> {Verdict(shallow, deep)}; " +
                         $"log10 MSE {F(mseShallow, "F2")} vs {F(mseDeep, "F2")} -> {Verdict(mseDeep, mseShallow)}";
        }
        int safe = SafeBoundary();
        yield return safe < 0
            ? $"reuse boundary: none; block 0 drops to cosine {F(MinCos(0, WindowPairs))} inside the window (threshold {threshold:0.###})"
            : $"reuse boundary: blocks 0..{safe} keep cosine >= {threshold:0.###} at every window pair -> deepest safe b = {safe}" +
              (safe >= depth - 1 ? $" (all blocks; BlockDance needs b <= {depth - 2})" : "") + $"; default b = {shallowEnd}";
        int from = SimilarFromStep();
        yield return from < 0
            ? $"blocks 0..{shallowEnd} are below cosine {threshold:0.###} at the window's last pair"
            : $"blocks 0..{shallowEnd} stay >= {threshold:0.###} from step {from} of {r.Steps} ({100.0 * from / r.Steps:F0}% of sampling) " +
              $"to the window end; window starts at {100 * windowStart:F0}%";
    }

    static string Verdict(double a, double b) => double.IsNaN(a) || double.IsNaN(b) ? "n/a (no pairs)" : a > b ? "yes" : "no";
}
