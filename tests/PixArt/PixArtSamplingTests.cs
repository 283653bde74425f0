// PixArt-α sampling: the DPM-Solver++ (2M) trajectory against the PyTorch reference (pixart_traj.safetensors:
// 20 steps, CFG 4.5, negative captions, lower-order first and final steps), the sampler's timesteps, and
// BlockDance on PixArt through the unchanged cache hook (N = 1 is bit-identical to no cache; the paper's
// setting N = 2, window 40–95 % skips blocks and the accounting counts them).
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class PixArtSamplingTests(ITestOutputHelper output)
{
    static string Traj => CliRunner.Fixture("pixart_traj.safetensors");

    [Fact]
    public void DpmSolverTimesteps_20Steps_AreDiffusersLinspace()
    {
        var t = DpmSolver.LinspaceTimesteps(20);
        Assert.Equal(new[] { 999, 949, 899, 849, 799, 749, 699, 649, 599, 549, 500, 450, 400, 350, 300, 250, 200, 150, 100, 50 }, t);
        var dpm = new DpmSolver(20);
        Assert.True(dpm.FirstOrder(0) && dpm.FirstOrder(19) && !dpm.FirstOrder(1) && !dpm.FirstOrder(18));
        var last = dpm.Coefficients(19);                     // σ_end = 0, α_end = 1: x ← x0
        Assert.Equal((0f, 1f, 0f), (last.A, last.B, last.D));
        Assert.Equal(0.00635, new DpmSolver(20).Coefficients(0).Alpha, 5);
    }

    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void DpmSolver2M_Cfg45_MatchesPyTorchTrajectory(string kind)
    {
        var dev = TestDevices.Get(kind);
        using var model = PixArt.Load(dev, CliRunner.Fixture("pixart_tiny"));
        using var f = SafeTensorsFile.Open(Traj);
        var prompts = PromptEmbeds.Load(Traj, null, model.PixArtConfig.CaptionChannels);
        var traj = f.ReadFloat32("trajectory");
        int per = traj.Length / 21;
        using var x = Tensor.FromHost(dev, "x", f.ReadFloat32("noise"), 1, 4, 8, 8);
        using var policy = new NoCache();
        using var den = new PixArtDenoiser(model, prompts, 4.5f, CfgChannels.All, policy, 20);
        var sampler = new DiffusionSampler(new Schedule(20, Spacing.Even), SamplerKind.DpmSolver2M);
        double worst = 0;
        sampler.OnStep = (step, k, _) =>
        {
            var expected = traj[((step + 1) * per)..((step + 2) * per)];
            double scale = expected.Max(MathF.Abs);
            double err = Tolerance.MaxAbsError(expected, x.ToHost()) / scale;
            worst = Math.Max(worst, err);
            Assert.True(err < 1e-4, $"step {step}: max error {err:E2} of the step's scale {scale:G4}");
        };
        sampler.Run(den, x, new SeededNoise(0), model.PixArtConfig.OutChannels);
        output.WriteLine($"DPM-Solver++ 2M, 20 steps: worst error {worst:E2} relative to the step's max |x|");
    }

    static (float[] Samples, SamplingResult R) Sample(ComputeDevice dev, Func<ICachePolicy> policy)
    {
        using var model = PixArt.Load(dev, CliRunner.Fixture("pixart_tiny"));
        var prompts = PromptEmbeds.Load(Traj, null, model.PixArtConfig.CaptionChannels);
        var r = PixArtSession.Run(model, prompts, PixArtSession.Defaults(1) with { Seed = 3, Policy = policy });
        return (r.Samples, r);
    }

    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void BlockDance_OnPixArt_N1BitIdentical_N2SkipsAndCounts(string kind)
    {
        var dev = TestDevices.Get(kind);
        var (plain, r0) = Sample(dev, () => new NoCache());
        var (n1, r1) = Sample(dev, () => new BlockDancePolicy(new BlockDanceConfig(N: 1, WindowStart: 0.4, WindowEnd: 0.95)));
        Assert.Equal(plain, n1);
        Assert.Equal(40, r1.BlocksComputed);                         // 20 steps × 2 blocks
        // The paper's PixArt setting: N = 2, window [0.40, 0.95), boundary ⌊0.75·depth⌋ − 1 = 0 for depth 2.
        // Steps 8..18 are in the window: caches at 8, 10, 12, 14, 16, 18, reuses at 9, 11, 13, 15, 17.
        var (n2, r2) = Sample(dev, () => new BlockDancePolicy(new BlockDanceConfig(N: 2, WindowStart: 0.4, WindowEnd: 0.95)));
        Assert.Equal(new[] { 9, 11, 13, 15, 17 }, r2.ReusedStepsPerBatch[0]);
        Assert.Equal(40 - 5 * 1, r2.BlocksComputed);
        Assert.True(r2.FlopsComputed < r0.FlopsComputed);
        Assert.NotEqual(plain, n2);
        Assert.All(n2, v => Assert.True(float.IsFinite(v)));
        output.WriteLine($"N=2: {r2.BlocksComputed} of {r2.BlocksTotal} blocks; max |Δ| vs uncached {Tolerance.MaxAbsError(plain, n2):E2}");
    }
}
