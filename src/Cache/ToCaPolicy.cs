// ToCa, token-wise feature caching (Zou et al., "Accelerating Diffusion Transformers with Token-wise Feature Caching",
// ICLR 2025; Shenyi-Z/ToCa): every N steps a fresh step computes everything and stores each block's branch outputs; on
// the steps in between each block reuses its self-attention output (with the current gate) and recomputes its
// cross-attention and MLP outputs for only the top-K tokens of a cache score, the other tokens keeping their cached
// values:
//
//   fresh step (i mod N = 0): every branch computed and stored; every token's staleness a ← 0
//   other steps, per block l and branch m ∈ {cross, mlp}:
//     K = ⌊r·f_step·f_layer·f_module · T⌋,  f_step = 1.4 − 0.8·i/S,  f_layer = 1.8 − 1.6·l/(L−1),
//     f_module = 2.5 (cross, MLP; 0 for self- and temporal attention: never partly recomputed)  (the "ToCa" ratio schedule)
//     score = s1 (attention influence) + λ₃·a/N (s3, cache frequency);  s4: in each g×g cell of a frame's token grid
//     the highest-scoring token gets +bonus·its score (spatial uniformity); the K highest scores recompute, a ← 0 for
//     them and a ← a + 1 for the rest
//
// What is left out: s1 and s2 need the attention maps (self- and cross-attention probabilities), which this engine's
// fused attention kernels never form; this policy scores with s3 and s4 only (ToCa's own code has the same switch for
// its "random"/"straight" baselines). With s3 alone the score is the same for every sample and every input: the
// selection becomes a staleness-ordered rotation spread over the grid (ties go to the lower token index), so every
// token is refreshed within ⌈T/K⌉ partial steps. Plan: BranchPlan with Tokens subsets (BlockPlan.Branches).
//
// Defaults: ToCa's DiT setting for DDIM 50 (N 3, r 0.07, λ₃ 0.25, bonus 0.6 on 2×2 cells). N = 1 is no cache.
// Fixed schedule: every sample and both CFG halves follow it (the score is input-invariant); each row keeps its own cache.
using BlockDance.Kernels;

namespace BlockDance.Cache;

/// <param name="N">Fresh-step interval (ToCa's fresh threshold; 1 = no reuse).</param>
/// <param name="Ratio">r, the base fraction of tokens recomputed (before the schedule's factors).</param>
/// <param name="Weight">λ₃, the weight of the cache-frequency score s3.</param>
/// <param name="Bonus">s4: the bonus of each grid cell's top token, as a fraction of its score.</param>
/// <param name="Grid">s4's cell size g (g×g tokens); a frame grid it does not divide gets no s4.</param>
/// <param name="Schedule">ToCa's step/layer/module ratio schedule (off: K = ⌊r·T⌋ for cross and MLP alike).</param>
public sealed record ToCaConfig(int N = 3, double Ratio = 0.07, double Weight = 0.25, double Bonus = 0.6, int Grid = 2, bool Schedule = true)
{
    public void Validate()
    {
        if (N < 1) throw new InvalidValueException("toca n", "N ≥ 1", $"{N}");
        if (!(Ratio > 0 && Ratio <= 1)) throw new InvalidValueException("toca ratio", "a fraction in (0, 1]", $"{Ratio}");
        if (!(Weight >= 0) || double.IsInfinity(Weight)) throw new InvalidValueException("toca weight", "a finite λ₃ ≥ 0", $"{Weight}");
        if (!(Bonus >= 0) || double.IsInfinity(Bonus)) throw new InvalidValueException("toca bonus", "a finite value ≥ 0", $"{Bonus}");
        if (Grid < 1) throw new InvalidValueException("toca grid", "g ≥ 1", $"{Grid}");
    }

    public bool Fresh(int step) => step % N == 0;

    /// <summary>K, the tokens of branch `part` of block `layer` recomputed at step `step` of `steps` (rows of `tokens`).</summary>
    public int FreshTokens(string part, int step, int steps, int layer, int depth, int tokens)
    {
        double f = 1;
        if (Schedule)
        {
            double fs = 1 + 0.4 - 2 * 0.4 * step / steps;
            double fl = 1 + 0.8 - 2 * 0.8 * layer / Math.Max(1, depth - 1);
            double fm = part == "attn" ? 1 - (1 - 0.6) * 2.5 : 1 + 0.6 * 2.5;
            f = fs * fl * fm;
        }
        return Math.Clamp((int)Math.Floor(Ratio * f * tokens), 0, tokens);
    }
}

public sealed class ToCaPolicy(ToCaConfig config) : ICachePolicy
{
    FeatureStore? store;
    string[] parts = [];
    int depth, tokens, frames, steps;
    bool gridOk;
    // the run's schedule, decided at Begin (the score reads only the staleness counters): per step, block and branch the
    // action and the chosen tokens (K per row, ascending); the subsets of every row live in one device buffer
    BranchAction[][,] actions = [];
    int[][,][] chosen = [];
    (int Offset, int K)[][,] at = [];
    ILGPU.ArrayView<int> rows;

