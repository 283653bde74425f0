// DPM-Solver++ 2M without a network: for data that is one point c, the exact noise prediction at x = α c + σ z
// is ε = (x − α c)/σ, so every data prediction is c and the solver must follow the exact path
// x_k = α_k c + σ_k z step by step and end exactly at c. Any error in the step coefficients breaks this.
// Plus the DiT program with --sampler dpm++2m (the sampler works for the class-conditional DiT alike).
using BlockDance.Kernels;
using BlockDance.Sampler;
using Xunit;

namespace BlockDance.Tests;

public class DpmSolverTests
{
    sealed class PointMassDenoiser(ComputeDevice dev, float[] c) : IDenoiser, IDisposable
    {
        readonly Tensor eps = Tensor.Allocate(dev, "eps", c.Length);
        public Tensor Denoise(Tensor x, int t, int step)
        {
            double acp = 1;
            var betas = Schedule.BaseBetas();
            for (int i = 0; i <= t; i++) acp *= 1 - betas[i];
            var xs = x.ToHost();
            eps.CopyFromHost(xs.Select((v, i) => (float)((v - Math.Sqrt(acp) * c[i]) / Math.Sqrt(1 - acp))).ToArray());
            return eps;
        }
        public void Dispose() => eps.Dispose();
    }

    [Theory]
    [InlineData(20, Spacing.Linspace)]
    [InlineData(7, Spacing.Linspace)]
    [InlineData(7, Spacing.Even)]      // the solver runs on any schedule's timesteps
    public void PointMassData_FollowsTheExactPath_AndEndsAtIt(int steps, Spacing spacing)
    {
        var dev = TestDevices.Get("cpu");
        int n = 2 * 4 * 3 * 3;
        var c = Tolerance.Random(1, n, 2f);
        var z = Tolerance.Random(2, n, 1.7f);
        var schedule = new Schedule(steps, spacing);
        var dpm = new DpmSolver(schedule);
        using var x = Tensor.FromHost(dev, "x", c.Select((v, i) => (float)(dpm.Alpha(0) * v + dpm.Sigma(0) * z[i])).ToArray(), 2, 4, 3, 3);
        using var den = new PointMassDenoiser(dev, c);
        var sampler = new DiffusionSampler(schedule, SamplerKind.DpmSolver2M);
        sampler.OnStep = (k, _, _) =>
        {
            var expected = c.Select((v, i) => (float)(dpm.Alpha(k + 1) * v + dpm.Sigma(k + 1) * z[i])).ToArray();
            Tolerance.AssertClose(expected, x.ToHost(), 2e-4, 1e-4, $"step {k}");
        };
        sampler.Run(den, x, new SeededNoise(0), 4);
        Tolerance.AssertClose(c, x.ToHost(), 2e-4, 1e-4, "final x");
    }

    [Fact]
    public void DemoDiT_SamplesWithDpmSolver()
    {
        var dir = CliRunner.TempDir();
        var o = Path.Combine(dir, "x.safetensors");
        var r = CliRunner.Run("sample", "--sampler", "dpm++2m", "--steps", "4", "--class", "3", "--device", "cpu", "--out", o);
        Assert.True(r.Code == 0, r.Err + r.Out);
        Assert.Contains("DPM-Solver++ 2M, 4 steps", r.Out);
        using var f = BlockDance.Transformer.IO.SafeTensorsFile.Open(o);
        Assert.All(f.ReadFloat32("sample"), v => Assert.True(float.IsFinite(v)));
    }
}
