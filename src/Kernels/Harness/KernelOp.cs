// The kernel harness contract (llm.c style: pick a version, validate it against the reference, then time it).
// Each op (gemm, attention, layernorm, …) implements IKernelOp in its own file under Harness/; the
// `blockdance kernels` command finds them by reflection (KernelOps.All) so ops never edit a shared list.
using System.Reflection;

namespace BlockDance.Kernels.Harness;

/// <summary>One problem size of an op. Flops/Bytes feed the TFLOP/s and GB/s columns.</summary>
public sealed record KernelShape(string Label, double Flops, double Bytes);

/// <summary>Outcome of comparing a version with the reference: |got − ref| ≤ Atol + Rtol·|ref| per element.</summary>
public sealed record Validation(bool Passed, double MaxAbsError, double Atol, double Rtol, IReadOnlyList<string> FirstMismatches);

/// <summary>A prepared (version, shape): inputs allocated and seeded, validated once; Launch enqueues one
/// run without synchronizing (the harness synchronizes around its timed region). Dispose frees the buffers.</summary>
public sealed class KernelTrial(Validation validation, Action launch, Action dispose) : IDisposable
{
    public Validation Validation { get; } = validation;
    public Action Launch { get; } = launch;
    public void Dispose() => dispose();
}

public interface IKernelOp
{
    /// <summary>"gemm", "attention", "layernorm", …</summary>
    string Name { get; }
    /// <summary>Version names, oldest first ("v1", "v2", "v3-bf16", …).</summary>
    IReadOnlyList<string> Versions { get; }
    /// <summary>The shapes of a set: "small" (CPU-accelerator sized) or "xl" (DiT-XL/2).</summary>
    IReadOnlyList<KernelShape> Shapes(string set);
    /// <summary>True when the version can run on this device (e.g. a tensor-core version needs CUDA or the emulation).</summary>
    bool Supports(ComputeDevice dev, string version);
    /// <summary>Allocates seeded inputs, runs `version` once and validates it, returns the trial for timing.</summary>
    KernelTrial Prepare(ComputeDevice dev, string version, KernelShape shape);
    /// <summary>A vendor baseline on the same shape (cuBLAS, …) for the ratio column, or null where none applies.</summary>
    KernelTrial? PrepareBaseline(ComputeDevice dev, KernelShape shape) => null;
}

public static class KernelOps
{
    /// <summary>Every IKernelOp in this assembly, by name.</summary>
    public static IReadOnlyList<IKernelOp> All { get; } = typeof(IKernelOp).Assembly.GetTypes()
        .Where(t => typeof(IKernelOp).IsAssignableFrom(t) && t is { IsInterface: false, IsAbstract: false })
        .Select(t => (IKernelOp)Activator.CreateInstance(t)!)
        .OrderBy(o => o.Name, StringComparer.Ordinal)
        .ToArray();
}
