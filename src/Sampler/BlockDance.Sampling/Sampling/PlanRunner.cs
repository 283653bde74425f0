// Executes a cache policy's BlockPlan on a model through the block-model seam (IBlockModel: Embed, RunBlocks with
// FORA's outputs, RunRows, ModulatedInput, Final — the DiT, PixArt-α, any model that implements it) and counts,
// from the executed plans, the block evaluations of every model row (BlockAccounting):
//
//   Full      tokens = Embed(x);  h = blocks 0..L−1 (tokens)
//   Cache     tokens = Embed(x);  F = blocks 0..b (tokens) written into the store;  h = blocks b+1..L−1 (F)
//   Reuse     Embed(condition only);                                                h = blocks b+1..L−1 (F)
//   Refresh   tokens = Embed(x);  the listed rows of tokens run blocks 0..b as a sub-batch and replace their rows
//             of F (IBlockModel.RunRows);                                           h = blocks b+1..L−1 (F)
//   Span      see SpanPlan: blocks 0..From−1, the plan's gate picks the rows that compute From..To−1 (all rows at
//             once, or a sub-batch through RunRows), the others take the cached residual/feature (copied or
//             forecast, FeatureCombine), blocks To..L−1 on every row
//   StoreOutputs / ReuseOutputs   h = blocks 0..L−1 (tokens) with the store's per-block outputs (BlockOutputs: FORA)
//   Branches  h = blocks 0..L−1 (tokens), each branch of each block as the plan says (BranchPlan: PAB, ToCa): stored,
//             reused, or recomputed for a token subset (the policy's, already on the device); the FLOPs a reused or partly reused
//             branch saves are counted per row (BlockAccounting.SavedFlops, SavedBlocks)
//   then      output = Final(h)
//
// In Refresh the work in blocks 0..b follows the rows that refresh; the other rows of F are read in
// place (never copied). Reading a row of F that was never stored is a bug and throws. The runner also tells a
// policy what it runs on (Stack: the model's BlockShape and the CFG layout), so a policy never sees a model.
// Nothing is copied to the device in a step whose rows all take one decision: uniform combine weights are kernel
// arguments; a sub-batch (rows that decided differently) uploads its row list and per-row weights.
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Transformer;

namespace BlockDance.Sampling;

public sealed partial class PlanRunner(IBlockModel model)
{
    readonly int depth = model.Shape.Depth;

    /// <summary>Block evaluations of the plans run so far (reset with a new accounting per run).</summary>
    public BlockAccounting Accounting { get; private set; } = new(0, model.Shape.Depth);

    /// <summary>What a policy knows of a model: its block shape and the model batch's layout.</summary>
    public static BlockStack Stack(BlockShape shape, CfgLayout layout) =>
        new(shape.Depth, shape.Tokens, shape.Hidden, layout, shape.InChannels, shape.InputSize, shape.Classes, shape.Frames, shape.Branches,
            shape.CaptionChannels);

    /// <summary>Starts a new run of the model batch `layout`: the accounting starts from zero, the policy is begun on the
    /// model's stack (it checks its settings and allocates its store).</summary>
    public void Begin(ICachePolicy policy, CfgLayout layout, int steps)
    {
        Accounting = new BlockAccounting(layout.ModelBatch, depth);
        policy.Begin(Stack(model.Shape, layout), model.Device, steps);
    }

    /// <summary>Starts a new accounting of `modelBatch` rows (plans run by hand, without a policy).</summary>
    public void Begin(int modelBatch) => Accounting = new BlockAccounting(modelBatch, depth);

