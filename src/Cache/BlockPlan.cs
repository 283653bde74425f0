// What one model call runs, chosen by the cache policy and executed by PlanRunner. Four kinds:
//
//   Full      embed → blocks 0..L−1 → final                                          (no cache)
//   Cache     embed → blocks 0..b, block b writes into the store → blocks b+1..L−1 → final
//   Reuse     condition only → blocks b+1..L−1 on the stored feature → final      (blocks 0..b skipped)
//   Refresh   Reuse, but the listed model rows first run blocks 0..b as a compact sub-batch
//             (gather → blocks → scatter into their rows of the stored feature): a per-sample cache
//             step inside a reuse step (BlockDance-Ada's mixed batches).
//   Span      a block range [From, To) each row computes or replaces by a cached value (residual or feature,
//             copied or forecast), decided per row during the step (SpanPlan: the adaptive caches).
//   StoreOutputs  every block runs and stores its attention and MLP outputs (FORA's refresh step)
//   ReuseOutputs  every block runs only its adaLN and adds the stored outputs with the current gates (FORA's reuse)
//   Ladder    Refresh with a boundary per row (LadderPlan: BlockDance-Ada with a learned boundary): each row either
//             caches (runs every block, storing block b's output at each of the plan's boundaries b) or reuses its
//             own boundary b_r's stored feature (blocks 0..b_r skipped)
//   Branches  every block runs with per-branch decisions (BranchPlan: PAB's broadcasts, ToCa's token subsets): each
//             branch of each block is computed and stored, reused with the current gate, or recomputed for a token subset
//
// Stored features live in a FeatureStore; the plan names the store and the boundary b, never a buffer.
namespace BlockDance.Cache;

public enum PlanKind { Full, Cache, Reuse, Refresh, Span, StoreOutputs, ReuseOutputs, Branches, Ladder }

/// <param name="Kind">What runs (see above).</param>
/// <param name="Store">The feature store (Cache, Reuse, Refresh).</param>
/// <param name="Boundary">b: the block whose output is stored or reused.</param>
/// <param name="Rows">Refresh: the model rows that run blocks 0..b, ascending.</param>
/// <param name="Span">Span: the block range and its per-row rule.</param>
/// <param name="Branches">Branches: what each block does with each of its branches.</param>
/// <param name="Ladder">Ladder: the boundaries and each row's decision.</param>
public readonly record struct BlockPlan(PlanKind Kind, FeatureStore? Store = null, int Boundary = -1, int[]? Rows = null, SpanPlan? Span = null,
    BranchPlan? Branches = null, LadderPlan? Ladder = null)
{
    public static BlockPlan Of(LadderPlan ladder) => new(PlanKind.Ladder, ladder.Store, ladder.Boundaries[^1], null, null, null, ladder);
    public static BlockPlan Of(BranchPlan branches) => new(PlanKind.Branches, branches.Store, -1, null, null, branches);
    public static BlockPlan StoreOutputs(FeatureStore store) => new(PlanKind.StoreOutputs, store);
    public static BlockPlan ReuseOutputs(FeatureStore store) => new(PlanKind.ReuseOutputs, store);
    public static BlockPlan Of(SpanPlan span) => new(PlanKind.Span, span.Store, span.To - 1, null, span);
    public static BlockPlan Full => new(PlanKind.Full);
    public static BlockPlan Cache(FeatureStore store, int boundary) => new(PlanKind.Cache, store, boundary);
    public static BlockPlan Reuse(FeatureStore store, int boundary) => new(PlanKind.Reuse, store, boundary);
    public static BlockPlan Refresh(FeatureStore store, int boundary, int[] rows) => new(PlanKind.Refresh, store, boundary, rows);

    /// <summary>true when blocks 0..b are skipped for at least one row.</summary>
    public bool Reuses => Kind is PlanKind.Reuse or PlanKind.Refresh;
}

/// <summary>A Ladder step over the ascending boundaries b_1 < … < b_k. Per model row: Reuse[r] = null, the row caches:
/// it runs blocks 0..L−1 and its output of every b_j is stored (and marked valid) in the store; Reuse[r] = b (one of
/// the boundaries), the row reads its stored block-b feature and runs blocks b+1..L−1 only. The runner goes down the
/// ladder: blocks b_{j−1}+1..b_j run on the rows that caching or joining made active (a sub-batch, or the whole batch
/// when every row is active), writing into b_j's stored feature; the rows that reuse b_j join there. So a row that
/// reuses b overwrites its stored features at deeper boundaries b_j > b with this step's values (not marked valid
/// anew): a policy keeps one boundary per row for a run, as BlockDance-Ada does. With every row caching the
/// ladder is the full forward split at the boundaries (bit-identical to no cache).</summary>
public sealed record LadderPlan(FeatureStore Store, int[] Boundaries, int?[] Reuse)
{
    /// <summary>Blocks row r skips: b + 1 when it reuses boundary b, else 0.</summary>
    public int Skipped(int r) => Reuse[r] is int b ? b + 1 : 0;
}

/// <summary>A Branches step: Use(block, part) for every block and branch of the stack (BlockStack.Parts), and for a Tokens branch
/// its token subset, Tokens(block, part) (TokenRows, on the device). Stored outputs live in the store's slots "{part}{block}";
/// a branch may be reused or partly recomputed only after a step stored it.</summary>
public sealed record BranchPlan(FeatureStore Store, Func<int, string, BranchAction> Use, Func<int, string, TokenRows>? Tokens = null);

/// <summary>A token subset on the device: Rows (N·K) indices into the (N·T) token rows of the model batch, K = PerRow per model
/// row, row-major (row r's K indices first, each in r·T .. r·T + T − 1). A policy uploads its subsets once (FeatureStore.Indices),
/// so that a step copies nothing to the device.</summary>
public readonly record struct TokenRows(ILGPU.ArrayView<int> Rows, int PerRow);

/// <summary>What a block does with one branch in a Branches step (the model seam's BranchUse, as a policy names it): compute
/// and store it, reuse the stored output with the current gate, recompute it for a token subset, or compute it without
/// storing (a step whose output no later step reuses: the plain fused branch).</summary>
public enum BranchAction { Store, Reuse, Tokens, Compute }
