// Runs a whole sampling job on one model: splits the classes into batches, draws the noise,
// runs the sampler with a fresh cache policy per batch, and gathers samples and accounting.
using System.Diagnostics;
using BlockDance.Kernels;
using BlockDance.Transformer;

namespace BlockDance.Sampler;

public sealed record SamplingResult(
    float[] Samples,               // (N, C, H, W) the final x_0 (first, guided half)
    int[] Shape,
    double WallSeconds,
    double ModelSeconds,
    double SamplerSeconds,
    double BlocksComputed,         // block evaluations per sample (fractional with per-sample decisions)
    long BlocksTotal,              // without any cache, per sample
    long FlopsComputed,
    long FlopsUncached,
    long CacheBytes,
    string Policy,
    List<List<int>> ReusedStepsPerBatch,
    int ModelBatch,
    double LaunchesPerStep,        // kernel launches queued per sampling step (all batches)
    double HostWaitsPerStep)       // synchronizations + blocking copies per step: 0 unless ProfileSteps
{
    public double BlocksSkipped => BlocksTotal - BlocksComputed;
    public double SkippedFraction => BlocksTotal == 0 ? 0 : BlocksSkipped / (double)BlocksTotal;
    public long FlopsSaved => FlopsUncached - FlopsComputed;
}

public static class SamplingSession
{
    public static SamplingResult Run(DiT model, SamplingOptions o)
    {
        var cfg = model.Config;
        var dev = model.Device;
        int total = o.Classes.Count, batch = o.EffectiveBatch, s = cfg.InputSize, c = cfg.InChannels;
        long perSample = (long)c * s * s;
        var samples = new float[total * perSample];
        var schedule = new Schedule(o.Steps, o.Spacing);
        var sampler = new DiffusionSampler(schedule, o.Sampler, o.Eta) { ProfileSteps = o.ProfileSteps };
        if (o.SampleIndices != null && o.SampleIndices.Count != total)
            throw new InvalidValueException("sample indices", $"one per sample ({total})", $"{o.SampleIndices.Count}");
        if (o.InitialNoise != null && o.InitialNoise.Length != samples.Length)
            throw new InvalidValueException("initial noise", $"{total}×{c}×{s}×{s} = {samples.Length} values", $"{o.InitialNoise.Length}");

        double modelSec = 0, samplerSec = 0;
        double computed = 0;
        long blocksTotal = 0, flopsComputed = 0, flopsUncached = 0, cacheBytes = 0;
        string policyName = "";
        var reused = new List<List<int>>();
        int modelBatch = 0;
        var wall = Stopwatch.StartNew();
        var bar = o.Progress ? new ProgressBar(schedule.Steps * ((total + batch - 1) / batch)) : null;
        int doneSteps = 0;
        long stepLaunches = 0, stepWaits = 0;
        using var guard = new SamplingGuard(dev, schedule.Steps);   // NaN/Inf and SIGINT/SIGTERM, at every step
        for (int first = 0; first < total; first += batch)
        {
            int b = Math.Min(batch, total - first);
            var classes = o.Classes.Skip(first).Take(b).ToArray();
            using var policy = o.Policy();
            using var den = new DiTDenoiser(model, classes, o.Cfg, o.CfgChannels, policy, schedule.Steps);
            using var x = Tensor.Allocate(dev, "x", b, c, s, s);
            INoiseSource noise = o.StepNoise != null ? new GivenNoise(o.StepNoise, first, b)
                : o.SampleIndices != null ? new IndexedNoise(o.Seed, o.SampleIndices.Skip(first).Take(b).ToArray())
                : new SeededNoise(o.Seed, first);
            if (o.InitialNoise != null) x.CopyFromHost(o.InitialNoise[(int)(first * perSample)..(int)((first + b) * perSample)]);
            else if (o.SampleIndices != null) new IndexedNoise(o.Seed, o.SampleIndices.Skip(first).Take(b).ToArray()).Fill(x, 0);
            else new SeededNoise(o.Seed, first).Fill(x, 0);
            int stepsBefore = doneSteps;
            sampler.OnStep = (step, k, sec) => { guard.AfterStep(x, step, k); bar?.Update(stepsBefore + step + 1); };
            guard.Begin();
            long launches0 = dev.Kernels.TotalLaunches, waits0 = dev.HostWaits;
            sampler.Run(den, x, noise, cfg.OutChannels);
            stepLaunches += dev.Kernels.TotalLaunches - launches0;
            stepWaits += dev.HostWaits - waits0;
            guard.Finish(x, schedule.Steps, first);
            doneSteps += schedule.Steps;
            modelSec += sampler.Timings.Sum(t => t.ModelSeconds);
            samplerSec += sampler.Timings.Sum(t => t.SamplerSeconds);
            // per-sample block evaluations (from the executed plans), weighted by the batch's share of all samples
            long rowBlocks = den.Accounting.RowBlocks;
            computed += rowBlocks / (double)den.ModelBatch * b / total;
            modelBatch = den.ModelBatch;
            blocksTotal = (long)schedule.Steps * cfg.Depth;
            flopsComputed += rowBlocks * model.BlockFlops(1)
                             + schedule.Steps * (model.EmbedFlops(den.ModelBatch) + model.FinalFlops(den.ModelBatch));
            flopsUncached += schedule.Steps * model.ForwardFlops(den.ModelBatch);
            cacheBytes = Math.Max(cacheBytes, policy.MemoryBytes);
            policyName = policy.Describe();
            reused.Add(den.Accounting.ReusedSteps.ToList());
            x.ToHost().CopyTo(samples, first * perSample);
        }
        bar?.Finish();
        return new SamplingResult(samples, [total, c, s, s], wall.Elapsed.TotalSeconds, modelSec, samplerSec,
            computed, blocksTotal, flopsComputed, flopsUncached, cacheBytes, policyName, reused, modelBatch,
            stepLaunches / (double)Math.Max(1, doneSteps), stepWaits / (double)Math.Max(1, doneSteps));
    }

    /// <summary>Per-step noise given by the caller (reference trajectories), sliced to the batch.</summary>
    internal sealed class GivenNoise(Func<int, float[]> stepNoise, int first, int count) : INoiseSource
    {
        public void Fill(Tensor z, int stream)
        {
            var all = stepNoise(stream - 1);
            long per = z.Length / count;
            z.CopyFromHost(all[(int)(first * per)..(int)((first + count) * per)]);
        }
    }
}