    /// <summary>output (N, C_out, H, W) = the model on x (N, C_in, H, W), t (N), y (N) as the plan says.</summary>
    public void Run(BlockPlan plan, int step, Tensor x, float[] t, int[] y, Tensor output)
    {
        int n = t.Length;
        switch (plan.Kind)
        {
            case PlanKind.Span:
                var (hs, computed) = RunSpan(plan.Span!, step, x, t, y);
                model.Final(hs, output);                                                   // (N, C_out, H, W)
                Accounting.AddSpan(step, n, plan.Span!.From, plan.Span.To, computed);
                return;
            case PlanKind.StoreOutputs or PlanKind.ReuseOutputs:
                RunOutputs(plan, step, x, t, y, output);
                return;
            case PlanKind.Branches:
                RunBranches(plan.Branches!, step, x, t, y, output);
                return;
            case PlanKind.Ladder:
                RunLadder(plan.Ladder!, step, x, t, y, output);   // PlanRunner.Ladder.cs
                return;
            case PlanKind.Full:
                model.Final(model.RunBlocks(0, depth, model.Embed(x, t, y)!), output);      // (N, T, D) → (N, C_out, H, W)
                Accounting.Add(step, plan, n);
                return;
        }
        var store = plan.Store ?? throw new InvalidOperationException($"step {step}: a {plan.Kind} plan without a feature store");
        CheckRows(store, n, step);
        int b = plan.Boundary;
        var feature = store.Feature(b);                                                    // (N, T, D)
        switch (plan.Kind)
        {
            case PlanKind.Cache:
                model.RunBlocks(0, b + 1, model.Embed(x, t, y)!, feature);
                store.MarkValid(b);
                break;
            case PlanKind.Reuse:
                RequireValid(store, b, step, []);
                model.Embed(null, t, y);                                                   // the tokens would be unused
                break;
            case PlanKind.Refresh:
                var rows = plan.Rows ?? [];
                RequireValid(store, b, step, rows);
                model.RunRows(0, b + 1, model.Embed(x, t, y)!, rows, feature);
                store.MarkValid(b, rows);
                break;
        }
        var h = model.RunBlocks(b + 1, depth, feature);                                    // (N, T, D)
        model.Final(h, output);                                                            // (N, C_out, H, W)
        Accounting.Add(step, plan, n);
    }

    /// <summary>FORA: every block stores (refresh) or reuses (in between) its branch outputs in the plan's store.</summary>
    void RunOutputs(BlockPlan plan, int step, Tensor x, float[] t, int[] y, Tensor output)
    {
        int n = t.Length;
        var store = plan.Store!;
        CheckRows(store, n, step);
        bool storing = plan.Kind == PlanKind.StoreOutputs;
        var valid = store.Rows("outputs");
        if (!storing && valid.Any(v => !v))
            throw new InvalidOperationException($"step {step}: a reuse of block outputs that no earlier step stored");
        var outputs = new BlockOutputs((i, part) => store.Slot($"{part}{i}"), Reuse: !storing);
        var hs = model.RunBlocks(0, depth, model.Embed(x, t, y)!, null, outputs);          // (N, T, D)
        if (storing) Array.Fill(valid, true);
        model.Final(hs, output);
        // a reuse step skips every block's attention and MLP (its modulation still runs): counted as skipped blocks
        Accounting.AddSpan(step, n, 0, storing ? 0 : depth, storing ? Enumerable.Range(0, n).ToArray() : []);
    }

    /// <summary>PAB / ToCa: every block runs with per-branch decisions; a branch reused or partly recomputed must have been
    /// stored by an earlier step (an engine fault otherwise). Token subsets are checked and uploaded as the blocks ask.</summary>
    void RunBranches(BranchPlan bp, int step, Tensor x, float[] t, int[] y, Tensor output)
    {
        int n = t.Length, tokens = model.Shape.Tokens;
        var store = bp.Store;
        CheckRows(store, n, step);
        var parts = model.Shape.Parts;
        var use = new BranchUse[depth, parts.Length];
        double saved = 0;
        for (int i = 0; i < depth; i++)
            for (int p = 0; p < parts.Length; p++)
            {
                var a = bp.Use(i, parts[p]);
                var valid = store.Rows($"{parts[p]}{i}");
                if (a is BranchAction.Reuse or BranchAction.Tokens && valid.Any(v => !v))
                    throw new InvalidOperationException($"step {step}: block {i} reuses its {parts[p]} output, which no earlier step stored");
                use[i, p] = a switch
                {
                    BranchAction.Reuse => BranchUse.Reuse, BranchAction.Tokens => BranchUse.Tokens, BranchAction.Compute => BranchUse.Compute,
                    _ => BranchUse.Store,
                };
                if (a == BranchAction.Reuse) saved += model.BranchFlops(parts[p], 1);
            }
        TokenRows Rows(int i, string part)
        {
            var r = bp.Tokens?.Invoke(i, part) ?? throw new InvalidOperationException($"step {step}: block {i}'s {part} has no token subset");
            if (r.PerRow < 1 || r.PerRow > tokens || r.Rows.Length != (long)n * r.PerRow)
                throw new InvalidOperationException($"step {step}: block {i}'s {part} subset of {r.Rows.Length} indices, {r.PerRow} per row of {tokens} tokens, for {n} rows");
            return r;
        }
        var outputs = new BlockOutputs((i, part) => store.Slot($"{part}{i}"), (i, part) => use[i, Array.IndexOf(parts, part)],
            (i, part) =>
            {
                var r = Rows(i, part);
                return new TokenSubset(r.Rows, r.PerRow);
            });
        // the saved FLOPs of a token branch: its (T − K) tokens per row
        for (int i = 0; i < depth; i++)
            for (int p = 0; p < parts.Length; p++)
                if (use[i, p] == BranchUse.Tokens)
                    saved += model.BranchFlops(parts[p], 1) * (tokens - Rows(i, parts[p]).PerRow) / (double)tokens;
        var hs = model.RunBlocks(0, depth, model.Embed(x, t, y)!, null, outputs);          // (N, T, D)
        for (int i = 0; i < depth; i++)
            for (int p = 0; p < parts.Length; p++)
                if (use[i, p] == BranchUse.Store) Array.Fill(store.Rows($"{parts[p]}{i}"), true);
        model.Final(hs, output);
        Accounting.AddBranches(step, n, saved, model.BlockFlops(1));
    }

