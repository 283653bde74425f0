// A PixArt-α sampling run: one sample per prompt, all in one model batch, with a fresh cache policy, the chosen
// sampler (DPM-Solver++ 2M by default for PixArt), NaN/signal checks after every step, and the same accounting
// as the DiT's runs (SamplingResult). Options: SamplingOptions (Steps, Sampler, Cfg, Seed, Policy, InitialNoise);
// its Classes only count the samples (PixArt has no labels) and must match the prompt count.
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

    public static SamplingResult Run(PixArt model, PromptEmbeds prompts, SamplingOptions o)
    {
        var cfg = model.PixArtConfig;
        var dev = model.Device;
        int b = prompts.Prompts.Count, s = cfg.LatentSize, c = cfg.InChannels;
        if (o.Classes.Count != b) throw new ArgumentException($"{o.Classes.Count} samples asked for {b} prompts");
        long perSample = (long)c * s * s;
        if (o.InitialNoise != null && o.InitialNoise.LongLength != b * perSample)
            throw new InvalidValueException("initial noise", $"{b}×{c}×{s}×{s} = {b * perSample} values", $"{o.InitialNoise.Length}");
        var schedule = new Schedule(o.Steps, o.Spacing);
        var sampler = new DiffusionSampler(schedule, o.Sampler, o.Eta) { ProfileSteps = o.ProfileSteps };
        var wall = Stopwatch.StartNew();
        var bar = o.Progress ? new ProgressBar(schedule.Steps) : null;
        using var guard = new SamplingGuard(dev, schedule.Steps);
        using var policy = o.Policy();
        using var den = new PixArtDenoiser(model, prompts, o.Cfg, policy, schedule.Steps);
        using var x = Tensor.Allocate(dev, "x", b, c, s, s);
        if (o.InitialNoise != null) x.CopyFromHost(o.InitialNoise);
        else new SeededNoise(o.Seed).Fill(x, 0);
        sampler.OnStep = (step, k, sec) => { guard.AfterStep(x, step, k); bar?.Update(step + 1); };
        guard.Begin();
        long launches0 = dev.Kernels.TotalLaunches, waits0 = dev.HostWaits;
        sampler.Run(den, x, new SeededNoise(o.Seed), cfg.OutChannels);
        long launches = dev.Kernels.TotalLaunches - launches0, waits = dev.HostWaits - waits0;
        guard.Finish(x, schedule.Steps, 0);
        bar?.Finish();
        long rowBlocks = den.Accounting.RowBlocks;
        int steps = schedule.Steps, n = den.ModelBatch;
        long flopsComputed = rowBlocks * model.BlockFlops(1) + steps * (model.EmbedFlops(n) + model.FinalFlops(n));
        return new SamplingResult(x.ToHost(), [b, c, s, s], wall.Elapsed.TotalSeconds,
            sampler.Timings.Sum(t => t.ModelSeconds), sampler.Timings.Sum(t => t.SamplerSeconds),
            rowBlocks / (double)n, (long)steps * cfg.Depth, flopsComputed, steps * model.ForwardFlops(n),
            policy.MemoryBytes, policy.Describe(), [den.Accounting.ReusedSteps.ToList()], n,
            launches / (double)steps, waits / (double)steps);
    }
}
