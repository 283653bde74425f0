// The one denoiser: classifier-free guidance and a cache policy over the model interface (IBlockModel), for any
// conditioning (Conditioning: class labels for the DiT, captions for PixArt-α and STDiT) and any sample shape
// (BlockShape.Sample: (C, H, W) images, (C, T, H, W) videos).
//   cfg scale 1: the model batch is the B samples (no unconditional half)
//   cfg scale > 1: the model runs on [x; x] with conditioning rows [cond; uncond] (CfgLayout: row i is sample i's
//                  conditional half, row i + B its unconditional duplicate) and Guidance mixes the halves:
//                  ε = ε_u + s·(ε_c − ε_u) on the guided channels (the DiT's official rule: the first 3 of the
//                  4 latent channels, as Open-Sora 1.0's STDiT; PixArt-α, as diffusers: all of them)
// The cache policy is asked for the step's plan here (the one hook: ICachePolicy.Plan with the step's context),
// right before PlanRunner runs the model with it and counts the blocks the plan ran.
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Transformer;

namespace BlockDance.Sampling;

public enum CfgChannels { Official, All }

public sealed class GuidedDenoiser : IDenoiser, IDisposable
{
    readonly IBlockModel model;
    readonly int[] rows;            // (model batch) the conditioning row each model row reads
    readonly float[] timesteps;     // (model batch) the step's original timestep, refilled each step
    readonly int[] policyLabels;    // (B) what the policy sees of the samples
    readonly float cfgScale;
    readonly int guidedChannels;
    readonly Tensor? input;         // (2B, C, …) when guided: [x; x]
    readonly Tensor output;         // (model batch, C_out, …)
    readonly Tensor? captions;      // (B, D_text) what the policy sees of the captions (StepContext.Captions); null for labels
    readonly CfgLayout layout;
    readonly int steps;
    readonly PlanRunner runner;
    public ICachePolicy Policy { get; }
    public int ModelBatch => rows.Length;
    /// <summary>Block evaluations per model row of the plans run so far, and the steps that reused.</summary>
    public BlockAccounting Accounting => runner.Accounting;

    public GuidedDenoiser(IBlockModel model, Conditioning conditioning, float cfgScale, CfgChannels channels, ICachePolicy policy, int steps)
    {
        var cfg = model.Shape;
        if (cfgScale < 1) throw new InvalidValueException("guidance scale", "≥ 1", $"{cfgScale}");
        this.model = model;
        this.cfgScale = cfgScale;
        bool guided = cfgScale > 1;
        int b = conditioning.Count;
        rows = conditioning.Bind(model, guided);
        policyLabels = conditioning.PolicyLabels;
        if (conditioning.PolicyCaptions is { } pc)   // uploaded before the step loop, as the conditioning is
            captions = Tensor.FromHost(model.Device, "policy_captions", pc.Values, b, pc.Width);
        timesteps = new float[rows.Length];
        // Official rule: the first 3 channels (of the 4 latent eps channels); capped at C_in so a
        // model with fewer channels never has its v channels guided.
        guidedChannels = channels == CfgChannels.All ? cfg.InChannels : Math.Min(Guidance.OfficialChannels, cfg.InChannels);
        if (guided) input = Tensor.Allocate(model.Device, "cfg_input", cfg.Batch(2 * b));
        output = Tensor.Allocate(model.Device, "model_output", cfg.Output(rows.Length));
        Policy = policy;
        this.steps = steps;
        layout = new CfgLayout(b, guided);
        runner = new PlanRunner(model);
        runner.Begin(policy, layout, steps);   // the policy checks its settings against the model's stack
    }

    public Tensor Denoise(Tensor x, int t, int step)
    {
        var cfg = model.Shape;
        var modelIn = CfgInput.For(x, input);                                 // x, or [x; x] with guidance
        var plan = Policy.Plan(new StepContext(step, steps, t, x, policyLabels, layout, captions));
        Array.Fill(timesteps, t);
        runner.Run(plan, step, modelIn, timesteps, rows, output);
        if (input != null)
            Guidance.Run(model.Device, output.View, rows.Length / 2, cfg.OutChannels, cfg.PerChannel, guidedChannels, cfgScale);
        return output;
    }

    public void Dispose()
    {
        input?.Dispose();
        output.Dispose();
        captions?.Dispose();
    }
}
