// Denoiser for PixArt-α with classifier-free guidance and a cache policy — the DiT denoiser's twin with captions
// instead of labels. The model batch is [x; x] with caption rows [prompts; negatives] (the project's CfgLayout:
// row i is sample i's conditional half, row i + B its unconditional duplicate; diffusers orders the halves
// [uncond; cond], which changes nothing row by row). Guidance mixes all C_in ε channels:
// ε = ε_u + s·(ε_c − ε_u), as diffusers' pipeline (it guides all 8 channels and keeps the first 4).
// The cache hook is the same: policy.Plan(StepContext) then PlanRunner on the model's IBlockModel seam.
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Transformer;
using ILGPU.Runtime;

namespace BlockDance.Sampler;

public sealed class PixArtDenoiser : IDenoiser, IDisposable
{
    readonly PixArt model;
    readonly int[] captionRows;     // (model batch) the caption each row attends to
    readonly float[] timesteps;
    readonly int[] classes;         // (B) zeros: PixArt has no labels; policies see the samples only
    readonly float cfgScale;
    readonly Tensor? input;         // (2B, C, H, W) when guided
    readonly Tensor output;         // (model batch, C_out, H, W)
    readonly CfgLayout layout;
    readonly int steps;
    readonly PlanRunner runner;
    public ICachePolicy Policy { get; }
    public int ModelBatch => captionRows.Length;
    public BlockAccounting Accounting => runner.Accounting;

    /// <summary>B samples, one per prompt of `prompts`; with cfg &gt; 1 the negatives (1 row shared, or B rows) are the unconditional half.</summary>
    public PixArtDenoiser(PixArt model, PromptEmbeds prompts, float cfgScale, ICachePolicy policy, int steps)
    {
        var cfg = model.PixArtConfig;
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
        model.SetCaptions(captions.Embeds, captions.Mask, captions.Count, captions.Tokens);
        this.model = model;
        this.cfgScale = cfgScale;
        classes = new int[b];
        timesteps = new float[captionRows.Length];
        int s = cfg.LatentSize;
        if (guided) input = Tensor.Allocate(model.Device, "cfg_input", 2 * b, cfg.InChannels, s, s);
        output = Tensor.Allocate(model.Device, "model_output", captionRows.Length, cfg.OutChannels, s, s);
        Policy = policy;
        this.steps = steps;
        layout = new CfgLayout(b, guided);
        model.Prepare(captionRows.Length);
        model.UploadRows(captionRows);   // before the step loop: a step copies nothing host → device
        runner = new PlanRunner(model);
        runner.Begin(policy, layout, steps);   // the policy checks its settings against the model's stack
    }

    public Tensor Denoise(Tensor x, int t, int step)
    {
        var cfg = model.PixArtConfig;
        var modelIn = CfgInput.For(x, input);                                 // x, or [x; x] with guidance
        var plan = Policy.Plan(new StepContext(step, steps, t, x, classes, layout));
        Array.Fill(timesteps, t);
        runner.Run(plan, step, modelIn, timesteps, captionRows, output);
        if (input != null)
            Guidance.Run(model.Device, output.View, captionRows.Length / 2, cfg.OutChannels, cfg.LatentSize * cfg.LatentSize, cfg.InChannels, cfgScale);
        return output;
    }

    public void Dispose()
    {
        input?.Dispose();
        output.Dispose();
    }
}
