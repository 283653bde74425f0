// Runs a whole sampling job on one model (any IBlockModel, with its Conditioning): splits the samples into
// batches, draws the noise, runs the sampler with the one guided denoiser and a fresh cache policy per batch,
// checks every step (SamplingGuard), and gathers samples and accounting.
using System.Diagnostics;
using BlockDance.Kernels;
using BlockDance.Transformer;

namespace BlockDance.Sampling;

public sealed record SamplingResult(
    float[] Samples,               // (N, C, H, W) or (N, C, T, H, W): the final x_0 (first, guided half)
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
    double HostWaitsPerStep,       // synchronizations + blocking copies per step: 0 unless ProfileSteps
    long[]? BlocksPerSample = null)  // block evaluations of each sample's (conditional) model row, in sample order
{
    public double BlocksSkipped => BlocksTotal - BlocksComputed;
    public double SkippedFraction => BlocksTotal == 0 ? 0 : BlocksSkipped / (double)BlocksTotal;
    public long FlopsSaved => FlopsUncached - FlopsComputed;
    /// <summary>The process's CPU time (user + system, all its threads) over the run. Unlike WallSeconds it does not grow
    /// while the process waits for a core another process holds; it does count threads that spin while they wait.</summary>
    public double CpuSeconds { get; init; }
}

public static class SamplingSession
{
    /// <summary>A class-conditional DiT run: the labels are o.Classes.</summary>
    public static SamplingResult Run(DiT model, SamplingOptions o) => Run(model, new ClassLabels(o.Classes), o);

    public static SamplingResult Run(IBlockModel model, Conditioning conditioning, SamplingOptions o)
    {
        var cfg = model.Shape;
        var dev = model.Device;
        int total = conditioning.Count, batch = o.BatchFor(total);
        if (total < 1) throw new InvalidValueException("samples", "at least one", "none");
        long perSample = cfg.SampleLength;
        var samples = new float[total * perSample];
        var schedule = o.Schedule();
        var sampler = new DiffusionSampler(schedule, o.Sampler, o.Eta) { ProfileSteps = o.ProfileSteps };
        if (o.SampleIndices != null && o.SampleIndices.Count != total)
            throw new InvalidValueException("sample indices", $"one per sample ({total})", $"{o.SampleIndices.Count}");
        if (o.InitialNoise != null && o.InitialNoise.Length != samples.Length)
            throw new InvalidValueException("initial noise", $"{string.Join("×", cfg.Batch(total))} = {samples.Length} values", $"{o.InitialNoise.Length}");
        if (o.InitialNoise != null && NonFinite.CountReference(o.InitialNoise) is > 0 and var badNoise)
            throw new InvalidValueException("initial noise", "finite values", $"{badNoise} NaN/Inf of {o.InitialNoise.Length}");   // bad input, not the engine's

        double modelSec = 0, samplerSec = 0;
        double computed = 0;
        long blocksTotal = 0, flopsComputed = 0, flopsUncached = 0, cacheBytes = 0;
        string policyName = "";
        var reused = new List<List<int>>();
        int modelBatch = 0;
        var perSampleBlocks = new long[total];
        var cpu0 = Environment.CpuUsage.TotalTime;
        var wall = Stopwatch.StartNew();
        var bar = o.Progress ? new ProgressBar(schedule.Steps * ((total + batch - 1) / batch)) : null;
        int doneSteps = 0;
        long stepLaunches = 0, stepWaits = 0;
        using var guard = new SamplingGuard(dev, schedule.Steps);   // NaN/Inf and SIGINT/SIGTERM, at every step
        for (int first = 0; first < total; first += batch)
        {
            int b = Math.Min(batch, total - first), stepsBefore = doneSteps;
            Batch Draw(NonFiniteTrace? trace) => RunBatch(model, conditioning.Slice(first, b), o, schedule, sampler, guard, first, b,
                step => bar?.Update(stepsBefore + step + 1), trace);
            Batch r;
            try { r = Draw(null); }
            catch (NonFiniteException e) when (SamplingGuard.ExplainNonFinite)
            {
                throw SamplingGuard.Explain(e, dev, trace => Draw(trace));
            }
            stepLaunches += r.Launches;
            stepWaits += r.Waits;
            doneSteps += schedule.Steps;
            modelSec += sampler.Timings.Sum(t => t.ModelSeconds);
            samplerSec += sampler.Timings.Sum(t => t.SamplerSeconds);
            // per-sample block evaluations (from the executed plans), weighted by the batch's share of all samples
            computed += (r.RowBlocks - r.SavedBlocks) / r.ModelBatch * b / total;   // branch reuse (PAB, ToCa) as block equivalents
            modelBatch = r.ModelBatch;
            blocksTotal = (long)schedule.Steps * cfg.Depth;
            flopsComputed += r.RowBlocks * model.BlockFlops(1) - (long)Math.Round(r.SavedFlops)
                             + schedule.Steps * (model.EmbedFlops(r.ModelBatch) + model.FinalFlops(r.ModelBatch));
            flopsUncached += schedule.Steps * model.ForwardFlops(r.ModelBatch);
            cacheBytes = Math.Max(cacheBytes, r.CacheBytes);
            policyName = r.Policy;
            reused.Add(r.Reused);
            for (int i = 0; i < b; i++) perSampleBlocks[first + i] = r.PerRow[i];   // rows 0..b−1: the samples (CfgLayout)
            r.Samples.CopyTo(samples, first * perSample);
        }
        bar?.Finish();
        return new SamplingResult(samples, cfg.Batch(total), wall.Elapsed.TotalSeconds, modelSec, samplerSec,
            computed, blocksTotal, flopsComputed, flopsUncached, cacheBytes, policyName, reused, modelBatch,
            stepLaunches / (double)Math.Max(1, doneSteps), stepWaits / (double)Math.Max(1, doneSteps), perSampleBlocks)
        { CpuSeconds = (Environment.CpuUsage.TotalTime - cpu0).TotalSeconds };
    }

