// Static GPU check of the attention and LayerNorm kernels, no driver needed: ILGPU's PTX backend (sm_80, PTX ISA
// 7.8 so that ptxas 11.8 accepts it) must emit the instructions each version is built on. ptxas/SASS figures
// (registers, spills, HMMA/LDSM counts) are in docs/gpu-kernels.md; `blockdance ptx` reproduces them.
using System.Reflection;
using BlockDance.Kernels;
using BlockDance.Kernels.Harness;
using ILGPU;
using ILGPU.Backends.EntryPoints;
using ILGPU.Backends.PTX;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;
using Xunit;

namespace BlockDance.Tests;

public class AttentionLayerNormPtxTests
{
    static string Ptx(Type type)
    {
        var mi = type.GetMethod("Kernel", BindingFlags.NonPublic | BindingFlags.Static)!;
        var attr = mi.GetCustomAttribute<GpuKernelAttribute>()!;
        using var ctx = Context.Create(b => b.Optimize(attr.O2 ? OptimizationLevel.O2 : OptimizationLevel.O1).EnableAlgorithms());
        var backend = new PTXBackend(ctx, new CudaCapabilityContext(CudaArchitecture.SM_80), CudaArchitecture.SM_80, CudaInstructionSet.ISA_78, null);
        var compiled = backend.Compile(EntryPointDescription.FromExplicitlyGroupedKernel(mi), new KernelSpecialization(attr.GroupSize, attr.MinGroupsPerSM > 0 ? attr.MinGroupsPerSM : null));
        string ptx = ((PTXCompiledKernel)compiled).PTXAssembly;
        Assert.Contains(".target sm_80", ptx);
        Assert.Contains(".version 7.8", ptx);
        Assert.Contains($".maxntid {attr.GroupSize}", ptx);
        if (attr.MinGroupsPerSM > 0) Assert.Contains($".minnctapersm {attr.MinGroupsPerSM}", ptx);
        return ptx;
    }

    [Fact]
    public void AttentionV3Ptx_HasBf16MmaLdMatrixAndPacking()
    {
        string ptx = Ptx(typeof(AttentionV3));
        Assert.Contains("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32", ptx);
        Assert.Contains("ldmatrix.sync.aligned.m8n8.x4.shared.b16", ptx);       // Q and K
        Assert.Contains("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16", ptx); // V, n-tile pairs
        Assert.Contains("ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16", ptx); // V, the odd 9th n-tile of hd 72
        Assert.Contains("cvt.rn.bf16x2.f32", ptx);                              // P and the staged q/k/v
        Assert.Contains(".shared .align 16", ptx);
    }

    [Fact]
    public void AttentionV2Ptx_StagesTilesInSharedMemory_AndReducesScoresWithShuffles()
    {
        string ptx = Ptx(typeof(AttentionV2));
        Assert.Contains("bar.sync", ptx);
        Assert.Contains("ld.shared.f32", ptx);
        Assert.Contains("shfl.sync.bfly", ptx);
    }

    [Fact]
    public void LayerNormV2Ptx_Uses16ByteLoadsAndWarpShuffles()
    {
        string ptx = Ptx(typeof(LayerNormModulateV2));
        Assert.Contains("ld.v4.f32", ptx);
        Assert.Contains("st.v4.f32", ptx);   // fp32 output, float4 per lane
        Assert.Contains("st.v2.b32", ptx);   // bf16 output, 4 bf16 per lane
        Assert.Contains("shfl.sync.bfly", ptx);
    }
}
