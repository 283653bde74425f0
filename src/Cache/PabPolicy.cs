// PAB, Pyramid Attention Broadcast (Zhao et al., "Real-Time Video Generation with Pyramid Attention Broadcast", 2024;
// VideoSys's pab_mgr): attention outputs change little between adjacent steps in the middle of sampling, and the
// more so the more global the attention is, so each kind is broadcast (its stored output reused) over its own range:
//
//   a branch of kind k is broadcast at step i  ⇔  t_i lies inside the window (From, To)  and  i mod range_k ≠ 0
//   ranges grow with stability: spatial (self-attention) < temporal < cross                       (the pyramid)
//
// A broadcast branch adds its stored output with the current gate (the gated spatial output g·A_s, the gated temporal
// output g·A_t; cross-attention has no gate), exactly as FORA does; every other step computes the branch, and stores it
// only when the next step may broadcast it (otherwise the plain fused branch runs).
// Optional MLP broadcast: at the steps nearest the listed timesteps, the listed front blocks store their MLP output and
// reuse it for the next `MlpSkip` steps (VideoSys's per-timestep "skip_count", as this engine reads it).
// Plan: BranchPlan (BlockPlan.Branches); a step whose t lies outside every window and uses no MLP broadcast is a Full step.
//
// Defaults: Open-Sora 1.2's published setting (30 steps, t ∈ (450, 930), ranges 2 / 4 / 6; MLP at t 676, 788, 864 for
// blocks 0–4, skip 2) with the ranges mapped to this run's steps (range·steps/30, rounded, ≥ 1) unless ScaleRanges is off.
// A branch the model lacks is absent (the DiT has self-attention and MLP only); a setting whose broadcasts all fall on
// absent branches is refused. Range 0 turns a kind off; range 1 recomputes it every step (no reuse).
// Fixed schedule: every sample and both CFG halves follow it; each row keeps its own stored outputs.
using BlockDance.Kernels;

namespace BlockDance.Cache;

/// <param name="Spatial">Range of the self-attention broadcast (0 off).</param>
/// <param name="Temporal">Range of the temporal-attention broadcast (video models; 0 off).</param>
/// <param name="Cross">Range of the cross-attention broadcast (caption models; 0 off).</param>
/// <param name="From">Lower end of the timestep window (exclusive), in the model's training timesteps.</param>
/// <param name="To">Upper end of the timestep window (exclusive).</param>
/// <param name="Mlp">MLP broadcast on (MlpTimesteps; blocks 0..MlpBlocks−1, or every block of a shallower model; MlpSkip steps).</param>
/// <param name="ScaleRanges">Map the ranges from the published 30-step setting to this run's steps.</param>
public sealed record PabConfig(int Spatial = 2, int Temporal = 4, int Cross = 6, double From = 450, double To = 930, bool Mlp = false,
    int MlpBlocks = 5, int MlpSkip = 2, bool ScaleRanges = true)
{
    /// <summary>Steps of the published setting the ranges are given for.</summary>
    public const int ReferenceSteps = 30;
    public static readonly int[] MlpTimesteps = [676, 788, 864];

    public void Validate()
    {
        foreach (var (name, r) in new[] { ("spatial", Spatial), ("temporal", Temporal), ("cross", Cross) })
            if (r < 0) throw new InvalidValueException($"pab {name}", "a range ≥ 0 (0 = off)", $"{r}");
        if (!(double.IsFinite(From) && To > From && double.IsFinite(To))) throw new InvalidValueException("pab window", "finite from < to", $"from {From}, to {To}");
        if (MlpBlocks < 0 || MlpSkip < 1) throw new InvalidValueException("pab mlp", "mlp-blocks ≥ 0 and mlp-skip ≥ 1", $"{MlpBlocks}, {MlpSkip}");
    }

    /// <summary>The range of a branch kind in a run of `steps` (0 = off).</summary>
    public int Range(string part, int steps)
    {
        int r = part switch { "attn" => Spatial, "temporal" => Temporal, "cross" => Cross, _ => 0 };
        if (r <= 1 || !ScaleRanges) return r;
        return Math.Max(1, (int)Math.Round(r * (double)steps / ReferenceSteps, MidpointRounding.AwayFromZero));
    }

    /// <summary>The rule for the attention kinds: broadcast at step i with timestep t.</summary>
    public bool Broadcast(string part, int step, double t, int steps) =>
        Range(part, steps) is var r && r > 1 && t > From && t < To && step % r != 0;
}

