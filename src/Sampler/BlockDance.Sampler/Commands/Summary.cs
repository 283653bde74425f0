// The end-of-run summary printed to the console and written as the --report JSON.
using System.Text.Json;
using BlockDance.Kernels;
using BlockDance.Transformer;

namespace BlockDance.Sampler.Commands;

public sealed record Summary(
    string Device, string Model, string Config, string Sampler, int Steps, float Cfg, int Samples, int ModelBatch,
    double WallSeconds, double SecondsPerStep, double ModelSeconds, double SamplerSeconds, double OtherSeconds,
    string Cache, double BlocksComputed, double BlocksSkipped, long BlocksWithoutCache, double SkippedFraction,
    double GflopsComputed, double GflopsSaved, double CacheMiB, List<List<int>> ReusedSteps, double DeviceMiB,
    bool StepsProfiled, double LaunchesPerStep, double HostWaitsPerStep)
{
    public static readonly JsonSerializerOptions Json = new() { WriteIndented = true, PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower };

    public static Summary Of(ComputeDevice dev, string modelPath, DiTConfig cfg, SamplingOptions o, SamplingResult r) =>
        Of(dev, modelPath, cfg.ToString(), o, o.Classes.Count, r);

    public static Summary Of(ComputeDevice dev, string modelPath, string config, SamplingOptions o, int samples, SamplingResult r)
    {
        int batches = (samples + o.BatchFor(samples) - 1) / o.BatchFor(samples);
        int steps = o.Steps * batches;
        return new Summary(dev.Describe(), modelPath, config, o.SamplerName, o.Steps, o.Cfg, samples, r.ModelBatch,
            r.WallSeconds, r.WallSeconds / steps, r.ModelSeconds, r.SamplerSeconds, r.WallSeconds - r.ModelSeconds - r.SamplerSeconds,
            r.Policy, r.BlocksComputed, r.BlocksSkipped, r.BlocksTotal, r.SkippedFraction,
            r.FlopsComputed / 1e9, r.FlopsSaved / 1e9, r.CacheBytes / 1048576.0, r.ReusedStepsPerBatch, dev.AllocatedBytes / 1048576.0,
            o.ProfileSteps, r.LaunchesPerStep, r.HostWaitsPerStep);
    }

    public void Print()
    {
        Console.WriteLine("---- summary ----");
        Console.WriteLine($"device   {Device}");
        Console.WriteLine($"model    {Config}");
        Console.WriteLine($"sampler  {Sampler}, {Steps} steps, cfg {Cfg}, {Samples} samples (model batch {ModelBatch})");
        Console.WriteLine(StepsProfiled
            ? $"time     {WallSeconds:F2} s wall, {SecondsPerStep * 1000:F1} ms/step; model {ModelSeconds:F2} s, sampler {SamplerSeconds:F3} s, other {OtherSeconds:F2} s"
            : $"time     {WallSeconds:F2} s wall, {SecondsPerStep * 1000:F1} ms/step (--profile-steps splits model and sampler time)");
        Console.WriteLine($"steps    {LaunchesPerStep:0.#} kernel launches and {HostWaitsPerStep:0.##} host waits per step");
        Console.WriteLine($"cache    {Cache}: {BlocksComputed:0.##} blocks computed, {BlocksSkipped:0.##} skipped of {BlocksWithoutCache} per sample ({SkippedFraction:P1}); " +
                          $"{GflopsComputed:F2} GFLOP computed, {GflopsSaved:F2} GFLOP saved; cache buffer {CacheMiB:F2} MiB");
        if (BlocksSkipped > 0) Console.WriteLine($"reused   steps {string.Join(",", ReusedSteps[0])}");
        Console.WriteLine($"memory   {DeviceMiB:F1} MiB device buffers");
    }
}
