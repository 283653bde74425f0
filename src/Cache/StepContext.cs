// What a cache policy sees at each sampling step (ICachePolicy.Plan), and how the model batch is laid out.
//
// The model batch with classifier-free guidance is [x; x] with labels [y; null]: row i is sample i's
// conditional half, row i + B its unconditional duplicate (same x, so it always gets sample i's decision).
// Without guidance the model batch is the B samples.
using BlockDance.Kernels;

namespace BlockDance.Cache;

/// <summary>The CFG layout of a model batch: B samples, ×2 rows when guided.</summary>
public readonly record struct CfgLayout(int Samples, bool Guided)
{
    public int Halves => Guided ? 2 : 1;
    public int ModelBatch => Halves * Samples;

    /// <summary>Model row of sample i in half h (0 = conditional, 1 = unconditional).</summary>
    public int Row(int sample, int half = 0) => half * Samples + sample;

    /// <summary>Every model row of the given samples (both halves), ascending: half 0 rows, then half 1 rows.</summary>
    public int[] Rows(IEnumerable<int> samples)
    {
        var s = samples.Order().ToArray();
        var rows = new int[s.Length * Halves];
        for (int h = 0; h < Halves; h++)
            for (int k = 0; k < s.Length; k++) rows[h * s.Length + k] = Row(s[k], h);
        return rows;
    }
}

/// <summary>What a cache policy and its feature store know of the model they run on: the block stack's sizes, the input
/// the model takes, its label count, and how the model batch is laid out. Built by the plan runner from the model's
/// shape (a policy never sees a model or its config class).</summary>
/// <param name="Depth">Blocks in the stack (L).</param>
/// <param name="Tokens">T: tokens per row.</param>
/// <param name="Hidden">D: the width of a token.</param>
/// <param name="Cfg">The model batch: B samples, ×2 rows with guidance.</param>
/// <param name="Channels">C of a sample (N, C, H, W) the model takes.</param>
/// <param name="Size">H = W of a sample.</param>
/// <param name="Classes">Labels the samples may have (1 for a model conditioned on text: every sample is label 0).</param>
/// <param name="Frames">0 for image samples (N, C, H, W); T for video samples (N, C, T, H, W), whose tokens are T frames of
/// Tokens / T, frame-major.</param>
/// <param name="Branches">A block's residual branches ("attn", "temporal", "cross", "mlp"; null: the DiT's "attn", "mlp").</param>
/// <param name="CaptionChannels">The width of the model's caption features (PixArt-α, STDiT); 0 for a class-conditional model.</param>
public sealed record BlockStack(int Depth, int Tokens, int Hidden, CfgLayout Cfg, int Channels, int Size, int Classes, int Frames = 0,
    string[]? Branches = null, int CaptionChannels = 0)
{
    /// <summary>The block's residual branches in the order they run.</summary>
    public string[] Parts => Branches ?? ["attn", "mlp"];
    public bool Has(string part) => Parts.Contains(part);
    public int ModelBatch => Cfg.ModelBatch;
    /// <summary>T · D: the values of one row of a block feature (N, T, D).</summary>
    public int RowLength => Tokens * Hidden;
}

/// <summary>A cache setting that cannot apply to the model or the run (bad input: exit 2, before the device starts
/// when the caller checks with ICachePolicy.Check).</summary>
public sealed class CacheException(string message) : InputException(message);

/// <summary>One sampling step as the policy sees it.</summary>
/// <param name="Step">Step index in sampling order (0 = the largest t).</param>
/// <param name="Steps">Steps in the run.</param>
/// <param name="Timestep">The original (training) timestep t fed to the model.</param>
/// <param name="X">The current sample x_t (B, C, H, W): the B samples, without CFG duplicates.</param>
/// <param name="Classes">The B samples' class labels.</param>
/// <param name="Cfg">How the model batch is built from the B samples.</param>
/// <param name="Captions">A caption-conditioned run: each sample's caption summary (B, D_text), the mean of its caption feature
/// rows under the attention mask (Conditioning.PolicyFeatures), on the device; null for class labels.</param>
public sealed record StepContext(int Step, int Steps, int Timestep, Tensor X, IReadOnlyList<int> Classes, CfgLayout Cfg, Tensor? Captions = null);