    /// <summary>A span step (SpanPlan); returns the last block's output (N, T, D) and the rows that computed the span.</summary>
    (Tensor H, int[] Computed) RunSpan(SpanPlan sp, int step, Tensor x, float[] t, int[] y)
    {
        int n = t.Length, rowLen = model.Shape.RowLength;
        var store = sp.Store;
        CheckRows(store, n, step);
        if (sp.From < 0 || sp.To > depth || sp.From >= sp.To || sp.History is < 1 or > 3)
            throw new InvalidOperationException($"step {step}: span {sp.From}..{sp.To - 1} (history {sp.History}) outside the {depth}-block model");
        var tokens = model.Embed(x, t, y)!;                                                // (N, T, D)
        var hin = store.Slot("in");
        if (sp.From == 0) Combine(store, hin, [tokens], Same(n, [1f]), n, rowLen);          // a copy: the sub-batch below reuses X0/X1
        else model.RunBlocks(0, sp.From, tokens, hin);                                      // (N, T, D)

        var decision = sp.Decide(new SpanProbe(n, rowLen, tokens, hin, () => model.ModulatedInput(sp.From, hin)));
        var rows = decision.ComputeRows.Distinct().Order().ToArray();
        foreach (var r in rows)
            if (r < 0 || r >= n) throw new InvalidOperationException($"step {step}: span row {r} is outside the model batch of {n}");
        var valid = store.Rows(sp.Key);
        var hout = store.Slot("out");
        if (rows.Length == n)
            model.RunBlocks(sp.From, sp.To, hin, hout);                                    // every row computes: exactly the blocks
        else
        {
            for (int r = 0; r < n; r++)
                if (!valid[r] && Array.IndexOf(rows, r) < 0)
                    throw new InvalidOperationException($"step {step}: row {r} reuses span {sp.From}..{sp.To - 1}, which no earlier step stored");
            // reusing rows: h_e = [h_s +] Σ_j w_j H_j                                        (N, T, D)
            var hist = Enumerable.Range(0, sp.History).Select(j => store.Slot(sp.HistoryKey(j))).ToList();
            var f = decision.Forecast;
            if (f != null && f.Length != n * sp.History) throw new InvalidOperationException($"step {step}: forecast weights for {f.Length / Math.Max(1, sp.History)} rows, expected {n}");
            var w = Weights(n, r => Enumerable.Range(0, sp.History).Select(j => f?[r * sp.History + j] ?? (j == 0 ? 1f : 0f)).ToArray());
            if (sp.Value == SpanValue.Residual)
            {
                w = Weights(n, r => [1f, .. Enumerable.Range(0, sp.History).Select(j => w[r * FeatureCombine.MaxInputs + j])]);
                hist.Insert(0, hin);
            }
            Combine(store, hout, [.. hist], w, n, rowLen);
            if (rows.Length > 0) model.RunRows(sp.From, sp.To, hin, rows, hout);           // computing rows: a sub-batch over their rows of h_e
        }
        if (rows.Length > 0) PushHistory(sp, store, rows, hin, hout, n, rowLen);
        var h = sp.To < depth ? model.RunBlocks(sp.To, depth, hout) : hout;                // (N, T, D)
        return (h, rows);
    }

