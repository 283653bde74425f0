// `blockdance kernels` (the harness) and `blockdance ptx` (the static check) as a user runs them.
using BlockDance.Kernels.Harness;
using Xunit;

namespace BlockDance.Tests;

public class KernelsCommandTests
{
    // The harness op on the tests' shared CPU devices (a fresh accelerator per test is slow in the shared
    // test process); the command around it is the loop KernelsCommand runs. small-M is covered by
    // GemmVersionTests (on the 1-warp CPU device its one-warp groups make the harness shapes slow).
    [SkippableTheory]
    [InlineData("cpu", "v1")]
    [InlineData("cpu-tiled", "v2")]
    public void GemmOp_ValidatesVersionAgainstReference_OnSmallShapes(string kind, string version)
    {
        var dev = TestDevices.Get(kind);
        var op = new GemmOp();
        Assert.Contains(KernelOps.All, o => o.Name == "gemm");
        Assert.True(op.Supports(dev, version));
        foreach (var shape in op.Shapes("small"))
        {
            using var trial = op.Prepare(dev, version, shape);
            Assert.True(trial.Validation.Passed, $"{version} {shape.Label}: max err {trial.Validation.MaxAbsError:E2}; {string.Join("; ", trial.Validation.FirstMismatches)}");
            trial.Launch();   // the timed launch runs again on the same buffers
        }
    }

    [Fact]
    public void GemmOp_XlShapes_AreDiTXL2()
    {
        var labels = new GemmOp().Shapes("xl").Select(s => s.Label).ToArray();
        Assert.Equal(["qkv 4096x3456x1152", "proj 4096x1152x1152", "fc1 4096x4608x1152", "fc2 4096x1152x4608", "adaLN 16x6912x1152"], labels);
    }

    [Fact]
    public void Kernels_UnknownVersion_ExitsTwoNamingTheVersions()
    {
        var (code, _, err) = CliRunner.Run("kernels", "--op", "gemm", "--version", "v9", "--device", "cpu");
        Assert.Equal(2, code);
        Assert.Contains("--version: expected all or one of v1, v2, small-m, v3-bf16, v3-fp16, host for gemm, found 'v9'", err);
    }

    [Fact]
    public void Ptx_WithoutPtxas_WritesPtxOfEveryKernelAndPasses()
    {
        var dir = CliRunner.TempDir();
        var missing = Path.Combine(dir, "no-ptxas");
        var (code, _, err) = CliRunner.Run("ptx", "--out", dir, "--ptxas", missing);
        Assert.Equal(2, code);
        Assert.Contains("--ptxas: expected the path of NVIDIA's ptxas", err);
        var old = Environment.GetEnvironmentVariable("PTXAS");
        try
        {
            // Only the PTX half: point $PTXAS nowhere valid is an error too, so run the gemm kernels with ptxas
            // found or not — the PTX files must be written either way.
            Environment.SetEnvironmentVariable("PTXAS", null);
            var (code2, stdout, err2) = CliRunner.Run("ptx", "--out", dir, "--kernel", "gemm_small_m");
            Assert.True(code2 == 0, stdout + err2);
            Assert.True(File.Exists(Path.Combine(dir, "gemm_small_m.ptx")));
            Assert.Contains("ptx: all 1 kernels passed", stdout);
        }
        finally { Environment.SetEnvironmentVariable("PTXAS", old); }
    }
}
