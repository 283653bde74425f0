// The DiT configuration: everything that differs between DiT-S/B/L/XL × 2/4/8 and the demo model.
// All of it except the head count can be read off a checkpoint's tensor shapes (DiTConfig.FromShapes);
// the head count comes from the file's __metadata__ "num_heads", else from the matching preset,
// else from an explicit option — never guessed.
namespace BlockDance.Transformer;

public sealed record DiTConfig(
    int Depth,        // number of DiT blocks
    int Hidden,       // D
    int Heads,        // H; head dim = D / H
    int Patch,        // p
    int InChannels,   // C_in (4 for VAE latents, 1 for the MNIST demo)
    int OutChannels,  // 2·C_in with learned sigma (eps | v)
    int InputSize,    // latent/pixel side; T = (InputSize / p)²
    int NumClasses)   // the label table has NumClasses + 1 rows (the last is the CFG null label)
{
    public const int MlpRatio = 4;
    public int HeadDim => Hidden / Heads;
    public int GridSize => InputSize / Patch;
    /// <summary>Tokens per row: the square patch grid.</summary>
    public int Tokens => GridSize * GridSize;
    public int MlpHidden => MlpRatio * Hidden;
    public bool LearnSigma => OutChannels == 2 * InChannels;
    public int NullClass => NumClasses;
    /// <summary>The block stack as the model seam describes it (IBlockModel.Shape).</summary>
    public BlockShape Shape => new(Depth, Tokens, Hidden, InChannels, InputSize, NumClasses, OutChannels);
    /// <summary>The sizes of the model's Workspace.</summary>
    public WorkspaceShape Workspace => new(Tokens, Hidden, MlpHidden, Patch * Patch * OutChannels);

    /// <summary>Preset name for the (depth, D) pair, e.g. "DiT-XL/2", or null.</summary>
    public string Name => (Preset.ByShape(Depth, Hidden)?.Name ?? $"DiT(depth {Depth}, D {Hidden})") + $"/{Patch}";

    public override string ToString() =>
        $"{Name}: depth {Depth}, D {Hidden}, {Heads} heads (hd {HeadDim}), patch {Patch}, {InChannels}→{OutChannels} ch, " +
        $"input {InputSize}×{InputSize} ({Tokens} tokens), {NumClasses} classes";

    /// <summary>Every field within what the kernels accept; checked before any division or allocation.</summary>
    public void Validate()
    {
        static void Positive(string what, int v)
        {
            if (v < 1) throw new ModelException($"{what}: expected ≥ 1, found {v}");
        }
        Positive("depth", Depth);
        Positive("hidden size D", Hidden);
        Positive("head count", Heads);
        Positive("patch size", Patch);
        Positive("input channels", InChannels);
        Positive("classes", NumClasses);
        if (Hidden % Heads != 0) throw new ModelException($"hidden size {Hidden} is not divisible by {Heads} heads");
        if (OutChannels != InChannels && OutChannels != 2 * InChannels)
            throw new ModelException($"output channels: expected {InChannels} or {2 * InChannels} (C_in, or 2·C_in with learned sigma), found {OutChannels}");
        if (InputSize < Patch || InputSize > ModelValidation.MaxInputSize)
            throw new ModelException($"input size: expected {Patch}..{ModelValidation.MaxInputSize}, found {InputSize}");
        if (InputSize % Patch != 0) throw new ModelException($"input size {InputSize} is not divisible by patch size {Patch}");
        if (Hidden % 4 != 0) throw new ModelException($"hidden size {Hidden}: the 2-D sin-cos position embedding needs a multiple of 4");
    }
}

/// <summary>The published DiT sizes (mlp_ratio 4, qkv_bias true).</summary>
public sealed record Preset(string Name, int Depth, int Hidden, int Heads)
{
    public static readonly Preset[] All =
    [
        new("DiT-S", 12, 384, 6),
        new("DiT-B", 12, 768, 12),
        new("DiT-L", 24, 1024, 16),
        new("DiT-XL", 28, 1152, 16),
    ];

    public static Preset? ByShape(int depth, int hidden) => All.FirstOrDefault(p => p.Depth == depth && p.Hidden == hidden);
}

/// <summary>A model file that does not match what the DiT needs (missing tensor, wrong shape, unknown head count).</summary>
public sealed class ModelException(string message) : BlockDance.Kernels.InputException(message);