    public long MemoryBytes => store?.Bytes ?? 0;
    public string Describe() => $"toca N={config.N} r={config.Ratio:0.###} λ3={config.Weight:0.##} " +
                                (gridOk ? $"s4 {config.Grid}×{config.Grid} bonus {config.Bonus:0.##}" : "no s4") + (config.Schedule ? "" : " constant ratio");

    public void Check(BlockStack model, int steps) => config.Validate();

    public void Begin(BlockStack model, ComputeDevice device, int steps)
    {
        Check(model, steps);
        parts = model.Parts;
        depth = model.Depth;
        tokens = model.Tokens;
        frames = Math.Max(1, model.Frames);
        this.steps = steps;
        int side = (int)Math.Round(Math.Sqrt(tokens / frames));
        gridOk = tokens % frames == 0 && side * side * frames == tokens && side % config.Grid == 0;
        store?.Dispose();
        store = new FeatureStore(device, model, "toca");
        Schedule(model.ModelBatch);
    }

    /// <summary>The tokens branch `part` of `block` recomputes at step `step` (K, ascending; the same on every row), or null.</summary>
    public int[]? Subset(int step, int block, string part) => chosen[step][block, Array.IndexOf(parts, part)];

    void Schedule(int modelBatch)
    {
        var age = new int[depth, parts.Length][];
        for (int l = 0; l < depth; l++)
            for (int p = 0; p < parts.Length; p++) age[l, p] = new int[tokens];
        actions = new BranchAction[steps][,];
        chosen = new int[steps][,][];
        at = new (int, int)[steps][,];
        var all = new List<int>();
        for (int i = 0; i < steps; i++)
        {
            actions[i] = new BranchAction[depth, parts.Length];
            chosen[i] = new int[depth, parts.Length][];
            at[i] = new (int, int)[depth, parts.Length];
            bool fresh = config.Fresh(i);
            for (int l = 0; l < depth; l++)
                for (int p = 0; p < parts.Length; p++)
                {
                    int k = fresh ? tokens : parts[p] is "cross" or "mlp" ? config.FreshTokens(parts[p], i, steps, l, depth, tokens) : 0;
                    if (k == 0) { actions[i][l, p] = BranchAction.Reuse; Age(age[l, p], []); continue; }
                    if (k >= tokens) { actions[i][l, p] = BranchAction.Store; Array.Clear(age[l, p]); continue; }
                    var pick = Select(age[l, p], k);
                    Age(age[l, p], pick);
                    actions[i][l, p] = BranchAction.Tokens;
                    chosen[i][l, p] = pick;
                    at[i][l, p] = (all.Count, k);
                    for (int r = 0; r < modelBatch; r++) all.AddRange(pick.Select(j => r * tokens + j));
                }
        }
        if (all.Count > 0) rows = store!.Indices([.. all]);                           // one upload for the whole run
    }

    public BlockPlan Plan(StepContext step)
    {
        var s = store ?? throw new InvalidOperationException("toca: Begin was not called");
        if (config.N == 1) return BlockPlan.Full;
        int i = step.Step, n = step.Cfg.ModelBatch;
        var act = actions[i];
        var where = at[i];
        return BlockPlan.Of(new BranchPlan(s, (l, part) => act[l, Array.IndexOf(parts, part)], (l, part) =>
        {
            var (offset, k) = where[l, Array.IndexOf(parts, part)];
            return new TokenRows(rows.SubView(offset, (long)n * k), k);
        }));
    }

    /// <summary>The K tokens with the highest score s3 + s4, ascending by index (ties: the lower index).</summary>
    int[] Select(int[] staleness, int k)
    {
        var score = staleness.Select(v => config.Weight * v / config.N).ToArray();    // s3
        if (gridOk && config.Bonus > 0) SpatialBonus(score);                         // s4
        return Enumerable.Range(0, tokens).OrderByDescending(j => score[j]).ThenBy(j => j).Take(k).Order().ToArray();
    }

    /// <summary>s4: in each g×g cell of each frame's √S×√S grid the top-scoring token (the first on ties) gets +bonus·score.</summary>
    void SpatialBonus(double[] score)
    {
        int per = tokens / frames, side = (int)Math.Round(Math.Sqrt(per)), g = config.Grid;
        for (int f = 0; f < frames; f++)
            for (int cy = 0; cy < side; cy += g)
                for (int cx = 0; cx < side; cx += g)
                {
                    int best = -1;
                    for (int y = cy; y < cy + g; y++)
                        for (int x = cx; x < cx + g; x++)
                        {
                            int j = f * per + y * side + x;
                            if (best < 0 || score[j] > score[best]) best = j;
                        }
                    score[best] += config.Bonus * score[best];
                }
    }

    static void Age(int[] staleness, int[] fresh)
    {
        for (int j = 0; j < staleness.Length; j++) staleness[j]++;
        foreach (var j in fresh) staleness[j] = 0;
    }

    public void Dispose() => store?.Dispose();
}
