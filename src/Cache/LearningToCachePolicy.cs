// Learning-to-Cache (Ma et al., "Learning-to-Cache: Accelerating Diffusion Transformer via Layer Caching", NeurIPS
// 2024; horseee/learning-to-cache): a router θ[step, block, branch] ∈ [0, 1], trained over the frozen model and the
// same for every input (tools/train/train_l2c.py, models/l2c_router.safetensors), becomes a static schedule:
//
//   branch b of block l reuses its output at step k  ⇔  θ[k, l, b] < threshold
//
// Branches are the DiT's attention (0) and MLP (1). A reused branch adds its stored raw output (the previous step's)
// with the current step's adaLN gate, as FORA does (BranchAction.Reuse). The router this engine trains pairs the
// steps: even steps have θ = 1 (they compute), odd steps may reuse, so a reuse reads the output of the step just
// before it, as in training. A step computes a branch with Store when the next step reuses it, else plainly.
// Plan: BranchPlan (BlockPlan.Branches); a step that neither reuses nor stores anything is a Full step.
// The router is for one model, step count and branch layout: another depth, step count or a model whose blocks have
// other branches (PixArt-α's cross-attention, STDiT's temporal attention) is refused before the device starts.
using BlockDance.Kernels;

namespace BlockDance.Cache;

/// <param name="Router">θ, (Steps, Depth, 2) row-major: [..., 0] attention, [..., 1] MLP.</param>
/// <param name="Threshold">Branches with θ below it reuse; 0 = none (no cache), 1 = every branch the router lets.</param>
public sealed record LearningToCacheConfig(float[] Router, int Steps, int Depth, double Threshold = 0.5, string Source = "")
{
    public static readonly string[] Branches = ["attn", "mlp"];

    public void Validate()
    {
        if (Steps < 2 || Depth < 1 || Router.Length != Steps * Depth * Branches.Length)
            throw new InvalidValueException("l2c router", $"(steps ≥ 2, depth ≥ 1, 2) values", $"{Router.Length} values for {Steps} steps × {Depth} blocks");
        if (!(Threshold >= 0 && Threshold <= 1)) throw new InvalidValueException("l2c threshold", "0 ≤ threshold ≤ 1", $"{Threshold}");
        if (Router.Any(v => !(v >= 0 && v <= 1))) throw new InvalidValueException("l2c router values", "θ in [0, 1]", "values outside");
    }

    /// <summary>true when branch `branch` of `block` reuses at `step`; step 0 never does (nothing is stored yet).</summary>
    public bool Reuses(int step, int block, int branch) =>
        step > 0 && Router[(step * Depth + block) * Branches.Length + branch] < Threshold;
}

public sealed class LearningToCachePolicy(LearningToCacheConfig config) : ICachePolicy
{
    FeatureStore? store;

    public long MemoryBytes => store?.Bytes ?? 0;

    public string Describe()
    {
        int reused = 0;
        for (int k = 0; k < config.Steps; k++)
            for (int l = 0; l < config.Depth; l++)
                for (int b = 0; b < 2; b++)
                    if (config.Reuses(k, l, b)) reused++;
        return $"l2c threshold={config.Threshold:0.###}: {reused} of {config.Steps * config.Depth * 2} branch evaluations reused";
    }

    public void Check(BlockStack model, int steps)
    {
        config.Validate();
        if (steps != config.Steps)
            throw new CacheException($"l2c: the router {config.Source} is for {config.Steps} steps, found a run of {steps}");
        if (model.Depth != config.Depth)
            throw new CacheException($"l2c: the router {config.Source} is for {config.Depth} blocks, found a {model.Depth}-block model");
        if (!model.Parts.SequenceEqual(LearningToCacheConfig.Branches))
            throw new CacheException($"l2c: the router {config.Source} routes attention and MLP branches, found a model with branches {string.Join(", ", model.Parts)}");
    }

    public void Begin(BlockStack model, ComputeDevice device, int steps)
    {
        Check(model, steps);
        store?.Dispose();
        store = new FeatureStore(device, model, "l2c");      // one (N, T, D) slot per block and branch, on first use
    }

    public BlockPlan Plan(StepContext step)
    {
        var s = store ?? throw new InvalidOperationException("l2c: Begin was not called");
        int k = step.Step;
        bool any = false;
        for (int l = 0; l < config.Depth && !any; l++)
            for (int b = 0; b < 2; b++)
                any |= config.Reuses(k, l, b) || (k + 1 < config.Steps && config.Reuses(k + 1, l, b));
        if (!any) return BlockPlan.Full;
        return BlockPlan.Of(new BranchPlan(s, (block, part) =>
        {
            int b = Array.IndexOf(LearningToCacheConfig.Branches, part);
            if (config.Reuses(k, block, b)) return BranchAction.Reuse;
            return k + 1 < config.Steps && config.Reuses(k + 1, block, b) ? BranchAction.Store : BranchAction.Compute;
        }));
    }

    public void Dispose() => store?.Dispose();
}
