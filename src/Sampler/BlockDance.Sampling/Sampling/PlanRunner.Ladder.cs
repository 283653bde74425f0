// The Ladder plan (BlockPlan.cs: LadderPlan): a boundary per row, for BlockDance-Ada with a learned boundary.
//
//   tokens = Embed(x)                                        (N, T, D)   (condition only when no row caches)
//   for j = 1..k:  active = rows that cache ∪ rows that reuse b_i < b_j
//                  blocks b_{j−1}+1..b_j on the active rows of F_{j−1} (F_0 = tokens) → their rows of F_j
//                  (the whole batch when every row is active, else a gathered sub-batch: RunRows)
//                  the caching rows are marked valid at b_j
//   h = blocks b_k+1..L−1 (F_k), every row                   (N, T, D)
//
// Each row's result depends on its own rows only (blocks are row-wise, a sub-batch computes what the whole batch
// would), so a batch gives each sample what it gets alone; with every row caching the ladder is the full forward
// cut at the boundaries, bit-identical to no cache (as a Cache plan is).
using BlockDance.Cache;
using BlockDance.Kernels;

namespace BlockDance.Sampling;

public sealed partial class PlanRunner
{
    void RunLadder(LadderPlan plan, int step, Tensor x, float[] t, int[] y, Tensor output)
    {
        int n = t.Length;
        var store = plan.Store;
        CheckRows(store, n, step);
        var bs = plan.Boundaries;
        if (bs.Length == 0 || bs.Zip(bs.Skip(1)).Any(p => p.First >= p.Second))
            throw new InvalidOperationException($"step {step}: a ladder plan needs ascending boundaries, found {string.Join(",", bs)}");
        for (int r = 0; r < n; r++)
            if (plan.Reuse[r] is int b)
            {
                if (Array.IndexOf(bs, b) < 0) throw new InvalidOperationException($"step {step}: row {r} reuses block {b}, not a boundary of the plan");
                if (!store.IsValid(b, r)) throw new InvalidOperationException($"step {step}: row {r} reuses block {b}'s feature, which no earlier step stored");
            }
        var caching = Enumerable.Range(0, n).Where(r => plan.Reuse[r] is null).ToArray();
        Tensor? current = model.Embed(caching.Length > 0 ? x : null, t, y);                    // (N, T, D) tokens, or null
        int from = 0;
        foreach (int b in bs)
        {
            var active = Enumerable.Range(0, n).Where(r => plan.Reuse[r] is not int rb || rb < b).ToArray();
            var feature = store.Feature(b);                                                    // (N, T, D)
            if (active.Length == n) model.RunBlocks(from, b + 1, current!, feature);
            else if (active.Length > 0) model.RunRows(from, b + 1, current!, active, feature);
            store.MarkValid(b, caching);
            current = feature;
            from = b + 1;
        }
        var h = model.RunBlocks(from, depth, current!);                                        // (N, T, D)
        model.Final(h, output);                                                                // (N, C_out, H, W)
        Accounting.AddRows(step, n, plan.Skipped);
    }
}
