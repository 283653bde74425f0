// BlockDance-Ada (Zhang et al., CVPR 2025): per-sample reuse decisions from a learned network.
//
// Schedule over s steps. Steps 0..ρ−1 (ρ = 40% of s) are cache steps: a full forward whose block b
// writes its output into the cache buffer F, as BlockDance-N's cache steps do. Right before step ρ
// the policy reads the current sample z_ρ and the class labels (a caption model: the caption summaries,
// StepContext.Captions) from the step context and the decision network f_d (AdaDecisionNetwork, on the device)
// decides every remaining step of every sample:
// u_t = 1 cache step, u_t = 0 reuse step.
// Inference thresholds m = sigmoid(f_d) at 0.5; the trainer passes sampled decisions (WithDecisions).
//
// Mixed batches. The model batch holds the B samples and, with CFG, their unconditional duplicates:
// rows i and i + B are the same sample (same x) and always get sample i's decision (CfgLayout). At a
// step ≥ ρ, with F = block b's features in the policy's FeatureStore:
//   every row reuses  → BlockPlan.Reuse                                              blocks 0..b skipped
//   every row caches  → BlockPlan.Cache                                              a plain cache step
//   mixed             → BlockPlan.Refresh(rows that cache)
// In the mixed case PlanRunner gathers the caching rows into a compact sub-batch, runs blocks 0..b on
// it alone and scatters the result into those rows of F; blocks b+1..L−1 then run on the whole batch
// straight from F. So the work in blocks 0..b is proportional to the rows that cache, the reused rows
// are read where they lie (never copied, never recomputed), and F is valid for every row after every
// step (refreshed rows hold this step's block-b output, the others keep theirs), which is all the next
// reuse step needs. Beyond that only the patch embedding runs on every row (a few kFLOP per sample).
// A reuse always finds a stored feature: step ρ−1 is a cache step for every row.
//
// Learned boundary (a network with a boundary head, AdaPolicyInfo.Candidates = b_1 < … < b_k): at step ρ the
// network also picks each sample's boundary b_i (argmax of its boundary logits; the trainer passes sampled
// ones), kept for all its remaining steps. Steps < ρ are Ladder plans (LadderPlan) over every candidate with every
// row caching (nothing is decided yet: each candidate's feature is stored; bit-identical to no cache). At a step ≥ ρ,
// when the batch's samples chose different boundaries, a Ladder over the chosen ones: a caching sample runs every
// block and stores its outputs at them, a reusing sample i reads its own block-b_i feature and skips blocks 0..b_i.
// When they all chose one b, the Cache/Reuse/Refresh plans above at that b (the same values, fewer launches).
// A fixed-boundary network keeps the Cache/Reuse/Refresh plans above.
using System.Diagnostics;
using BlockDance.Kernels;

namespace BlockDance.Cache;

public sealed class AdaPolicy : ICachePolicy
{
    readonly AdaWeights weights;
    readonly bool[][]? given;            // trainer: decisions per sample, per step ≥ ρ (true = cache)
    readonly int[]? givenBoundaries;     // trainer, learned boundary: index into the candidates per sample
    readonly string source;
    AdaDecisionNetwork? net;
    FeatureStore? store;                 // block b's output, per row of the model batch
    bool[][]? decisions;                 // per sample, per step ≥ ρ
    int[]? boundaries;                   // learned boundary: the block per sample

    /// <summary>Inference: decisions from the network, thresholded at m ≥ 0.5.</summary>
    public AdaPolicy(AdaWeights weights, string source = "")
    {
        this.weights = weights;
        this.source = source;
    }

    AdaPolicy(AdaWeights weights, bool[][] decisions, int[]? choices) : this(weights, "given decisions") =>
        (given, givenBoundaries) = (decisions, choices);

    /// <summary>Training: the given decisions (sampled from m by the trainer) instead of the network's; for a learned
    /// boundary also each sample's candidate index (sampled from q).</summary>
    public static AdaPolicy WithDecisions(AdaWeights weights, bool[][] decisions, int[]? boundaryChoices = null)
    {
        if (weights.Info.LearnsBoundary != (boundaryChoices != null))
            throw new ArgumentException($"ada: a {weights.Info.Kind} network takes {(weights.Info.LearnsBoundary ? "a boundary choice per sample" : "no boundary choices")}");
        return new(weights, decisions, boundaryChoices);
    }

    public AdaPolicyInfo Info => weights.Info;
    public int Boundary => weights.Info.Boundary;
    public FeatureStore? Store => store;
    /// <summary>The decisions of this run (per sample, per step ≥ ρ; true = cache), once step ρ was planned.</summary>
    public IReadOnlyList<bool[]>? Decisions => decisions;
    /// <summary>Each sample's boundary block in this run, once step ρ was planned (null before; a fixed-boundary network: all Boundary).</summary>
    public IReadOnlyList<int>? SampleBoundaries => decisions is null ? null : boundaries ?? decisions.Select(_ => Boundary).ToArray();
    /// <summary>Seconds the decision network took in this run (device forward + copy of the logits).</summary>
    public double NetworkSeconds { get; private set; }
    public long MemoryBytes => (store?.Bytes ?? 0) + (net != null ? weights.ParameterCount * sizeof(float) : 0);

    /// <summary>Fraction of the s − ρ decided steps that reuse, averaged over the samples (null before step ρ).</summary>
    public double? ReuseFraction => decisions is null ? null
        : decisions.Average(d => d.Count(c => !c) / (double)d.Length);

