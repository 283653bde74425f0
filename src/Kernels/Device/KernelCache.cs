// Compiles each kernel once per accelerator and counts launches per kernel name.
// The launch counts are what the cache tests use to prove that skipped blocks are never launched.
// With Profiling on (benchmarks only), every launch synchronizes first, so the time between two
// launches is the previous kernel's run time; per-kernel totals accumulate in KernelSeconds.
using System.Diagnostics;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public sealed class KernelCache(Accelerator accelerator, bool hostBackend = false)
{
    readonly Dictionary<string, Delegate> loaded = new();
    readonly Dictionary<string, long> launches = new();

    public Accelerator Accelerator => accelerator;

    /// <summary>Returns the compiled launcher for `name` (compiling it on first use) and counts one launch.</summary>
    public T Get<T>(string name, Func<Accelerator, T> load) where T : Delegate
    {
        if (!loaded.TryGetValue(name, out var d))
        {
            if (hostBackend) Log.Info($"host backend: {name} has no host version; running its ILGPU kernel on the CPU accelerator (slower)");
            d = load(accelerator);
            loaded[name] = d;
        }
        launches[name] = launches.GetValueOrDefault(name) + 1;
        TotalLaunches++;
        if (Profiling) Mark(name);
        return (T)d;
    }

    /// <summary>Counts one launch of a host kernel (the host backend's versions; same accounting as Get).</summary>
    public void CountHost(string name)
    {
        launches[name] = launches.GetValueOrDefault(name) + 1;
        TotalLaunches++;
        if (Profiling) Mark(name);
    }

    // ------------------------------------------------------------ profiling (synchronizing; benchmarks only)
    readonly Dictionary<string, double> seconds = new();
    readonly Stopwatch clock = new();
    string? running;

    public bool Profiling { get; set; }
    public IReadOnlyDictionary<string, double> KernelSeconds => seconds;

    void Mark(string? next)
    {
        accelerator.Synchronize();
        if (running != null) seconds[running] = seconds.GetValueOrDefault(running) + clock.Elapsed.TotalSeconds;
        running = next;
        clock.Restart();
    }

    /// <summary>Attributes the last launched kernel's time (call after the measured region).</summary>
    public void EndProfile() => Mark(null);
    public void ResetProfile() { seconds.Clear(); running = null; }

    public long TotalLaunches { get; private set; }
    public long LaunchesOf(string name) => launches.GetValueOrDefault(name);
    public IReadOnlyDictionary<string, long> Launches => launches;
    public void ResetCounts() { launches.Clear(); TotalLaunches = 0; }
}
