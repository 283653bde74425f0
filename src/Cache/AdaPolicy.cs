// BlockDance-Ada (Zhang et al., CVPR 2025): per-sample reuse decisions from a learned network.
//
// Schedule over s steps. Steps 0..ρ−1 (ρ = 40% of s) are cache steps: a full forward whose block b
// writes its output into the cache buffer F, as BlockDance-N's cache steps do. Right before step ρ
// the denoiser hands the policy the current sample z_ρ and the class labels (ICachePolicy.ObserveSample,
// the one extra hook; the other policies ignore it) and the decision network f_d (AdaDecisionNetwork,
// on the device) decides every remaining step of every sample: u_t = 1 cache step, u_t = 0 reuse step.
// Inference thresholds m = sigmoid(f_d) at 0.5; the trainer passes sampled decisions (WithDecisions).
//
// Mixed batches. The model batch holds the B samples and, with CFG, their unconditional duplicates:
// rows i and i + B are the same sample (same x) and always get sample i's decision. At a step ≥ ρ:
//   every row reuses  → BlockPlan(Start: b+1, StartFeature: F)                       blocks 0..b skipped
//   every row caches  → BlockPlan(StoreAfter: b, StoreInto: F)                       a plain cache step
//   mixed             → BlockPlan(Start: b+1, StartFeature: F, RefreshSamples: rows that cache)
// In the mixed case DiT.Forward gathers the caching rows into a compact sub-batch, runs blocks 0..b on
// it alone and scatters the result into those rows of F; blocks b+1..L−1 then run on the whole batch
// straight from F. So the work in blocks 0..b is proportional to the rows that cache, the reused rows
// are read where they lie (never copied, never recomputed), and F is valid for every row after every
// step (refreshed rows hold this step's block-b output, the others keep theirs), which is all the next
// reuse step needs. Beyond that only the patch embedding runs on every row (a few kFLOP per sample).
// A reuse always finds a stored feature: step ρ−1 is a cache step for every row.
using System.Diagnostics;
using BlockDance.Kernels;
using BlockDance.Transformer;

namespace BlockDance.Cache;

public sealed class AdaPolicy : ICachePolicy
{
    readonly AdaWeights weights;
    readonly bool[][]? given;            // trainer: decisions per sample, per step ≥ ρ (true = cache)
    readonly string source;
    AdaDecisionNetwork? net;
    Tensor? feature;                     // (model batch, T, D): block b's output, per row
    bool[][]? decisions;                 // per sample, per step ≥ ρ
    int samples, rowsPerSample, modelBatch;
    bool featureValid;
    readonly List<int> reused = new();

    /// <summary>Inference: decisions from the network, thresholded at m ≥ 0.5.</summary>
    public AdaPolicy(AdaWeights weights, string source = "")
    {
        this.weights = weights;
        this.source = source;
    }

    AdaPolicy(AdaWeights weights, bool[][] decisions) : this(weights, "given decisions") => given = decisions;

    /// <summary>Training: the given decisions (sampled from m by the trainer) instead of the network's.</summary>
    public static AdaPolicy WithDecisions(AdaWeights weights, bool[][] decisions) => new(weights, decisions);

    public AdaPolicyInfo Info => weights.Info;
    public int Boundary => weights.Info.Boundary;
    public Tensor? Feature => feature;
    /// <summary>The decisions of this run (per sample, per step ≥ ρ; true = cache), once step ρ was observed.</summary>
    public IReadOnlyList<bool[]>? Decisions => decisions;
    /// <summary>Seconds the decision network took in this run (device forward + copy of the logits).</summary>
    public double NetworkSeconds { get; private set; }
    public long MemoryBytes => (feature?.Bytes ?? 0) + (net != null ? weights.ParameterCount * sizeof(float) : 0);
    public IReadOnlyList<int> ReusedSteps => reused;

    /// <summary>Fraction of the s − ρ decided steps that reuse, averaged over the samples (null before step ρ).</summary>
    public double? ReuseFraction => decisions is null ? null
        : decisions.Average(d => d.Count(c => !c) / (double)d.Length);

    public string Describe() =>
        $"ada b={Boundary} rho={Info.Rho}/{Info.Steps}" + (source.Length > 0 ? $" ({Path.GetFileName(source)})" : "") +
        (ReuseFraction is double r ? $", {r:P0} of steps ≥ rho reused" : "");

