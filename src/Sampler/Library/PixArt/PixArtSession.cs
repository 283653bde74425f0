// A sampling run of a caption-conditioned model (PixArt-α, or Open-Sora 1.0's STDiT): one sample per prompt, all in
// one model batch, with a fresh cache policy, the chosen sampler (DPM-Solver++ 2M by default for PixArt, IDDPM for
// STDiT), NaN/signal checks after every step, and the same accounting as the DiT's runs (SamplingResult). Options:
// SamplingOptions (Steps, Sampler, Cfg, CfgChannels, Seed, Policy, InitialNoise, StepNoise); its Classes only count
// the samples and must match the prompt count. Samples are (B, C, H, W) images or (B, C, T, H, W) videos.
using System.Diagnostics;
using BlockDance.Kernels;
using BlockDance.Transformer;

namespace BlockDance.Sampler;

public static class PixArtSession
{
    /// <summary>The diffusers PixArt-α defaults: DPM-Solver++ 2M, 20 steps, guidance 4.5 (on all ε channels).</summary>
    public static SamplingOptions Defaults(int prompts) => new()
    {
        Classes = new int[prompts],
        Steps = 20,
        Sampler = SamplerKind.DpmSolver2M,
        Cfg = 4.5f,
        CfgChannels = CfgChannels.All,
    };

    /// <summary>Open-Sora 1.0's defaults (configs/opensora/inference): IDDPM with learned-range variance, 100 respaced
    /// steps, guidance 7.0 on the first 3 ε channels, [cond, uncond].</summary>
    public static SamplingOptions VideoDefaults(int prompts) => new()
    {
        Classes = new int[prompts],
        Steps = 100,
        Sampler = SamplerKind.Ddpm,
        Cfg = 7f,
        CfgChannels = CfgChannels.Official,
    };

    public static SamplingResult Run(IBlockModel model, PromptEmbeds prompts, SamplingOptions o)
    {
        var dev = model.Device;
        var shape = PixArtDenoiser.SampleShape(model);
        int b = prompts.Prompts.Count;
        if (o.Classes.Count != b) throw new ArgumentException($"{o.Classes.Count} samples asked for {b} prompts");
        long perSample = shape.Aggregate(1L, (x, y) => x * y);
        int[] all = [b, .. shape];
        if (o.InitialNoise != null && o.InitialNoise.LongLength != b * perSample)
            throw new InvalidValueException("initial noise", $"{Tensor.ShapeString(all)} = {b * perSample} values", $"{o.InitialNoise.Length}");
        var schedule = new Schedule(o.Steps, o.Spacing);
        var sampler = new DiffusionSampler(schedule, o.Sampler, o.Eta) { ProfileSteps = o.ProfileSteps };
        var wall = Stopwatch.StartNew();
        var bar = o.Progress ? new ProgressBar(schedule.Steps) : null;
        using var guard = new SamplingGuard(dev, schedule.Steps);
        using var policy = o.Policy();
        using var den = new PixArtDenoiser(model, prompts, o.Cfg, o.CfgChannels, policy, schedule.Steps);
        using var x = Tensor.Allocate(dev, "x", all);
        if (o.InitialNoise != null) x.CopyFromHost(o.InitialNoise);
        else new SeededNoise(o.Seed).Fill(x, 0);
        INoiseSource noise = o.StepNoise != null ? new SamplingSession.GivenNoise(o.StepNoise, 0, b) : new SeededNoise(o.Seed);
        sampler.OnStep = (step, k, sec) => { guard.AfterStep(x, step, k); bar?.Update(step + 1); };
        guard.Begin();
        long launches0 = dev.Kernels.TotalLaunches, waits0 = dev.HostWaits;
        sampler.Run(den, x, noise, PixArtDenoiser.OutChannels(model));
        long launches = dev.Kernels.TotalLaunches - launches0, waits = dev.HostWaits - waits0;
        guard.Finish(x, schedule.Steps, 0);
        bar?.Finish();
        long rowBlocks = den.Accounting.RowBlocks;
        int steps = schedule.Steps, n = den.ModelBatch;
        long flopsComputed = rowBlocks * model.BlockFlops(1) + steps * (model.EmbedFlops(n) + model.FinalFlops(n));
        return new SamplingResult(x.ToHost(), all, wall.Elapsed.TotalSeconds,
            sampler.Timings.Sum(t => t.ModelSeconds), sampler.Timings.Sum(t => t.SamplerSeconds),
            rowBlocks / (double)n, (long)steps * model.Shape.Depth, flopsComputed, steps * model.ForwardFlops(n),
            policy.MemoryBytes, policy.Describe(), [den.Accounting.ReusedSteps.ToList()], n,
            launches / (double)steps, waits / (double)steps);
    }
}