    /// <summary>The computing rows push their new value into their history (newest first); other rows keep theirs.</summary>
    void PushHistory(SpanPlan sp, FeatureStore store, int[] rows, Tensor hin, Tensor hout, int n, int rowLen)
    {
        var sel = new bool[n];
        foreach (var r in rows) sel[r] = true;
        for (int j = sp.History - 1; j >= 1; j--)
        {
            var hj = store.Slot(sp.HistoryKey(j));
            Combine(store, hj, [hj, store.Slot(sp.HistoryKey(j - 1))], Weights(n, r => sel[r] ? [0f, 1f] : [1f, 0f]), n, rowLen);
        }
        var h0 = store.Slot(sp.HistoryKey(0));
        if (sp.Value == SpanValue.Residual)
            Combine(store, h0, [h0, hout, hin], Weights(n, r => sel[r] ? [0f, 1f, -1f] : [1f, 0f, 0f]), n, rowLen);
        else
            Combine(store, h0, [h0, hout], Weights(n, r => sel[r] ? [0f, 1f] : [1f, 0f]), n, rowLen);
        var valid = store.Rows(sp.Key);
        foreach (var r in rows) valid[r] = true;
    }

    static float[] Same(int n, float[] row) => Weights(n, _ => row);

    static float[] Weights(int n, Func<int, float[]> row)
    {
        var w = new float[n * FeatureCombine.MaxInputs];
        for (int r = 0; r < n; r++)
        {
            var v = row(r);
            Array.Copy(v, 0, w, r * FeatureCombine.MaxInputs, v.Length);
        }
        return w;
    }

    /// <summary>output = Σ_j W[r, j]·inputs[j]: the weights as kernel arguments when every row has the same, else queued up per row (no host wait).</summary>
    void Combine(FeatureStore store, Tensor output, Tensor[] inputs, float[] weights, int n, int rowLen)
    {
        var views = inputs.Select(i => i.View).ToArray();
        const int k = FeatureCombine.MaxInputs;
        bool uniform = true;
        for (int r = 1; r < n && uniform; r++)
            for (int j = 0; j < k; j++)
                if (BitConverter.SingleToInt32Bits(weights[r * k + j]) != BitConverter.SingleToInt32Bits(weights[j])) { uniform = false; break; }
        if (uniform) FeatureCombine.RunUniform(model.Device, output.View, views, weights[..k], n, rowLen);
        else FeatureCombine.Run(model.Device, output.View, views, store.CombineWeights(weights).View, n, rowLen);
    }

    static void CheckRows(FeatureStore store, int n, int step)
    {
        if (store.ModelBatch != n)
            throw new InvalidOperationException($"step {step}: the feature store holds {store.ModelBatch} rows, the model batch has {n}");
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

    /// <summary>FLOPs every row saved in reused (or partly reused) branches, and those FLOPs in block evaluations.</summary>
    public double SavedFlops { get; private set; }
    public double SavedBlocks { get; private set; }

    /// <summary>A Branches step: every row ran every block, saving `savedPerRow` FLOPs in reused branches (blockFlops a block's).</summary>
    public void AddBranches(int step, int n, double savedPerRow, long blockFlops)
    {
        if (n != perRow.Length) throw new InvalidOperationException($"accounting for {perRow.Length} rows, plan ran on {n}");
        for (int r = 0; r < n; r++) perRow[r] += depth;
        SavedFlops += savedPerRow * n;
        SavedBlocks += savedPerRow * n / blockFlops;
        if (savedPerRow > 0) reused.Add(step);
    }

    /// <summary>A step where row r skipped skipped(r) blocks.</summary>
    public void AddRows(int step, int n, Func<int, int> skipped)
    {
        if (n != perRow.Length) throw new InvalidOperationException($"accounting for {perRow.Length} rows, plan ran on {n}");
        bool any = false;
        for (int r = 0; r < n; r++)
        {
            perRow[r] += depth - skipped(r);
            any |= skipped(r) > 0;
        }
        if (any) reused.Add(step);
    }

    /// <summary>A span step: rows not in `computed` skipped blocks from..to−1.</summary>
    public void AddSpan(int step, int n, int from, int to, int[] computed)
    {
        if (n != perRow.Length) throw new InvalidOperationException($"accounting for {perRow.Length} rows, plan ran on {n}");
        for (int r = 0; r < n; r++) perRow[r] += depth - (Array.IndexOf(computed, r) >= 0 ? 0 : to - from);
        if (computed.Length < n) reused.Add(step);
    }
}
