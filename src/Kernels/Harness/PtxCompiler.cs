// Generates the PTX of every kernel entry point without a GPU or a driver (the first half of
// `blockdance ptx`; the second half, ptxas + SASS, lives in the program).
//
// Which methods are kernels:
//   1. every static method marked [GpuKernel] (explicitly grouped kernels must be: shared memory,
//      barriers, warp ops, inline PTX, a group size, O2);
//   2. by convention, every other static method of this assembly whose first parameter is an ILGPU
//      index (Index1D/2D/3D): an implicitly grouped grid-stride kernel (all v1 kernels), named
//      "Type.Method".
// The PTX is what ILGPU 1.5.3 emits for CUDA: `.target sm_80` (its highest target) with PTX ISA 7.8 so
// that ptxas 11.8 accepts it, at OptimizationLevel.O2 like the program's CUDA context (ComputeDevice).
// [GpuKernel(O2 = true)] marks kernels that need O2 (inline-asm operands; at O1 they stay in local
// memory); a kernel marked O1-only would be compiled in a second, O1 context.
using System.Reflection;
using ILGPU;
using ILGPU.Backends;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace BlockDance.Kernels.Harness;

/// <summary>One kernel entry point and how it is compiled.</summary>
public sealed record KernelEntry(string Name, MethodInfo Method, GpuKernelAttribute Info);

/// <summary>The PTX of one entry point, or the compiler's error.</summary>
public sealed record PtxResult(KernelEntry Kernel, string? Ptx, string? Error);

public sealed class PtxCompiler : IDisposable
{
    readonly Context o1 = Context.Create(b => b.Optimize(OptimizationLevel.O1).EnableAlgorithms());
    readonly Context o2 = Context.Create(b => b.Optimize(OptimizationLevel.O2).EnableAlgorithms());

    /// <summary>Every kernel entry point of the kernels assembly, sorted by name.</summary>
    public static IReadOnlyList<KernelEntry> Discover()
    {
        var list = new List<KernelEntry>();
        const BindingFlags all = BindingFlags.Static | BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.DeclaredOnly;
        foreach (var type in typeof(PtxCompiler).Assembly.GetTypes())
            foreach (var m in type.GetMethods(all))
            {
                if (m.IsGenericMethodDefinition || type.IsGenericTypeDefinition) continue;
                if (m.GetCustomAttribute<GpuKernelAttribute>() is { } attr)
                    list.Add(new KernelEntry(attr.Name, m, attr));
                else if (m.ReturnType == typeof(void) && m.GetParameters() is [var p0, ..] &&
                         (p0.ParameterType == typeof(Index1D) || p0.ParameterType == typeof(Index2D) || p0.ParameterType == typeof(Index3D)))
                    list.Add(new KernelEntry($"{type.Name}.{m.Name}", m, new GpuKernelAttribute($"{type.Name}.{m.Name}")));
            }
        return list.OrderBy(e => e.Name, StringComparer.Ordinal).ToArray();
    }

    /// <summary>PTX for sm_80 / ISA 7.8 of one entry point (never throws: errors come back in the result).</summary>
    public PtxResult Compile(KernelEntry k)
    {
        try
        {
            var ctx = o2;   // the program's level (ComputeDevice); O1 is kept for experiments
            using var backend = new PTXBackend(ctx, new CudaCapabilityContext(CudaArchitecture.SM_80),
                CudaArchitecture.SM_80, CudaInstructionSet.ISA_78, null);
            var entry = k.Info.Grouped ? EntryPointDescription.FromExplicitlyGroupedKernel(k.Method)
                                       : EntryPointDescription.FromImplicitlyGroupedKernel(k.Method);
            var spec = k.Info.Specialization;   // the launchers load with the same (GpuKernelAttribute.SpecializationFor)
            var compiled = (PTXCompiledKernel)backend.Compile(entry, spec);
            return new PtxResult(k, compiled.PTXAssembly, null);
        }
        catch (Exception e)
        {
            return new PtxResult(k, null, e.GetBaseException().Message);
        }
    }

    public IEnumerable<PtxResult> CompileAll() => Discover().Select(Compile);

    /// <summary>What the PTX text itself must show (checked in CI without ptxas): the sm_80 target, an ISA
    /// ptxas 11.8 accepts, the PTX instruction behind each SASS claim, and no local-memory depot in a
    /// kernel that claims tensor-core or async-copy instructions. Empty when all hold.</summary>
    public static IReadOnlyList<string> MarkerProblems(PtxResult r)
    {
        var problems = new List<string>();
        if (r.Ptx is not { } ptx) { problems.Add($"no PTX: {r.Error}"); return problems; }
        if (!ptx.Contains(".target sm_80")) problems.Add("expected .target sm_80");
        var version = System.Text.RegularExpressions.Regex.Match(ptx, @"\.version (\d+)\.(\d+)");
        if (!version.Success || int.Parse(version.Groups[1].Value) * 10 + int.Parse(version.Groups[2].Value) > 78)
            problems.Add($"expected .version <= 7.8, found '{(version.Success ? version.Value : "none")}'");
        foreach (var claim in Claims(r.Kernel.Info))
        {
            string? needle = claim switch
            {
                "HMMA" => "mma.sync.aligned",
                "LDSM" => "ldmatrix.sync.aligned",
                "LDGSTS" => "cp.async",
                _ => null,
            };
            if (needle != null && !ptx.Contains(needle)) problems.Add($"claims {claim} but the PTX has no {needle}");
        }
        // No "__local_depot" rule here: ILGPU always declares one per multi-result inline-asm operand (mma,
        // ldmatrix); whether they stay in memory is ptxas's decision, checked by `blockdance ptx` (stack frame,
        // LDL/STL in the SASS). A tensor-core kernel must be compiled at O2, where that promotion works.
        if (Claims(r.Kernel.Info).Any(c => c is "HMMA" or "LDSM") && !r.Kernel.Info.O2)
            problems.Add("tensor-core kernel not compiled at O2 (its asm operands would stay in local memory)");
        if (r.Kernel.Info.GroupSize > 0 && !ptx.Contains(".maxntid")) problems.Add("expected .maxntid from the group size");
        return problems;
    }

    public static IReadOnlyList<string> Claims(GpuKernelAttribute info) =>
        info.Claims.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);

    public void Dispose()
    {
        o1.Dispose();
        o2.Dispose();
    }
}
