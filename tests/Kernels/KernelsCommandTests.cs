// `blockdance kernels` (the harness) and `blockdance ptx` (the static check) as a user runs them.
using Xunit;

namespace BlockDance.Tests;

public class KernelsCommandTests
{
    [Fact]
    public void KernelsGemm_ValidatesAndTimesEachVersion_OnCpu()
    {
        var (code, stdout, err) = CliRunner.Run("kernels", "--op", "gemm", "--version", "v1,small-m", "--device", "cpu",
            "--shapes", "small", "--iters", "1");
        Assert.True(code == 0, stdout + err);
        foreach (var v in new[] { "v1", "small-m" })
            Assert.Contains(stdout.Split('\n'), l => l.StartsWith("gemm") && l.Contains($" {v} ") && l.Contains("ragged 70x72x40") && l.Contains("ok (max err"));
        Assert.Contains("every version matched its reference", stdout);
    }

    [Fact]
    public void Kernels_UnknownVersion_ExitsTwoNamingTheVersions()
    {
        var (code, _, err) = CliRunner.Run("kernels", "--op", "gemm", "--version", "v9", "--device", "cpu");
        Assert.Equal(2, code);
        Assert.Contains("--version: expected all or one of v1, v2, small-m, v3-bf16, v3-fp16 for gemm, found 'v9'", err);
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
            var (code2, stdout, err2) = CliRunner.Run("ptx", "--out", dir, "--kernel", "gemm_v3");
            Assert.True(code2 == 0, stdout + err2);
            Assert.True(File.Exists(Path.Combine(dir, "gemm_v3_bf16.ptx")));
            Assert.Contains("ptx: all 2 kernels passed", stdout);
        }
        finally { Environment.SetEnvironmentVariable("PTXAS", old); }
    }
}
