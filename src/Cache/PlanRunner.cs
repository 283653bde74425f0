// Executes a cache policy's BlockPlan with the model's three parts (IBlockModel: Embed / RunBlocks / Final;
// the DiT and PixArt-α) and
// counts, from the executed plans, the block evaluations of every model row (BlockAccounting):
//
//   Full      tokens = Embed(x);  h = blocks 0..L−1 (tokens)
//   Cache     tokens = Embed(x);  F = blocks 0..b (tokens) written into the store;  h = blocks b+1..L−1 (F)
//   Reuse     Embed(condition only);                                                h = blocks b+1..L−1 (F)
//   Refresh   tokens = Embed(x);  the listed rows of tokens and their conditioning → blocks 0..b on the sub-batch
//             → scattered into those rows of F (IBlockModel.RefreshRows);                                        h = blocks b+1..L−1 (F)
//   then      output = Final(h)
//
// In Refresh the work in blocks 0..b follows the rows that refresh; the other rows of F are read in
// place (never copied). Reading a row of F that was never stored is a bug and throws.
using BlockDance.Kernels;
using BlockDance.Transformer;
using ILGPU.Runtime;

namespace BlockDance.Cache;

public sealed class PlanRunner(IBlockModel model)
{
    /// <summary>Block evaluations of the plans run so far (reset with a new accounting per run).</summary>
    public BlockAccounting Accounting { get; private set; } = new(0, model.Config.Depth);

    /// <summary>Starts a new run of `modelBatch` rows: the accounting starts from zero.</summary>
    public void Begin(int modelBatch) => Accounting = new BlockAccounting(modelBatch, model.Config.Depth);

    /// <summary>output (N, C_out, H, W) = the model on x (N, C_in, H, W), t (N), y (N) as the plan says.</summary>
    public void Run(BlockPlan plan, int step, Tensor x, float[] t, int[] y, Tensor output)
    {
        int depth = model.Config.Depth, n = t.Length, b = plan.Boundary;
        Tensor h;
        if (plan.Kind == PlanKind.Full)
        {
            var tokens = model.Embed(x, t, y)!;                                        // (N, T, D)
            h = model.RunBlocks(0, depth, tokens);                                     // (N, T, D)
        }
        else
        {
            var store = plan.Store ?? throw new InvalidOperationException($"step {step}: a {plan.Kind} plan without a feature store");
            if (store.ModelBatch != n)
                throw new InvalidOperationException($"step {step}: the feature store holds {store.ModelBatch} rows, the model batch has {n}");
            var feature = store.Feature(b);                                            // (N, T, D)
            switch (plan.Kind)
            {
                case PlanKind.Cache:
                    model.RunBlocks(0, b + 1, model.Embed(x, t, y)!, feature);
                    store.MarkValid(b);
                    break;
                case PlanKind.Reuse:
                    RequireValid(store, b, step, []);
                    model.Embed(null, t, y);                                           // the tokens would be unused
                    break;
                case PlanKind.Refresh:
                    var rows = plan.Rows ?? [];
                    RequireValid(store, b, step, rows);
                    model.RefreshRows(b + 1, model.Embed(x, t, y)!, rows, feature);
                    store.MarkValid(b, rows);
                    break;
            }
            h = model.RunBlocks(b + 1, depth, feature);                                // (N, T, D)
        }
        model.Final(h, output);                                                        // (N, C_out, H, W)
        Accounting.Add(step, plan, n);
    }

    static void RequireValid(FeatureStore store, int b, int step, int[] refreshed)
    {
        for (int r = 0; r < store.ModelBatch; r++)
            if (!store.IsValid(b, r) && Array.IndexOf(refreshed, r) < 0)
                throw new InvalidOperationException($"step {step}: row {r} reuses block {b}'s feature, which no earlier step stored");
    }
}

/// <summary>Block evaluations per model row, counted from the executed plans, and the steps that reused.</summary>
public sealed class BlockAccounting(int modelBatch, int depth)
{
    readonly long[] perRow = new long[modelBatch];
    readonly List<int> reused = new();

    public int Depth => depth;
    public IReadOnlyList<long> PerRow => perRow;
    /// <summary>Σ over rows of the blocks each ran (a block on a batch of n counts n).</summary>
    public long RowBlocks => perRow.Sum();
    /// <summary>Steps (in sampling order) whose plan skipped blocks for at least one row.</summary>
    public IReadOnlyList<int> ReusedSteps => reused;

    public void Add(int step, BlockPlan plan, int n)
    {
        if (n != perRow.Length) throw new InvalidOperationException($"accounting for {perRow.Length} rows, plan ran on {n}");
        int skipped = plan.Reuses ? plan.Boundary + 1 : 0;
        for (int r = 0; r < n; r++) perRow[r] += depth - skipped;
        if (plan.Kind == PlanKind.Refresh)
            foreach (var r in plan.Rows!) perRow[r] += skipped;
        if (plan.Reuses) reused.Add(step);
    }
}
