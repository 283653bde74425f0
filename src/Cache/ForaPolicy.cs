// FORA (Selvaraju et al., "FORA: Fast-Forward Caching in Diffusion Transformer Acceleration", 2024): every N
// steps a refresh step runs the full model and stores each block's attention output A_i and MLP output M_i
// (the projections before their adaLN gates); the steps in between recompute only each block's adaLN
// modulation from the current t and apply
//   h ← h + gate_msa·A_i,   h ← h + gate_mlp·M_i         (attention and MLP skipped; GatedResidual)
// Step 0 refreshes; refresh steps are 0, N, 2N, …  N = 1 is no cache (a Full plan every step).
// Plans: StoreOutputs on refresh steps, ReuseOutputs in between (PlanRunner: IBlockModel.RunBlocks with BlockOutputs;
// any model: the DiT stores attention and MLP outputs, PixArt-α also its cross-attention output).
//
// Fixed schedule: every sample and both CFG halves follow it; each row keeps its own A_i, M_i and gets its
// own current gates (the gates depend on the row's label, so the halves do differ on reuse steps).
// Accounting counts a reuse step as every block skipped; its adaLN modulations (6D·D per block per row) still run.
using BlockDance.Kernels;

namespace BlockDance.Cache;

public sealed record ForaConfig(int N = 3)
{
    public void Validate()
    {
        if (N < 1) throw new InvalidValueException("fora N", "N ≥ 1", $"{N}");
    }

    /// <summary>true for the steps that reuse the stored outputs.</summary>
    public bool[] ReuseSchedule(int steps) => Enumerable.Range(0, steps).Select(i => i % N != 0).ToArray();
}

public sealed class ForaPolicy(ForaConfig config) : ICachePolicy
{
    FeatureStore? store;
    bool[] reuse = [];

    public long MemoryBytes => store?.Bytes ?? 0;
    public string Describe() => $"fora N={config.N}";

    public void Check(BlockStack model, int steps)
    {
        config.Validate();
    }

    public void Begin(BlockStack model, ComputeDevice device, int steps)
    {
        Check(model, steps);
        reuse = config.ReuseSchedule(steps);
        store?.Dispose();
        store = new FeatureStore(device, model, "fora");   // 2·depth buffers (N, T, D), allocated at the first refresh
    }

    public BlockPlan Plan(StepContext step)
    {
        var s = store ?? throw new InvalidOperationException("fora: Begin was not called");
        if (config.N == 1) return BlockPlan.Full;
        return reuse[step.Step] ? BlockPlan.ReuseOutputs(s) : BlockPlan.StoreOutputs(s);
    }

    public void Dispose() => store?.Dispose();
}