    public void Begin(DiT model, int steps, int batch)
    {
        Info.CheckRun(model.Config, steps);
        var cfg = model.Config;
        var shape = new[] { batch, cfg.Tokens, cfg.Hidden };
        if (feature == null || !feature.Shape.SequenceEqual(shape))
        {
            feature?.Dispose();
            feature = Tensor.Allocate(model.Device, $"ada.block{Boundary}", shape);   // once per run shape
        }
        if (given == null) net ??= new AdaDecisionNetwork(model.Device, weights);
        modelBatch = batch;
        decisions = null;
        featureValid = false;
        reused.Clear();
    }

    public void ObserveSample(int step, Tensor x, IReadOnlyList<int> classes)
    {
        if (step != Info.Rho) return;
        samples = x.Shape[0];
        if (classes.Count != samples || modelBatch % samples != 0)
            throw new ArgumentException($"ada: {samples} samples with {classes.Count} labels do not divide the model batch of {modelBatch}");
        rowsPerSample = modelBatch / samples;   // 2 with CFG (cond; uncond), else 1
        if (given != null)
        {
            if (given.Length != samples || given.Any(d => d.Length != Info.Decisions))
                throw new ArgumentException($"ada: expected decisions for {samples} samples × {Info.Decisions} steps");
            decisions = given;
            return;
        }
        var sw = Stopwatch.StartNew();
        var logits = net!.Forward(x, classes);                                     // (B, s − ρ)
        decisions = Enumerable.Range(0, samples)
            .Select(i => AdaWeights.Threshold(logits.AsSpan(i * Info.Decisions, Info.Decisions))).ToArray();
        NetworkSeconds = sw.Elapsed.TotalSeconds;
        var perSample = decisions.Select(d => d.Count(c => !c)).ToArray();
        int distinct = decisions.Select(d => string.Concat(d.Select(c => c ? '1' : '0'))).Distinct().Count();
        Log.Info($"ada: decision network ({weights.ParameterCount:N0} parameters) on {samples} samples: " +
                 $"{NetworkSeconds * 1e3:F2} ms ({NetworkSeconds * 1e3 / samples:F3} ms per sample); {ReuseFraction:P0} of steps {Info.Rho}..{Info.Steps - 1} reused " +
                 $"(per sample {perSample.Min()}..{perSample.Max()} of {Info.Decisions} steps, {distinct} distinct schedules)");
    }

    /// <summary>Trainer: fills the cache buffer with the block-b features of step ρ−1 (model batch, T, D),
    /// so that an episode can start at step ρ.</summary>
    public void LoadFeature(float[] rows)
    {
        if (feature == null) throw new InvalidOperationException("ada: Begin was not called");
        feature.CopyFromHost(rows);
        featureValid = true;
    }

    public BlockPlan BeforeStep(int step)
    {
        if (feature == null) throw new InvalidOperationException("ada: Begin was not called");
        var store = new BlockPlan(StoreAfter: Boundary, StoreInto: feature);
        if (step < Info.Rho)
        {
            featureValid = true;   // a cache step for every row
            return store;
        }
        if (decisions == null)
            throw new InvalidOperationException($"ada: no decisions at step {step}: the sampler did not call ObserveSample at step {Info.Rho}");
        if (!featureValid) throw new InvalidOperationException($"ada: step {step} has no stored feature (steps 0..{Info.Rho - 1} did not run)");
        var rows = CacheRows(step - Info.Rho);
        if (rows.Length == modelBatch) return store;
        reused.Add(step);
        return rows.Length == 0
            ? new BlockPlan(Start: Boundary + 1, StartFeature: feature)
            : new BlockPlan(Start: Boundary + 1, StartFeature: feature, RefreshSamples: rows);
    }

    /// <summary>Model rows that cache at decision index d: sample i and its duplicates i + B (CFG), ascending.</summary>
    int[] CacheRows(int d)
    {
        var rows = new List<int>();
        for (int r = 0; r < rowsPerSample; r++)
            for (int i = 0; i < samples; i++)
                if (decisions![i][d]) rows.Add(r * samples + i);
        return rows.ToArray();
    }

    public void Dispose()
    {
        feature?.Dispose();
        net?.Dispose();
    }
}
