// Denoiser for the caption-conditioned models — PixArt-α and Open-Sora 1.0's STDiT — with classifier-free guidance
// and a cache policy: the DiT denoiser's twin with captions instead of labels. The model batch is [x; x] with caption
// rows [prompts; negatives] (the project's CfgLayout: row i is sample i's conditional half, row i + B its
// unconditional duplicate; Open-Sora 1.0's forward_with_cfg uses the same [cond, uncond] order; diffusers' PixArt
// orders the halves [uncond; cond], which changes nothing row by row). Guidance mixes `guidedChannels` ε channels:
// ε = ε_u + s·(ε_c − ε_u) — all C_in for PixArt-α (as diffusers), the first 3 for STDiT (as Open-Sora 1.0).
// The model kind only decides where the captions go (SetCaptions of either model) and the latent's shape
// (C, H, W) or (C, T, H, W); the cache hook is the same: policy.Plan(StepContext) then PlanRunner on IBlockModel.
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Transformer;

namespace BlockDance.Sampler;

public sealed class PixArtDenoiser : IDenoiser, IDisposable
{
    readonly IBlockModel model;
    readonly int[] captionRows;     // (model batch) the caption each row attends to
    readonly float[] timesteps;
    readonly int[] classes;         // (B) zeros: no labels; policies see the samples only
    readonly float cfgScale;
    readonly int guidedChannels, outChannels, perChannel;
    readonly Tensor? input;         // (2B, C, …) when guided
    readonly Tensor output;         // (model batch, C_out, …)
    readonly CfgLayout layout;
    readonly int steps;
    readonly PlanRunner runner;
    public ICachePolicy Policy { get; }
    public int ModelBatch => captionRows.Length;
    public BlockAccounting Accounting => runner.Accounting;

    /// <summary>The per-sample latent shape of a caption-conditioned model: (C, H, W) for PixArt-α, (C, T, H, W) for STDiT.</summary>
    public static int[] SampleShape(IBlockModel model) => model switch
    {
        PixArt p => [p.PixArtConfig.InChannels, p.PixArtConfig.LatentSize, p.PixArtConfig.LatentSize],
        STDiT v => [v.VideoConfig.InChannels, v.VideoConfig.Frames, v.VideoConfig.LatentSize, v.VideoConfig.LatentSize],
        _ => throw new InvalidValueException("model", "a caption-conditioned model (PixArt-α or STDiT)", model.GetType().Name),
    };

    /// <summary>The model's output channels (2·C_in with the learned variance).</summary>
    public static int OutChannels(IBlockModel model) => model switch
    {
        PixArt p => p.PixArtConfig.OutChannels,
        STDiT v => v.VideoConfig.OutChannels,
        _ => throw new InvalidValueException("model", "a caption-conditioned model (PixArt-α or STDiT)", model.GetType().Name),
    };

    /// <summary>B samples, one per prompt of `prompts`; with cfg &gt; 1 the negatives (1 row shared, or B rows) are the unconditional half.</summary>
    public PixArtDenoiser(IBlockModel model, PromptEmbeds prompts, float cfgScale, CfgChannels channels, ICachePolicy policy, int steps)
    {
        if (cfgScale < 1) throw new InvalidValueException("guidance scale", "≥ 1", $"{cfgScale}");
        bool guided = cfgScale > 1;
        int b = prompts.Prompts.Count;
        CaptionSet captions = prompts.Prompts;
        if (guided)
        {
            var neg = prompts.Negative ?? throw new InvalidValueException("negative prompt embeddings",
                $"'{PromptEmbeds.NegEmbeds}' in the embeddings file or a --negative file (guidance {cfgScale} needs the unconditional captions)", "none");
            captions = CaptionSet.Concat(prompts.Prompts, neg);
            captionRows = Enumerable.Range(0, b).Concat(Enumerable.Range(0, b).Select(i => b + (neg.Count == 1 ? 0 : i))).ToArray();
        }
        else captionRows = Enumerable.Range(0, b).ToArray();
        var shape = SampleShape(model);
        switch (model)
        {
            case PixArt p:
                p.SetCaptions(captions.Embeds, captions.Mask, captions.Count, captions.Tokens);
                p.Prepare(captionRows.Length);
                p.UploadRows(captionRows);     // before the step loop: a step copies nothing host → device
                break;
            case STDiT v:
                v.SetCaptions(captions.Embeds, captions.Mask, captions.Count, captions.Tokens);
                v.Prepare(captionRows.Length);
                v.UploadRows(captionRows);
                break;
        }
        this.model = model;
        this.cfgScale = cfgScale;
        int inChannels = model.Shape.InChannels;
        outChannels = OutChannels(model);
        perChannel = shape.Skip(1).Aggregate(1, (x, y) => x * y);
        guidedChannels = channels == CfgChannels.All ? inChannels : Math.Min(Guidance.OfficialChannels, inChannels);
        classes = new int[b];
        timesteps = new float[captionRows.Length];
        if (guided) input = Tensor.Allocate(model.Device, "cfg_input", [2 * b, .. shape]);
        output = Tensor.Allocate(model.Device, "model_output", [captionRows.Length, outChannels, .. shape.Skip(1)]);
        Policy = policy;
        this.steps = steps;
        layout = new CfgLayout(b, guided);
        runner = new PlanRunner(model);
        runner.Begin(policy, layout, steps);   // the policy checks its settings against the model's stack
    }

    public Tensor Denoise(Tensor x, int t, int step)
    {
        var modelIn = CfgInput.For(x, input);                                 // x, or [x; x] with guidance
        var plan = Policy.Plan(new StepContext(step, steps, t, x, classes, layout));
        Array.Fill(timesteps, t);
        runner.Run(plan, step, modelIn, timesteps, captionRows, output);
        if (input != null)
            Guidance.Run(model.Device, output.View, captionRows.Length / 2, outChannels, perChannel, guidedChannels, cfgScale);
        return output;
    }

    public void Dispose()
    {
        input?.Dispose();
        output.Dispose();
    }
}
