// The one seam between a transformer and everything that runs it with a cache (the sampling library's
// PlanRunner): a stack of Depth identical-shape blocks between an embedding and a final layer, offered in
// parts so that a cache plan can run any block range, on any rows, from any input (a stored feature
// included). Every cache plan kind executes through these members only — the runner never downcasts and
// never touches a model's buffers. DiT and PixArt-α implement it; a third model implements it the same way.
//
//   Shape                       depth, tokens T, width D, the input it takes and its label count
//   Embed(x?, t, y)             per-row conditioning of the n = t.Length rows; with x (N, C_in, H, W) also
//                               the tokens (N, T, D), returned (null without x: the step starts from a stored feature)
//   RunBlocks(from, to, h, out?, outputs?)
//                               blocks from..to−1 on h (N, T, D), every row; the last writes into `out` when given.
//                               With `outputs` (FORA, PAB, ToCa) each block also stores, replaces by the stored values,
//                               or recomputes for a token subset each of its residual branches' outputs (BranchUse)
//   RunRows(from, to, h, rows, out)
//                               the listed rows of h run blocks from..to−1 as a compact sub-batch with their own
//                               conditioning; the results replace those rows of out (N, T, D), other rows untouched
//   ModulatedInput(block, h)    block's adaLN-modulated attention input LN(h)·(1 + scale) + shift, (N, T, D)
//                               (the change signal of TeaCache and the calibration); valid until the next block runs
//   Final(h, out)               final layer + unpatchify → (N, C_out, H, W)
//   BlockFlops, BranchFlops     the FLOPs of a block and of one of its branches (what a branch reuse saves)
//
// Rules an implementation keeps (PlanRunner relies on them, the cache tests check them):
//   - blocks are out-of-place: `h` and `out` are never overwritten by intermediate blocks (ping-pong in the
//     model's own buffers), so a stored feature is read where it lies;
//   - a row's result never depends on the other rows' values (so a sub-batch gives its rows' bits of the whole
//     batch on the CPU accelerator, and the same values within the kernels' precision elsewhere), and with
//     `outputs` storing, every block's output is bit-identical to the plain forward;
//   - `y` is per model row and means what the model's conditioning means (the DiT: class labels; PixArt-α:
//     rows of the captions given to SetCaptions); Embed runs before any other member in a step;
//   - nothing here knows a cache policy: the model offers parts, the runner decides what runs.
using BlockDance.Kernels;

namespace BlockDance.Transformer;

/// <summary>The block stack's sizes and the input it takes.</summary>
/// <param name="Classes">Labels the conditioning takes (the DiT's classes; 1 for a model conditioned otherwise, whose rows are all label 0).</param>
/// <param name="OutChannels">Channels of the output Final writes (C_in, or 2·C_in with learned sigma): what a sampler reads.</param>
/// <param name="Frames">0 for an image model, whose samples are (C, H, W); T ≥ 1 for a video model, (C, T, H, W).</param>
/// <param name="Branches">The residual branches of a block, as BlockOutputs names them (null: the DiT's "attn", "mlp").</param>
/// <param name="CaptionChannels">The width of a caption feature row (ICaptionModel.CaptionChannels); 0 for a class-conditional model.</param>
public readonly record struct BlockShape(int Depth, int Tokens, int Hidden, int InChannels, int InputSize, int Classes, int OutChannels, int Frames = 0,
    string[]? Branches = null, int CaptionChannels = 0)
{
    /// <summary>The block's residual branches in the order they run: "attn", then "temporal" / "cross" where present, then "mlp".</summary>
    public string[] Parts => Branches ?? ["attn", "mlp"];
    public int RowLength => Tokens * Hidden;
    /// <summary>One sample's shape: (C_in, H, W), or (C_in, T, H, W) for a video model.</summary>
    public int[] Sample => Frames == 0 ? [InChannels, InputSize, InputSize] : [InChannels, Frames, InputSize, InputSize];
    /// <summary>Values per channel of one sample: H·W, or T·H·W.</summary>
    public int PerChannel => Math.Max(1, Frames) * InputSize * InputSize;
    /// <summary>Values of one sample.</summary>
    public long SampleLength => (long)InChannels * PerChannel;
    /// <summary>n samples' shape (n, …Sample), and the model output's (n, C_out, …).</summary>
    public int[] Batch(int n) => [n, .. Sample];
    public int[] Output(int n) => [n, OutChannels, .. Sample[1..]];
}

