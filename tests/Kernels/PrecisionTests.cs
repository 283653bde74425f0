// --precision bf16/fp16 end to end on the CPU accelerator: the whole fixture model (and the sampling
// trajectories) with every Linear layer's operands rounded to 16 bits — the arithmetic GEMM v3 does on
// tensor cores — checked against the fp32 PyTorch fixtures with the 16-bit tolerances of FixtureChecks
// (Bf16Factor/Fp16Factor × the fp32 ones; the reasoning is stated there). Each precision also has to
// differ from fp32 by more than fp32's own noise, so the test fails if the 16-bit path silently ran fp32.
using BlockDance.Kernels;
using BlockDance.Sampler.SelfTest;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class PrecisionTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData(Precision.Bf16)]
    [InlineData(Precision.Fp16)]
    public void SixteenBitModel_MatchesFp32Fixtures_WithinStatedTolerance(Precision p)
    {
        using var dev = ComputeDevice.Create(DeviceKind.Cpu);
        dev.Precision = p;
        var dir = FixtureChecks.FindFixtures(null);
        var results = FixtureChecks.All(dev, dir).ToList();
        foreach (var r in results) output.WriteLine(r.ToString());
        Assert.All(results, r => Assert.True(r.Pass, r.ToString()));
        // Not fp32 in disguise: the model tensors move well beyond fp32's summation-order noise (~1e-6).
        var model = results.Where(r => r.Name.StartsWith("dit_p2 block")).Max(r => r.MaxAbsError);
        Assert.True(model > 1e-5, $"{p}: max block error {model:E2} — looks like the fp32 path ran");
    }
}
