// The static GPU check's first half in CI (no GPU, no ptxas): every kernel entry point compiles to PTX
// through ILGPU's PTX backend without a driver, at the target and ISA ptxas 11.8 accepts, with the
// instructions each version claims. ptxas/SASS (registers, spills, HMMA/LDSM in the SASS) need NVIDIA's
// tools: `blockdance ptx` runs them where tools/get-ptxas.sh has fetched them (docs/gpu-kernels.md).
using BlockDance.Kernels.Harness;
using Xunit;

namespace BlockDance.Tests;

public class PtxTests
{
    // One compilation of every kernel for all tests of this class (compiling v3 at O2 takes seconds).
    static readonly Lazy<IReadOnlyList<PtxResult>> all = new(() =>
    {
        using var compiler = new PtxCompiler();
        return compiler.CompileAll().ToList();
    });

    static PtxResult Of(string name) => all.Value.Single(r => r.Kernel.Name == name);

    [Fact]
    public void EveryKernel_CompilesToSm80PtxIsa78_WithItsClaimedInstructions()
    {
        var results = all.Value;
        // The 23 v1 kernels by convention plus the attributed GEMM versions at least.
        Assert.True(results.Count >= 27, $"expected at least 27 kernel entry points, found {results.Count}");
        var failures = new List<string>();
        foreach (var r in results)
        {
            var k = r.Kernel;
            var problems = PtxCompiler.MarkerProblems(r);
            if (problems.Count > 0) failures.Add($"{k.Name}: {string.Join("; ", problems)}");
        }
        Assert.True(failures.Count == 0, string.Join("\n", failures));
    }

    [Fact]
    public void GemmV3Ptx_HasMmaLdmatrix16ByteLoadsAndRegisterCap()
    {
        foreach (var (name, type) in new[] { ("gemm_v3_bf16", "bf16"), ("gemm_v3_fp16", "f16") })
        {
            var r = Of(name);
            Assert.Null(r.Error);
            var ptx = r.Ptx!;
            Assert.Contains($"mma.sync.aligned.m16n8k16.row.col.f32.{type}.{type}.f32", ptx);
            Assert.Contains("ldmatrix.sync.aligned.m8n8.x4.shared.b16", ptx);
            Assert.Contains("ld.global.v4.b32", ptx);          // 16-byte global loads of the staged slices
            Assert.Contains("st.shared.v4.b32", ptx);          // … and their 16-byte shared stores
            Assert.Contains(".maxntid 256, 1, 1", ptx);
            Assert.Contains(".minnctapersm 2", ptx);
            Assert.Contains(".extern .shared .align 16", ptx); // 16-byte aligned dynamic tiles (ldmatrix rows)
            Assert.DoesNotContain("cp.async", ptx);            // see GemmV3.cs: it would keep the mma operands in local memory
        }
    }

    [Fact]
    public void GemmV2Ptx_Uses16ByteLoads()
    {
        var ptx = Of("gemm_v2").Ptx!;
        Assert.Contains("ld.global.v4.f32", ptx);
        Assert.Contains("ld.shared.v4.f32", ptx);
        Assert.Contains(".maxntid 256, 1, 1", ptx);
    }
}
