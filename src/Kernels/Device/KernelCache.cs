// Compiles each kernel once per accelerator and counts launches per kernel name.
// The launch counts are what the cache tests use to prove that skipped blocks are never launched.
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public sealed class KernelCache(Accelerator accelerator)
{
    readonly Dictionary<string, Delegate> loaded = new();
    readonly Dictionary<string, long> launches = new();

    public Accelerator Accelerator => accelerator;

    /// <summary>Returns the compiled launcher for `name` (compiling it on first use) and counts one launch.</summary>
    public T Get<T>(string name, Func<Accelerator, T> load) where T : Delegate
    {
        if (!loaded.TryGetValue(name, out var d))
        {
            d = load(accelerator);
            loaded[name] = d;
        }
        launches[name] = launches.GetValueOrDefault(name) + 1;
        TotalLaunches++;
        return (T)d;
    }

    public long TotalLaunches { get; private set; }
    public long LaunchesOf(string name) => launches.GetValueOrDefault(name);
    public IReadOnlyDictionary<string, long> Launches => launches;
    public void ResetCounts() { launches.Clear(); TotalLaunches = 0; }
}
