// Denoiser for a class-conditional DiT with classifier-free guidance and a cache policy.
//   cfg scale 1: the batch is the B samples (no unconditional half)
//   cfg scale > 1: the model runs on [x; x] with labels [y; null] and Guidance mixes the halves
// The cache policy is asked for the step's plan here (the one hook: ICachePolicy.Plan with the step's
// context), right before PlanRunner runs the model with it and counts the blocks the plan ran.
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Transformer;
using ILGPU.Runtime;

namespace BlockDance.Sampler;

public enum CfgChannels { Official, All }

public sealed class DiTDenoiser : IDenoiser, IDisposable
{
    readonly DiT model;
    readonly int[] labels;          // (batch) incl. the null half when guided
    readonly float[] timesteps;     // (batch) the step's original timestep, refilled each step
    readonly int[] classes;         // (B) the samples' own labels
    readonly float cfgScale;
    readonly int guidedChannels;
    readonly Tensor? input;         // (2B, C, H, W) when guided: [x; x]
    readonly Tensor output;         // (batch, C_out, H, W)
    readonly CfgLayout layout;
    readonly int steps;
    readonly PlanRunner runner;
    public ICachePolicy Policy { get; }
    public int ModelBatch => labels.Length;
    /// <summary>Block evaluations per model row of the plans run so far, and the steps that reused.</summary>
    public BlockAccounting Accounting => runner.Accounting;
    public double ModelSeconds { get; private set; }

    public DiTDenoiser(DiT model, IReadOnlyList<int> classes, float cfgScale, CfgChannels channels, ICachePolicy policy, int steps)
    {
        var cfg = model.Config;
        if (cfgScale < 1) throw new InvalidValueException("guidance scale", "≥ 1", $"{cfgScale}");
        this.model = model;
        this.cfgScale = cfgScale;
        bool guided = cfgScale > 1;
        this.classes = classes.ToArray();
        labels = guided ? classes.Concat(Enumerable.Repeat(cfg.NullClass, classes.Count)).ToArray() : classes.ToArray();
        timesteps = new float[labels.Length];
        foreach (var y in classes)
            if (y < 0 || y >= cfg.NumClasses)
                throw new InvalidValueException("class", $"0..{cfg.NumClasses - 1} for this model", $"{y}");
        // Official rule: the first 3 channels (of the 4 latent eps channels); capped at C_in so a
        // model with fewer channels never has its v channels guided.
        guidedChannels = channels == CfgChannels.All ? cfg.InChannels : Math.Min(Guidance.OfficialChannels, cfg.InChannels);
        int b = classes.Count, s = cfg.InputSize;
        if (guided) input = Tensor.Allocate(model.Device, "cfg_input", 2 * b, cfg.InChannels, s, s);
        output = Tensor.Allocate(model.Device, "model_output", labels.Length, cfg.OutChannels, s, s);
        Policy = policy;
        this.steps = steps;
        layout = new CfgLayout(b, guided);
        model.Prepare(labels.Length);
        model.UploadLabels(labels);   // before the step loop: a step copies nothing host → device
        runner = new PlanRunner(model);
        runner.Begin(policy, layout, steps);   // the policy checks its settings against the model's stack
    }

    public Tensor Denoise(Tensor x, int t, int step)
    {
        var cfg = model.Config;
        var modelIn = CfgInput.For(x, input);                                 // x, or [x; x] with guidance
        var plan = Policy.Plan(new StepContext(step, steps, t, x, classes, layout));
        Array.Fill(timesteps, t);
        runner.Run(plan, step, modelIn, timesteps, labels, output);
        if (input != null)
            Guidance.Run(model.Device, output.View, labels.Length / 2, cfg.OutChannels, cfg.InputSize * cfg.InputSize, guidedChannels, cfgScale);
        return output;
    }

    public void Dispose()
    {
        input?.Dispose();
        output.Dispose();
    }
}
