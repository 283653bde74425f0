// Executes a cache policy's BlockPlan with the model's three parts (IBlockModel: Embed / RunBlocks / Final;
// the DiT and PixArt-α) and
// counts, from the executed plans, the block evaluations of every model row (BlockAccounting):
//
//   Full      tokens = Embed(x);  h = blocks 0..L−1 (tokens)
//   Cache     tokens = Embed(x);  F = blocks 0..b (tokens) written into the store;  h = blocks b+1..L−1 (F)
//   Reuse     Embed(condition only);                                                h = blocks b+1..L−1 (F)
//   Refresh   tokens = Embed(x);  the listed rows of tokens and their conditioning → blocks 0..b on the sub-batch
//             → scattered into those rows of F (IBlockModel.RefreshRows);                                        h = blocks b+1..L−1 (F)
//   Span      see SpanPlan: blocks 0..From−1, the plan's gate picks the rows that compute From..To−1, the
//             others take the cached residual/feature (copied or forecast), blocks To..L−1 on every row
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
        if (plan.Kind == PlanKind.Span)
        {
            var (hs, computed) = RunSpan(plan.Span!, step, x, t, y);
            model.Final(hs, output);                                                   // (N, C_out, H, W)
            Accounting.AddSpan(step, n, plan.Span!.From, plan.Span.To, computed);
            return;
        }
        if (plan.Kind is PlanKind.StoreOutputs or PlanKind.ReuseOutputs)
        {
            var store = plan.Store!;
            bool storing = plan.Kind == PlanKind.StoreOutputs;
            var valid = store.Rows("outputs");
            if (!storing && valid.Any(v => !v))
                throw new InvalidOperationException($"step {step}: a reuse of block outputs that no earlier step stored");
            var dit = Dit("fora");
            var hs = dit.RunBlocksWithOutputs(dit.Embed(x, t, y)!, i => (store.Slot($"attn{i}"), store.Slot($"mlp{i}")), storing);
            if (storing) Array.Fill(valid, true);
            model.Final(hs, output);
            // a reuse step skips every block's attention and MLP (its adaLN still runs): counted as skipped blocks
            Accounting.AddSpan(step, n, 0, storing ? 0 : depth, storing ? Enumerable.Range(0, n).ToArray() : []);
            return;
        }
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

    /// <summary>A span step (SpanPlan); returns the last block's output (N, T, D) and the rows that computed the span.</summary>
    (Tensor H, int[] Computed) RunSpan(SpanPlan sp, int step, Tensor x, float[] t, int[] y)
    {
        var model = Dit("span");                                                       // span gates use DiT hooks
        int depth = model.Config.Depth, n = t.Length, rowLen = model.Config.Tokens * model.Config.Hidden;
        var store = sp.Store;
        if (store.ModelBatch != n)
            throw new InvalidOperationException($"step {step}: the feature store holds {store.ModelBatch} rows, the model batch has {n}");
        if (sp.From < 0 || sp.To > depth || sp.From >= sp.To || sp.History is < 1 or > 3)
            throw new InvalidOperationException($"step {step}: span {sp.From}..{sp.To - 1} (history {sp.History}) outside the {depth}-block model");
        var tokens = model.Embed(x, t, y)!;                                            // (N, T, D)
        var hin = store.Slot("in");
        if (sp.From == 0) Combine(store, hin, [tokens], Weights(n, _ => [1f]), n, rowLen);  // a copy: the gather below reuses X0/X1
        else model.RunBlocks(0, sp.From, tokens, hin);                                  // (N, T, D)

        var decision = sp.Decide(new SpanProbe(model, tokens, hin, sp.From));
        var rows = decision.ComputeRows.Distinct().Order().ToArray();
        foreach (var r in rows)
            if (r < 0 || r >= n) throw new InvalidOperationException($"step {step}: span row {r} is outside the model batch of {n}");
        var valid = store.Rows(sp.Key);
        var hout = store.Slot("out");
        if (rows.Length == n)
            model.RunBlocks(sp.From, sp.To, hin, hout);                                // every row computes: exactly the blocks
        else
        {
            for (int r = 0; r < n; r++)
                if (!valid[r] && Array.IndexOf(rows, r) < 0)
                    throw new InvalidOperationException($"step {step}: row {r} reuses span {sp.From}..{sp.To - 1}, which no earlier step stored");
            // reusing rows: h_e = [h_s +] Σ_j w_j H_j                                    (N, T, D)
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
            if (rows.Length > 0)
            {
                // computing rows: a compact sub-batch through the span, scattered over their rows of h_e
                var ws = model.CurrentWorkspace!;
                int m = rows.Length, d = model.Config.Hidden;
                model.Device.Upload(ws.Rows.View, rows);
                GatherRows.Gather(model.Device, hin.View, ws.Rows.View, ws.X1.View, m, rowLen);          // (m, T, D)
                GatherRows.Gather(model.Device, ws.SiluC.View, ws.Rows.View, ws.SiluCSub.View, m, d);   // (m, D)
                var fresh = model.RunBlocks(sp.From, sp.To, ws.X1, null, m, ws.SiluCSub);        // (m, T, D)
                GatherRows.Scatter(model.Device, fresh.View, ws.Rows.View, hout.View, m, rowLen);       // rows of (N, T, D)
            }
        }
        if (rows.Length > 0)
        {
            // the computing rows push their new value into their history (newest first); other rows keep theirs
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
            foreach (var r in rows) valid[r] = true;
        }
        var h = sp.To < depth ? model.RunBlocks(sp.To, depth, hout) : hout;            // (N, T, D)
        return (h, rows);
    }

    /// <summary>The model as a DiT: span and FORA plans use hooks inside the DiT's blocks (block outputs, the
    /// modulated input) that PixArt-α does not offer yet.</summary>
    DiT Dit(string method) => model as DiT ?? throw new InvalidValueException($"cache plan '{method}'",
        "a DiT model (the method uses hooks inside the DiT's blocks)", model.GetType().Name);

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

    void Combine(FeatureStore store, Tensor output, Tensor[] inputs, float[] weights, int n, int rowLen)
    {
        var wt = store.CombineWeights(weights);
        FeatureCombine.Run(model.Device, output.View, inputs.Select(i => i.View).ToArray(), wt.View, n, rowLen);
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

    /// <summary>A span step: rows not in `computed` skipped blocks from..to−1.</summary>
    public void AddSpan(int step, int n, int from, int to, int[] computed)
    {
        if (n != perRow.Length) throw new InvalidOperationException($"accounting for {perRow.Length} rows, plan ran on {n}");
        for (int r = 0; r < n; r++) perRow[r] += depth - (Array.IndexOf(computed, r) >= 0 ? 0 : to - from);
        if (computed.Length < n) reused.Add(step);
    }
}