/// <summary>What one block does with one residual branch ("attn", "temporal", "cross", "mlp") when it runs with BlockOutputs:
/// Compute: the plain branch (fused epilogue, nothing stored); Store: compute it and write its output (after the output
/// projection, before any gate) into the branch's slot, then add it (the fused epilogue's arithmetic: the same bits);
/// Reuse: skip it and add the stored output with the current gate; Tokens: recompute it only for a subset of the tokens
/// (ToCa: gathered, computed as a compact (N, K, D) batch, scattered into the stored output), then add the whole stored
/// output with the current gate. A branch the model lacks is never asked for.</summary>
public enum BranchUse { Store, Reuse, Tokens, Compute }

/// <summary>The token subset of a BranchUse.Tokens branch: Rows (N·K) indices into the (N·T) token rows of the batch, K = PerRow
/// per model row, row-major (row r's K indices first; every index of row r lies in r·T .. r·T + T − 1).</summary>
public sealed record TokenSubset(ILGPU.ArrayView<int> Rows, int PerRow);

/// <summary>Per-block branch outputs (FORA, PAB, ToCa): Slot(block, part) is the (N, T, D) buffer of one residual branch's
/// output ("attn", "mlp", and "cross" / "temporal" where the model has them: BlockShape.Parts); Use(block, part) says what
/// the block does with that branch (BranchUse), Subset(block, part) the tokens of a Tokens branch. The bool form is FORA's:
/// every branch stored (false) or every branch reused (true).</summary>
public sealed record BlockOutputs(Func<int, string, Tensor> Slot, Func<int, string, BranchUse> Use, Func<int, string, TokenSubset>? Subset = null)
{
    public BlockOutputs(Func<int, string, Tensor> Slot, bool Reuse) : this(Slot, (_, _) => Reuse ? BranchUse.Reuse : BranchUse.Store) { }

    /// <summary>The slot a computing branch writes its output into: its slot when storing, null when it only computes.</summary>
    public Tensor? StoreSlot(int block, string part) => Use(block, part) == BranchUse.Store ? Slot(block, part) : null;

    /// <summary>The subset of a Tokens branch (an engine fault when the plan gave none).</summary>
    public TokenSubset TokensOf(int block, string part) =>
        Subset?.Invoke(block, part) ?? throw new InvalidOperationException($"block {block}: branch {part} recomputes a token subset the plan did not give");
}

/// <summary>A model conditioned on caption features (PixArt-α, STDiT): its model rows attend to rows of the caption set
/// given to SetCaptions.</summary>
public interface ICaptionModel : IBlockModel
{
    int CaptionChannels { get; }
    /// <summary>y (count, tokens, C_cap) text features and keep (count, tokens), 1 = real token; projected once per set.</summary>
    void SetCaptions(float[] y, float[] keepMask, int count, int tokens);
    /// <summary>Sizes the workspace for rows.Length model rows and uploads the caption row of each (before the step loop,
    /// so that a step copies nothing host → device).</summary>
    void BindRows(int[] captionRows);
}

public interface IBlockModel
{
    BlockShape Shape { get; }
    ComputeDevice Device { get; }

    /// <summary>Conditioning of the n = t.Length rows; with x (N, C_in, H, W) also the tokens (N, T, D), else null.</summary>
    Tensor? Embed(Tensor? x, float[] t, int[] y);

    /// <summary>Blocks from..to−1 on input (N, T, D); returns the tensor holding the result (output when given).
    /// With outputs, each block stores or reuses its branch outputs (BlockOutputs).</summary>
    Tensor RunBlocks(int from, int to, Tensor input, Tensor? output = null, BlockOutputs? outputs = null);

    /// <summary>Rows `rows` of input (N, T, D) run blocks from..to−1 as a sub-batch; the results replace those rows of output (N, T, D).</summary>
    void RunRows(int from, int to, Tensor input, int[] rows, Tensor output);

    /// <summary>Block `block`'s adaLN-modulated attention input for input (N, T, D), the whole batch.</summary>
    Tensor ModulatedInput(int block, Tensor input);

    /// <summary>output (N, C_out, H, W) = final layer + unpatchify of h (N, T, D).</summary>
    void Final(Tensor h, Tensor output);

    /// <summary>Called after each block with (block index, its output); used by the STSS analysis.</summary>
    Action<int, Tensor>? OnBlockOutput { get; set; }

    long BlockFlops(int n);
    /// <summary>FLOPs of one residual branch (BlockShape.Parts) of one block on n rows, the part of BlockFlops a branch reuse saves.</summary>
    long BranchFlops(string part, int n);
    long EmbedFlops(int n);
    long FinalFlops(int n);
    long ForwardFlops(int n);
}
