// One ComputeDevice per backend for the whole test run (kernels compile once).
// "cpu" (the host backend) and "sim" (ILGPU kernels on the CPU accelerator) always run; "cuda" runs where a
// GPU exists and is skipped visibly otherwise.
//   Kinds        cpu, cuda       models and sampling: what a user runs
//   KernelKinds  sim, cpu, cuda  one op against its reference: the ILGPU kernel (sim), the host kernel (cpu), CUDA
using BlockDance.Kernels;
using Xunit;

[assembly: CollectionBehavior(DisableTestParallelization = true)]

namespace BlockDance.Tests;

public static class TestDevices
{
    static readonly Dictionary<string, ComputeDevice?> devices = new();
    static readonly object gate = new();

    public static IEnumerable<object[]> Kinds => [["cpu"], ["cuda"]];
    public static IEnumerable<object[]> KernelKinds => [["sim"], ["cpu"], ["cuda"]];

    public static ComputeDevice Get(string kind)
    {
        lock (gate)
        {
            if (!devices.TryGetValue(kind, out var dev))
            {
                // "cpu-tiled": the CPU accelerator with 8 warps per group, for the 256-thread tiled GPU versions.
            try { dev = kind == "cpu-tiled" ? ComputeDevice.Create(DeviceKind.Sim, 8) : ComputeDevice.Create(ComputeDevice.ParseKind(kind)); }
                catch (DeviceException) { dev = null; }
                devices[kind] = dev;
            }
            Skip.If(dev is null, $"no {kind.ToUpperInvariant()} device on this machine");
            return dev!;
        }
    }
}