    sealed record Batch(float[] Samples, long RowBlocks, int ModelBatch, long CacheBytes, string Policy, List<int> Reused, long Launches, long Waits,
        long[] PerRow, double SavedBlocks = 0, double SavedFlops = 0);

    /// <summary>Samples first..first + b − 1: noise, a fresh policy and denoiser, the sampler, the guard's checks.</summary>
    static Batch RunBatch(IBlockModel model, Conditioning conditioning, SamplingOptions o, Schedule schedule, DiffusionSampler sampler,
        SamplingGuard guard, int first, int b, Action<int> progress, NonFiniteTrace? trace)
    {
        var cfg = model.Shape;
        var dev = model.Device;
        long perSample = cfg.SampleLength;
        using var policy = o.Policy();
        using var den = new GuidedDenoiser(model, conditioning, o.Cfg, o.CfgChannels, policy, schedule.Steps);
        using var x = Tensor.Allocate(dev, "x", cfg.Batch(b));
        INoiseSource noise = o.StepNoise != null ? new GivenNoise(o.StepNoise, first, b)
            : o.SampleIndices != null ? new IndexedNoise(o.Seed, o.SampleIndices.Skip(first).Take(b).ToArray())
            : new SeededNoise(o.Seed, first);
        if (o.InitialNoise != null) x.CopyFromHost(o.InitialNoise[(int)(first * perSample)..(int)((first + b) * perSample)]);
        else if (o.SampleIndices != null) new IndexedNoise(o.Seed, o.SampleIndices.Skip(first).Take(b).ToArray()).Fill(x, 0);
        else new SeededNoise(o.Seed, first).Fill(x, 0);
        sampler.OnStep = (step, k, sec) =>
        {
            guard.AfterStep(x, step, k);
            progress(step);
            if (trace != null) trace.Context = $"step {step + 2} of {k}";
        };
        if (trace != null) trace.Context = $"step 1 of {schedule.Steps}";
        guard.Begin();
        long launches0 = dev.Kernels.TotalLaunches, waits0 = dev.HostWaits;
        sampler.Run(den, x, noise, cfg.OutChannels);
        long launches = dev.Kernels.TotalLaunches - launches0, waits = dev.HostWaits - waits0;
        guard.Finish(x, schedule.Steps, first);
        return new Batch(x.ToHost(), den.Accounting.RowBlocks, den.ModelBatch, policy.MemoryBytes, policy.Describe(),
            den.Accounting.ReusedSteps.ToList(), launches, waits, den.Accounting.PerRow.ToArray(), den.Accounting.SavedBlocks, den.Accounting.SavedFlops);
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
