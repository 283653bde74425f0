// Open-Sora 1.0 sampling on the tiny STDiT against the PyTorch reference (stdit_traj.safetensors, 10 respaced steps,
// CFG 7.0 [cond, uncond] on ε channels 0..2, the null caption y_embedding with the prompt's mask): IDDPM with the
// fixture's step noise and DDIM (η 0), every step within 1e-4 of the step's max |x|, each step from the reference state
// (random weights make x large and the trajectory chaotic: float32 rounding would grow step over step);
// BlockDance on STDiT: N = 1 is bit-identical to no cache, N = 2 with the boundary option skips blocks 0..b on the
// rule's steps (the paper's 0..20 of 28; here b = 1 of 3) and the accounting counts them.
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampling;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class STDiTSamplingTests(ITestOutputHelper output)
{
    static string Traj => CliRunner.Fixture("stdit_traj.safetensors");

    sealed class FixtureNoise(float[] all, int steps) : INoiseSource
    {
        public void Fill(Tensor z, int stream) => z.CopyFromHost(all[((stream - 1) * (all.Length / steps))..(stream * (all.Length / steps))]);
    }

    static PromptEmbeds Prompts(STDiT model)
    {
        var p = PromptEmbeds.Load(Traj, null, model.VideoConfig.CaptionChannels).Prompts;
        return new PromptEmbeds(p, STDiTPipeline.NullCaptions(p, model.NullCaption, model.VideoConfig));
    }

    [SkippableTheory]
    [InlineData("cpu", "iddpm")]
    [InlineData("cpu", "ddim")]
    [InlineData("cuda", "iddpm")]
    public void Sampler_Cfg7_MatchesPyTorchTrajectory(string kind, string name)
    {
        var dev = TestDevices.Get(kind);
        using var model = STDiT.Load(dev, CliRunner.Fixture("stdit_tiny"));
        using var f = SafeTensorsFile.Open(Traj);
        var traj = f.ReadFloat32(name);
        const int steps = 10;
        int per = traj.Length / (steps + 1);
        var c = model.VideoConfig;
        using var x = Tensor.FromHost(dev, "x", f.ReadFloat32("noise"), 1, c.InChannels, c.Frames, c.LatentSize, c.LatentSize);
        using var policy = new NoCache();
        using var den = new GuidedDenoiser(model, new Captions(Prompts(model)), 7f, CfgChannels.Official, policy, steps);
        var sampler = new DiffusionSampler(new Schedule(steps, Spacing.Even), name == "iddpm" ? SamplerKind.Ddpm : SamplerKind.Ddim);
        double worst = 0;
        sampler.OnStep = (step, k, _) =>
        {
            var expected = traj[((step + 1) * per)..((step + 2) * per)];
            double scale = expected.Max(MathF.Abs);
            double err = Tolerance.MaxAbsError(expected, x.ToHost()) / scale;
            worst = Math.Max(worst, err);
            Assert.True(err < 1e-4, $"{name} step {step}: max error {err:E2} of the step's scale {scale:G4}");
            x.CopyFromHost(expected);   // the next step starts from the reference state (random weights make the dynamics chaotic)
        };
        sampler.Run(den, x, new FixtureNoise(f.ReadFloat32("step_noise"), steps), c.OutChannels);
        output.WriteLine($"{name}, {steps} steps, CFG 7: worst error {worst:E2} relative to the step's max |x|");
    }

    static SamplingResult Sample(ComputeDevice dev, Func<ICachePolicy> policy)
    {
        using var model = STDiT.Load(dev, CliRunner.Fixture("stdit_tiny"));
        return SamplingSession.Run(model, new Captions(Prompts(model)), STDiTPipeline.DefaultOptions with { Steps = 10, Seed = 3, Policy = policy });
    }

    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void BlockDance_OnSTDiT_N1BitIdentical_N2SkipsBlocksToBoundary(string kind)
    {
        var dev = TestDevices.Get(kind);
        var r0 = Sample(dev, () => new NoCache());
        var r1 = Sample(dev, () => new BlockDancePolicy(new BlockDanceConfig(N: 1)));
        Assert.Equal(r0.Samples, r1.Samples);
        Assert.Equal(30, r1.BlocksComputed);                         // 10 steps × 3 blocks
        // N = 2, window [0.25, 0.95), boundary 1 (blocks 0..1 reused, as 0..20 of 28): steps 3..9 are in the window,
        // caches at 3, 5, 7, 9 and reuses at 4, 6, 8, each skipping 2 blocks.
        var r2 = Sample(dev, () => new BlockDancePolicy(new BlockDanceConfig(N: 2, Boundary: 1)));
        Assert.Equal(new[] { 4, 6, 8 }, r2.ReusedStepsPerBatch[0]);
        Assert.Equal(30 - 3 * 2, r2.BlocksComputed);
        Assert.True(r2.FlopsComputed < r0.FlopsComputed);
        Assert.NotEqual(r0.Samples, r2.Samples);
        Assert.All(r2.Samples, v => Assert.True(float.IsFinite(v)));
        Assert.Equal(new[] { 1, 4, 3, 8, 8 }, r2.Shape);
        output.WriteLine($"N=2: {r2.BlocksComputed} of {r2.BlocksTotal} blocks; max |Δ| vs uncached {Tolerance.MaxAbsError(r0.Samples, r2.Samples):E2}");
    }
}
