// The sampling loop: DDPM (learned-range variance, the released sampler), DDIM (η = 0 default) or
// DPM-Solver++ 2M (DpmSolver: PixArt-α's sampler, no noise after x_T). Every sampler visits the timesteps of the
// schedule it is given (PixArt-α's DPM-Solver++ schedule is Spacing.Linspace); η is DDIM's alone, and a sampler
// given a setting it does not use refuses it (InvalidValueException) rather than ignoring it.
// It knows nothing of how the model computes: each step asks the denoiser for a prediction and
// applies the update kernel. Cache policies hook in inside the denoiser, at one place.
using System.Diagnostics;
using BlockDance.Kernels;

namespace BlockDance.Sampling;

public enum SamplerKind { Ddim, Ddpm, DpmSolver2M }

public sealed record StepTiming(int Step, int Timestep, double ModelSeconds, double SamplerSeconds);

public sealed class DiffusionSampler
{
    readonly Schedule schedule;
    readonly SamplerKind kind;
    readonly double eta;

    public DiffusionSampler(Schedule schedule, SamplerKind kind, double eta = 0)
    {
        if (eta != 0 && kind != SamplerKind.Ddim)
            throw new InvalidValueException($"η for {(kind == SamplerKind.Ddpm ? "DDPM" : "DPM-Solver++")} (a DDIM setting)", "0", $"{eta}");
        (this.schedule, this.kind, this.eta) = (schedule, kind, eta);
    }

    public Schedule Schedule => schedule;
    public SamplerKind Kind => kind;
    public double Eta => eta;
    /// <summary>Per-step model/sampler times; filled only with ProfileSteps (it costs two synchronizations per step).</summary>
    public List<StepTiming> Timings { get; } = new();

    /// <summary>
    /// Off (the default), a step queues its kernels and returns: no synchronization, no host ↔ device copy, so
    /// the host runs ahead of the device on one stream and launch latency hides behind the kernels. On, the
    /// device is synchronized after the model and after the update to time each part (benchmarks, training logs).
    /// </summary>
    public bool ProfileSteps { get; set; }

    /// <summary>Called after each step with (step index, steps, seconds so far); drives the progress bar.</summary>
    public Action<int, int, double>? OnStep { get; set; }

    /// <summary>Runs all steps in place on x (B, C, H, W) or a video (B, C, T, H, W), which holds x_T on entry and x_0 on return.
    /// firstStep &gt; 0 resumes a trajectory: x holds the sample before step firstStep (the Ada trainer's episodes).</summary>
    public void Run(IDenoiser denoiser, Tensor x, INoiseSource noise, int outChannels, int firstStep = 0)
    {
        if (kind == SamplerKind.DpmSolver2M)
        {
            RunDpm(denoiser, x, outChannels, firstStep);
            return;
        }
        var dev = x.Device;
        int b = x.Shape[0], c = x.Shape[1], hw = (int)(x.Length / ((long)b * c));   // H·W, or T·H·W for video
        if (kind == SamplerKind.Ddpm && outChannels < 2 * c)
            throw new InvalidValueException("DDPM sampler", $"a learned-sigma model ({2 * c} output channels; use DDIM otherwise)", $"{outChannels} output channels");
        bool needsNoise = kind == SamplerKind.Ddpm || eta > 0;
        using var z = needsNoise ? Tensor.Allocate(dev, "step_noise", x.Shape) : null;
        Timings.Clear();
        var total = Stopwatch.StartNew();
        int k = schedule.Steps;
        if (firstStep < 0 || firstStep >= k) throw new ArgumentOutOfRangeException(nameof(firstStep), $"first step {firstStep} outside 0..{k - 1}");
        for (int step = firstStep; step < k; step++)
        {
            int i = k - 1 - step;                     // index into the respaced schedule
            int t = schedule.Timesteps[i];            // original timestep fed to the model
            var sw = Stopwatch.StartNew();
            var output = denoiser.Denoise(x, t, step);
            if (ProfileSteps) dev.Synchronize();
            double model = sw.Elapsed.TotalSeconds;
            sw.Restart();
            var coef = schedule.Coefficients(i, eta);
            if (needsNoise && (kind == SamplerKind.Ddpm ? i != 0 : coef.Sigma != 0)) noise.Fill(z!, 1 + step);
            if (kind == SamplerKind.Ddim)
                DiffusionStep.Ddim(dev, x.View, output.View, needsNoise ? z!.View : default, b, c, hw, outChannels, coef);
            else
                DiffusionStep.Ddpm(dev, x.View, output.View, z!.View, b, c, hw, outChannels, coef);
            if (ProfileSteps)
            {
                dev.Synchronize();
                Timings.Add(new StepTiming(step, t, model, sw.Elapsed.TotalSeconds));
            }
            OnStep?.Invoke(step, k, total.Elapsed.TotalSeconds);
        }
    }

    /// <summary>DPM-Solver++ 2M over the schedule's step count; x holds x_T on entry and x_0 on return.</summary>
    void RunDpm(IDenoiser denoiser, Tensor x, int outChannels, int firstStep)
    {
        var dev = x.Device;
        int b = x.Shape[0], c = x.Shape[1], hw = (int)(x.Length / ((long)b * c));   // H·W, or T·H·W for video
        if (firstStep != 0) throw new ArgumentOutOfRangeException(nameof(firstStep), "DPM-Solver++ keeps a history: a trajectory cannot resume mid-way");
        var dpm = new DpmSolver(schedule);
        using var prev = Tensor.Allocate(dev, "dpm_prev_x0", x.Shape);     // (B, C, H, W) the previous step's x0
        prev.Zero();                                                       // never read with weight ≠ 0 before written; 0·garbage could be NaN
        Timings.Clear();
        var total = Stopwatch.StartNew();
        for (int step = 0; step < dpm.Steps; step++)
        {
            int t = dpm.Timesteps[step];
            var sw = Stopwatch.StartNew();
            var output = denoiser.Denoise(x, t, step);
            if (ProfileSteps) dev.Synchronize();
            double model = sw.Elapsed.TotalSeconds;
            sw.Restart();
            DpmSolverStep.Run(dev, x.View, output.View, prev.View, b, c, hw, outChannels, dpm.Coefficients(step));
            if (ProfileSteps)
            {
                dev.Synchronize();
                Timings.Add(new StepTiming(step, t, model, sw.Elapsed.TotalSeconds));
            }
            OnStep?.Invoke(step, dpm.Steps, total.Elapsed.TotalSeconds);
        }
    }
}
