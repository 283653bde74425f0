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
using BlockDance.Transformer;

namespace BlockDance.Cache;

public sealed record BlockDanceConfig(int N = 2, int? Boundary = null, double WindowStart = 0.25, double WindowEnd = 0.95)
{
    /// <summary>Checks the combination against the model; messages name expected and found values.</summary>
    public void Validate(int depth)
    {
        if (N < 1) throw new ArgumentException($"--cache-n: expected N ≥ 1, found {N}");
        if (Boundary is int b && (b < 0 || b >= depth - 1))
            throw new ArgumentException($"--cache-block: expected 0..{depth - 2} for a {depth}-block model (block b+1 must exist), found {b}");
        if (WindowStart < 0 || WindowEnd > 1 || WindowStart >= WindowEnd)
            throw new ArgumentException($"--cache-window: expected 0 ≤ start < end ≤ 1, found {WindowStart},{WindowEnd}");
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
    Tensor? feature;          // (N, T, D): output of block b at the last cache step
    bool[] schedule = [];
    int boundary;
    readonly List<int> reused = new();
    bool featureValid;

    public BlockDanceConfig Config => config;
    public int Boundary => boundary;
    public long MemoryBytes => feature?.Bytes ?? 0;
    public IReadOnlyList<int> ReusedSteps => reused;
    public Tensor? Feature => feature;

    public string Describe() =>
        $"blockdance N={config.N} b={boundary} window [{config.WindowStart:0.##}, {config.WindowEnd:0.##})";

    public void Begin(DiT model, int steps, int batch)
    {
        var cfg = model.Config;
        config.Validate(cfg.Depth);
        boundary = config.Boundary ?? cfg.DefaultCacheBoundary;
        schedule = config.ReuseSchedule(steps);
        var shape = new[] { batch, cfg.Tokens, cfg.Hidden };
        if (feature == null || !feature.Shape.SequenceEqual(shape))
        {
            feature?.Dispose();
            feature = Tensor.Allocate(model.Device, $"blockdance.block{boundary}", shape); // once per run shape
        }
        reused.Clear();
        featureValid = false;
    }

    public BlockPlan BeforeStep(int step)
    {
        if (feature == null) throw new InvalidOperationException("BlockDance: Begin was not called");
        if (step < schedule.Length && schedule[step] && featureValid)
        {
            reused.Add(step);
            return new BlockPlan(Start: boundary + 1, StartFeature: feature);
        }
        featureValid = true; // this full step stores block b's output into `feature`
        return new BlockPlan(StoreAfter: boundary, StoreInto: feature);
    }

    public void Dispose() => feature?.Dispose();
}
