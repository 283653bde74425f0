// `sample --sampler ddpm --steps 1` gave NaN every time: with one kept step the posterior variance of step 0 is 0
// (log −∞), and the update multiplied 0 (no noise at t = 0) by exp(½·(f·log β + (1 − f)·(−∞))), which is NaN for
// f = (v + 1)/2 ≥ 1. The last DDPM step is the posterior mean alone; with one step that mean is x0 in closed form:
//   ᾱ = 1 − β₀ = 1 − 1e-4,  x' = (x − √(1 − ᾱ)·ε) / √ᾱ.
using BlockDance.Kernels;
using BlockDance.Sampler;
using Xunit;

namespace BlockDance.Tests;

public class DdpmOneStepTests
{
    [SkippableTheory]
    [MemberData(nameof(TestDevices.Kinds), MemberType = typeof(TestDevices))]
    public void OneStepDdpm_IsTheClosedFormX0_ForAnyVarianceChannel(string kind)
    {
        var dev = TestDevices.Get(kind);
        var schedule = new Schedule(1, Spacing.Even);
        Assert.Equal([0], schedule.Timesteps);
        var k = schedule.Coefficients(0);
        Assert.True(float.IsFinite(k.LogPv), $"log posterior variance {k.LogPv}");
        const int b = 1, c = 2, hw = 3;
        float[] x = [0.5f, -1.25f, 2f, 0.1f, -0.3f, 1.7f];
        // eps | v: v = 1, 1.5 and −1 are the values that made the old update NaN (f ≥ 1) or sat at the edge (f = 0)
        float[] o = [0.2f, -0.4f, 0.9f, 1.1f, 0f, -2f, 1f, 1.5f, -1f, 1f, 3f, 0.25f];
        var z = new float[x.Length];
        Array.Fill(z, 7f);   // unused at the last step: a large value shows if noise leaks in
        double abar = 1 - 1e-4;
        var expected = new float[x.Length];
        for (int i = 0; i < x.Length; i++)
        {
            int ch = i / hw, p = i % hw;
            double eps = o[ch * hw + p];
            expected[i] = (float)((x[i] - Math.Sqrt(1 - abar) * eps) / Math.Sqrt(abar));
        }
        var host = (float[])x.Clone();
        DiffusionStep.DdpmReference(host, o, z, b, c, hw, 2 * c, k);
        using var xd = Tensor.FromHost(dev, "x", x, x.Length);
        using var od = Tensor.FromHost(dev, "o", o, o.Length);
        using var zd = Tensor.FromHost(dev, "z", z, z.Length);
        DiffusionStep.Ddpm(dev, xd.View, od.View, zd.View, b, c, hw, 2 * c, k);
        var got = xd.ToHost();
        for (int i = 0; i < x.Length; i++)
        {
            Assert.True(Math.Abs(host[i] - expected[i]) <= 1e-5f * (1 + Math.Abs(expected[i])), $"reference [{i}]: {host[i]} vs {expected[i]}");
            Assert.True(Math.Abs(got[i] - expected[i]) <= 1e-5f * (1 + Math.Abs(expected[i])), $"kernel [{i}]: {got[i]} vs {expected[i]}");
        }
    }

    [Fact]
    public void SampleDdpmOneStep_WritesAFiniteImage_Exit0()
    {
        var dir = CliRunner.TempDir();
        var png = Path.Combine(dir, "x.png");
        var (code, _, err) = CliRunner.Run("sample", "--model", HostileFiles.DemoModel, "--device", "cpu", "--sampler", "ddpm", "--steps", "1",
            "--class", "3", "--cfg", "1", "--out", png);
        Assert.True(code == 0, err);
        Assert.True(File.Exists(png));
    }
}
