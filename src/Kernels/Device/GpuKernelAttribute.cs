// Marks a kernel entry point for the static GPU check (`blockdance ptx`): its PTX is generated without a
// driver, assembled by ptxas for sm_80/sm_90, and its SASS is checked for the instructions it claims.
using System.Reflection;
using ILGPU.Runtime;

namespace BlockDance.Kernels.Harness;

[AttributeUsage(AttributeTargets.Method, AllowMultiple = false)]
public sealed class GpuKernelAttribute(string name) : Attribute
{
    /// <summary>The KernelCache name the launcher uses ("gemm_v3_bf16").</summary>
    public string Name { get; } = name;
    /// <summary>Explicitly grouped (shared memory, barriers or warp ops); otherwise implicitly grouped.</summary>
    public bool Grouped { get; init; }
    /// <summary>Threads per group for KernelSpecialization (.maxntid); 0 = none.</summary>
    public int GroupSize { get; init; }
    /// <summary>Minimum resident groups per SM (.minnctapersm); 0 = none.</summary>
    public int MinGroupsPerSM { get; init; }
    /// <summary>Compiled at OptimizationLevel.O2 (inline-asm operands stay in registers).</summary>
    public bool O2 { get; init; }
    /// <summary>SASS opcodes the version claims, comma-separated: "HMMA,LDSM,LDGSTS".</summary>
    public string Claims { get; init; } = "";

    /// <summary>The KernelSpecialization (.maxntid, .minnctapersm) the attribute states: what `blockdance ptx` checks.</summary>
    public KernelSpecialization Specialization => GroupSize > 0
        ? new KernelSpecialization(GroupSize, MinGroupsPerSM > 0 ? MinGroupsPerSM : null)
        : KernelSpecialization.Empty;

    /// <summary>The specialization a launcher loads `kernel` with: the one its [GpuKernel] states on CUDA (so what
    /// runs is what the static check checked), none on the CPU accelerator (which ignores it).</summary>
    public static KernelSpecialization SpecializationFor(ComputeDevice dev, Delegate kernel)
    {
        if (!dev.IsCuda) return KernelSpecialization.Empty;
        var info = kernel.Method.GetCustomAttribute<GpuKernelAttribute>()
            ?? throw new InvalidOperationException($"{kernel.Method.Name}: a grouped GPU kernel without [GpuKernel]");
        return info.Specialization;
    }
}