public sealed class PabPolicy(PabConfig config) : ICachePolicy
{
    FeatureStore? store;
    string[] parts = [];
    int depth, steps;
    readonly List<double> timesteps = new();

    public long MemoryBytes => store?.Bytes ?? 0;
    public string Describe() =>
        $"pab {string.Join(" ", parts.Where(p => p != "mlp").Select(p => $"{Kind(p)}={config.Range(p, steps)}"))} t∈({config.From:0},{config.To:0})" +
        (config.Mlp ? $" mlp blocks 0..{Math.Min(config.MlpBlocks, depth) - 1} skip {config.MlpSkip}" : "");

    static string Kind(string part) => part == "attn" ? "spatial" : part;

    public void Check(BlockStack model, int steps)
    {
        config.Validate();
        var named = new List<string>();
        if (config.Spatial > 0) named.Add("attn");
        if (config.Temporal > 0) named.Add("temporal");
        if (config.Cross > 0) named.Add("cross");
        if (config.Mlp && config.MlpBlocks > 0) named.Add("mlp");
        if (named.Count == 0) throw new CacheException("pab: every broadcast is off (spatial, temporal, cross all 0 and no mlp): expected at least one");
        if (!named.Any(model.Has))
            throw new CacheException($"pab: expected a broadcast on a branch the model has ({string.Join(", ", model.Parts.Select(Kind))}), " +
                                     $"found only {string.Join(", ", named.Select(Kind))}");
    }

    public void Begin(BlockStack model, ComputeDevice device, int steps)
    {
        Check(model, steps);
        parts = model.Parts;
        depth = model.Depth;
        this.steps = steps;
        timesteps.Clear();
        store?.Dispose();
        store = new FeatureStore(device, model, "pab");          // one (N, T, D) slot per block and branch, on first use
    }

    public BlockPlan Plan(StepContext step)
    {
        var s = store ?? throw new InvalidOperationException("pab: Begin was not called");
        int i = step.Step;
        bool mlp = config.Mlp && MlpReuseAt(step);        // every step, so that the timesteps seen so far are complete
        bool windowAhead = parts.Any(p => p != "mlp" && config.Range(p, steps) > 1) || config.Mlp;
        if (!windowAhead) return BlockPlan.Full;
        var kinds = parts.Where(p => p != "mlp").ToDictionary(p => p, p => Action(p, i, step.Timestep));
        return BlockPlan.Of(new BranchPlan(s, (block, part) =>
            part != "mlp" ? kinds[part]
            : !config.Mlp || block >= config.MlpBlocks ? BranchAction.Compute
            : mlp ? BranchAction.Reuse : BranchAction.Store));
    }

    /// <summary>An attention kind at step i: broadcast (Reuse); else Store when step i + 1 may broadcast it (its t, not known
    /// yet, is below t_i, so t_i > From is necessary), else the plain fused branch (Compute).</summary>
    BranchAction Action(string part, int i, double t)
    {
        if (config.Broadcast(part, i, t, steps)) return BranchAction.Reuse;
        int r = config.Range(part, steps);
        return r > 1 && i + 1 < steps && (i + 1) % r != 0 && t > config.From ? BranchAction.Store : BranchAction.Compute;
    }

    /// <summary>The MLP rule at this step: one of the MlpSkip steps before it is the step nearest a listed τ. The policy sees the
    /// timesteps one step at a time; t falls monotonically, so a step whose |t − τ| is below both neighbours' is the nearest.</summary>
    bool MlpReuseAt(StepContext step)
    {
        int i = step.Step;
        if (timesteps.Count != i) throw new InvalidOperationException($"pab: step {i} after {timesteps.Count} steps");
        timesteps.Add(step.Timestep);
        foreach (var tau in PabConfig.MlpTimesteps)
        {
            for (int k = 1; k <= config.MlpSkip; k++)
            {
                int near = i - k;
                if (near < 0) continue;
                double tn = timesteps[near];
                bool prevFarther = near == 0 || Math.Abs(timesteps[near - 1] - tau) > Math.Abs(tn - tau);
                bool nextFarther = near + 1 >= timesteps.Count || Math.Abs(timesteps[near + 1] - tau) >= Math.Abs(tn - tau);
                if (prevFarther && nextFarther) return true;
            }
        }
        return false;
    }

    public void Dispose() => store?.Dispose();
}
