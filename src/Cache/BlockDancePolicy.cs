// BlockDance-N (Zhang et al., CVPR 2025): reuse structurally similar spatio-temporal features.
//
// A cache step runs the full forward and block b (the boundary) writes its output F straight into
// the cache buffer. A reuse step hands that very buffer to block b+1: blocks 0..b are skipped, the
// condition c is still recomputed for the current t, blocks b+1..L−1 and the final layer run.
// No device copy, no host traffic, no allocation per step; with CFG both halves are in the buffer.
//
// Schedule over K steps (step i in sampling order, 0 = largest t):
//   outside the window (i/K < start or i/K ≥ end) → cache step
//   inside, steps form groups of N starting at the window's first step: the first step of a group
//   is a cache step, the next N−1 are reuse steps.
// DiT-XL/2, DDIM 50, N = 2, window [0.25, 0.95): steps 13..47 are in the window, 14, 16, …, 46
// reuse (17 steps × 21 blocks skipped: 1400 → 1043 block evaluations).
using BlockDance.Kernels;

namespace BlockDance.Cache;

public sealed record BlockDanceConfig(int N = 2, int? Boundary = null, double WindowStart = 0.25, double WindowEnd = 0.95)
{
    /// <summary>The boundary block b used when none is given: ⌊0.75·depth⌋ − 1, i.e. 20 for 28-block models (the
    /// paper's choice for DiT-XL/2: blocks 0..20 reused), 8 for 12, 17 for 24, 3 for the 6-block demo; at most depth − 2.</summary>
    public static int DefaultBoundary(int depth) => Math.Clamp((int)(0.75 * depth) - 1, 0, Math.Max(0, depth - 2));

    public enum Setting { N, Boundary, Window }

    /// <summary>The first setting that does not fit a model of `depth` blocks (which, expected, found); null when all fit.</summary>
    public (Setting Setting, string Expected, string Found)? Problem(int depth)
    {
        if (N < 1) return (Setting.N, "N ≥ 1", $"{N}");
        if (Boundary is int b && (b < 0 || b >= depth - 1))
            return (Setting.Boundary, $"0..{depth - 2} for a {depth}-block model (block b+1 must exist)", $"{b}");
        if (WindowStart < 0 || WindowEnd > 1 || WindowStart >= WindowEnd)
            return (Setting.Window, "0 ≤ start < end ≤ 1", $"{WindowStart},{WindowEnd}");
        return null;
    }

    /// <summary>Checks the combination against the model (InvalidValueException naming expected and found).</summary>
    public void Validate(int depth)
    {
        if (Problem(depth) is { } p) throw new InvalidValueException($"BlockDance {p.Setting}", p.Expected, p.Found);
    }

    /// <summary>true for the steps that reuse the cache, per the schedule above.</summary>
    public bool[] ReuseSchedule(int steps)
    {
        var reuse = new bool[steps];
        int first = -1;
        for (int i = 0; i < steps; i++)
        {
            double f = i / (double)steps;
            if (f < WindowStart || f >= WindowEnd) continue;
            if (first < 0) first = i;
            reuse[i] = (i - first) % N != 0;
        }
        return reuse;
    }
}

public sealed class BlockDancePolicy(BlockDanceConfig config) : ICachePolicy
{
    FeatureStore? store;      // block b's output at the last cache step, (N, T, D)
    bool[] schedule = [];
    int boundary;

    public BlockDanceConfig Config => config;
    public int Boundary => boundary;
    public long MemoryBytes => store?.Bytes ?? 0;
    public FeatureStore? Store => store;

    public string Describe() =>
        $"blockdance N={config.N} b={boundary} window [{config.WindowStart:0.##}, {config.WindowEnd:0.##})";

    public void Check(BlockStack model, int steps)
    {
        config.Validate(model.Depth);
    }

    public void Begin(BlockStack model, ComputeDevice device, int steps)
    {
        Check(model, steps);
        boundary = config.Boundary ?? BlockDanceConfig.DefaultBoundary(model.Depth);
        schedule = config.ReuseSchedule(steps);
        store?.Dispose();
        store = new FeatureStore(device, model, "blockdance");   // the buffer is allocated once, at the first cache step
    }

    public BlockPlan Plan(StepContext step)
    {
        if (store == null) throw new InvalidOperationException("BlockDance: Begin was not called");
        return step.Step < schedule.Length && schedule[step.Step] && store.AllValid(boundary)
            ? BlockPlan.Reuse(store, boundary)
            : BlockPlan.Cache(store, boundary);   // a full step that stores block b's output
    }

    public void Dispose() => store?.Dispose();
}
