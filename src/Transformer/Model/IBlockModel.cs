// The seam between a transformer and src/Cache's PlanRunner: a stack of identical blocks between an
// embedding and a final layer, offered in three parts so a cache can run any part of the stack on any
// input (a stored feature included). DiT and PixArt-α implement it; every cache policy works on both.
//
//   Embed(x?, t, y)         per-row conditioning (and the patch tokens (N, T, D) when x is given)
//   RunBlocks(from, to, …)  blocks from..to−1 on (N, T, D); the last writes into `output` when given
//   RefreshRows(to, …)      the listed rows of the tokens run blocks 0..to−1 as a compact sub-batch and
//                           replace those rows of a (N, T, D) feature (BlockDance-Ada's per-sample refresh)
//   Final(h, output)        final layer + unpatchify → (N, C_out, H, W)
//
// `y` is per model row: the class label for the DiT, the caption row (of the captions set with
// PixArt.SetCaptions) for PixArt. Config describes the block stack (depth, tokens, width), which is
// all a policy or a feature store needs; for PixArt its NumClasses is 1 (no label table).
using BlockDance.Kernels;

namespace BlockDance.Transformer;

public interface IBlockModel
{
    DiTConfig Config { get; }
    ComputeDevice Device { get; }

    /// <summary>Conditioning of the n = t.Length rows; with x (N, C_in, H, W) also the tokens (N, T, D), else null.</summary>
    Tensor? Embed(Tensor? x, float[] t, int[] y);

    /// <summary>Blocks from..to−1 on input (N, T, D); returns the tensor holding the result (output when given).</summary>
    Tensor RunBlocks(int from, int to, Tensor input, Tensor? output = null);

    /// <summary>Rows `rows` of tokens (N, T, D) run blocks 0..to−1 as a sub-batch; the results replace those rows of feature (N, T, D).</summary>
    void RefreshRows(int to, Tensor tokens, int[] rows, Tensor feature);

    /// <summary>output (N, C_out, H, W) = final layer + unpatchify of h (N, T, D).</summary>
    void Final(Tensor h, Tensor output);

    /// <summary>Called after each block with (block index, its output); used by the STSS analysis.</summary>
    Action<int, Tensor>? OnBlockOutput { get; set; }

    long BlockFlops(int n);
    long EmbedFlops(int n);
    long FinalFlops(int n);
    long ForwardFlops(int n);
}