    public string Describe() =>
        $"ada b={(Info.LearnsBoundary ? "learned of " + string.Join(",", Info.Candidates!) : Boundary)} rho={Info.Rho}/{Info.Steps}" + (source.Length > 0 ? $" ({Path.GetFileName(source)})" : "") +
        (ReuseFraction is double r ? $", {r:P0} of steps ≥ rho reused" : "");

    public void Check(BlockStack model, int steps)
    {
        Info.CheckRun(model, steps);
    }

    public void Begin(BlockStack model, ComputeDevice device, int steps)
    {
        Check(model, steps);
        store?.Dispose();
        store = new FeatureStore(device, model, "ada");
        if (given == null) net ??= new AdaDecisionNetwork(device, weights);
        decisions = null;
        boundaries = null;
    }

    public BlockPlan Plan(StepContext step)
    {
        if (store == null) throw new InvalidOperationException("ada: Begin was not called");
        if (step.Step == Info.Rho) Decide(step);
        if (Info.LearnsBoundary && step.Step < Info.Rho) return Ladder(step);
        if (Info.LearnsBoundary && boundaries == null)
            throw new InvalidOperationException($"ada: no boundaries at step {step.Step}: sampling did not pass step {Info.Rho}");
        if (Info.LearnsBoundary && boundaries!.Distinct().Count() > 1) return Ladder(step);
        int boundary = boundaries?[0] ?? Boundary;   // learned: the one boundary every sample of the batch chose
        if (step.Step < Info.Rho) return BlockPlan.Cache(store, boundary);
        if (decisions == null)
            throw new InvalidOperationException($"ada: no decisions at step {step.Step}: sampling did not pass step {Info.Rho}");
        int d = step.Step - Info.Rho;
        var caching = Enumerable.Range(0, step.Cfg.Samples).Where(i => decisions[i][d]).ToArray();
        if (caching.Length == step.Cfg.Samples) return BlockPlan.Cache(store, boundary);
        return caching.Length == 0
            ? BlockPlan.Reuse(store, boundary)
            : BlockPlan.Refresh(store, boundary, step.Cfg.Rows(caching));   // sample i and its duplicate i + B
    }

    /// <summary>Learned boundary: every row caches at every candidate before ρ; after, sample i (both CFG rows) reuses b_i or caches.</summary>
    BlockPlan Ladder(StepContext step)
    {
        var cfg = step.Cfg;
        var reuse = new int?[cfg.ModelBatch];
        if (step.Step >= Info.Rho)
        {
            if (decisions == null || boundaries == null)
                throw new InvalidOperationException($"ada: no decisions at step {step.Step}: sampling did not pass step {Info.Rho}");
            int d = step.Step - Info.Rho;
            for (int i = 0; i < cfg.Samples; i++)
                if (!decisions[i][d])
                    for (int h = 0; h < cfg.Halves; h++) reuse[cfg.Row(i, h)] = boundaries[i];
        }
        var rungs = step.Step < Info.Rho ? Info.Candidates!.ToArray() : boundaries!.Distinct().Order().ToArray();   // (ascending)
        return BlockPlan.Of(new LadderPlan(store!, rungs, reuse));
    }

    /// <summary>Step ρ: decisions for every remaining step of every sample, from z_ρ and the labels (or caption summaries).</summary>
    void Decide(StepContext step)
    {
        int samples = step.Cfg.Samples;
        if (given != null)
        {
            if (given.Length != samples || given.Any(d => d.Length != Info.Decisions))
                throw new InvalidOperationException($"ada: expected decisions for {samples} samples × {Info.Decisions} steps");
            if (givenBoundaries != null && givenBoundaries.Length != samples)
                throw new InvalidOperationException($"ada: expected boundary choices for {samples} samples, found {givenBoundaries.Length}");
            decisions = given;
            boundaries = givenBoundaries?.Select(c => Info.Candidates![c]).ToArray();
            return;
        }
        var sw = Stopwatch.StartNew();
        var captions = Info.ReadsCaptions
            ? step.Captions ?? throw new InvalidOperationException("ada: a caption-conditioned policy on a run without caption summaries")
            : null;
        var logits = net!.Forward(step.X, step.Classes, captions);                  // (B, s − ρ), (B, K_b)
        decisions = Enumerable.Range(0, samples)
            .Select(i => AdaWeights.Threshold(logits.Steps.AsSpan(i * Info.Decisions, Info.Decisions))).ToArray();
        int kb = Info.BoundaryChoices;
        boundaries = logits.Boundaries is { } z
            ? Enumerable.Range(0, samples).Select(i => Info.Candidates![AdaWeights.ArgMax(z.AsSpan(i * kb, kb))]).ToArray()
            : null;
        NetworkSeconds = sw.Elapsed.TotalSeconds;
        var perSample = decisions.Select(d => d.Count(c => !c)).ToArray();
        int distinct = decisions.Select(d => string.Concat(d.Select(c => c ? '1' : '0'))).Distinct().Count();
        Log.Info($"ada: decision network ({weights.ParameterCount:N0} parameters) on {samples} samples: " +
                 $"{NetworkSeconds * 1e3:F2} ms ({NetworkSeconds * 1e3 / samples:F3} ms per sample); {ReuseFraction:P0} of steps {Info.Rho}..{Info.Steps - 1} reused " +
                 $"(per sample {perSample.Min()}..{perSample.Max()} of {Info.Decisions} steps, {distinct} distinct schedules)" +
                 (boundaries is null ? "" : "; boundaries " + string.Join(", ", boundaries.GroupBy(b => b).OrderBy(g => g.Key).Select(g => $"b={g.Key} ×{g.Count()}"))));
    }

    public void Dispose()
    {
        store?.Dispose();
        net?.Dispose();
    }
}
