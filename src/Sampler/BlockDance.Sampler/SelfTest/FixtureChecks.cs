// Comparisons of the engine against the PyTorch reference fixtures in tests/fixtures
// (written by tools/reference/make_fixtures.py). Used by `blockdance selftest` and by the tests,
// so a published binary can check a GPU machine exactly as CI checks the CPU accelerator.
//
// Tolerances (fp32):
//   model tensors: max abs error ≤ 1e-4 (activations are O(1); float32 PyTorch vs float32 ILGPU
//                  kernels differ only in summation order, ~1e-6 typical)
//   trajectories:  max abs error ≤ 1e-4 · max|ref| (the untrained fixture model drives samples to
//                  |x| ~ 10³, so the error is relative to the trajectory's scale)
// With 16-bit GEMM operands (--precision bf16|fp16) both tolerances are Bf16Factor/Fp16Factor times
// larger: see Bf16Factor for the reasoning and the measured errors.
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;
using BlockDance.Sampler.Cli;
using BlockDance.Transformer.Vae;

namespace BlockDance.Sampler.SelfTest;

public sealed record CheckResult(string Name, double MaxAbsError, double Tolerance)
{
    public bool Pass => MaxAbsError <= Tolerance;
    public override string ToString() => $"{Name,-40} max abs error {MaxAbsError:E2}  (tol {Tolerance:E0})  {(Pass ? "PASS" : "FAIL")}";
}

public static class FixtureChecks
{
    public const double ModelTolerance = 1e-4;
    public const double TrajectoryRelTolerance = 1e-4;

    /// <summary>16-bit GEMM operands: tolerance = 32·u (absolute for the O(1) model tensors, relative for the
    /// trajectories), u = unit roundoff of the operand format (bf16 2⁻⁸, fp16 2⁻¹¹). Every Linear rounds both
    /// operands by up to u relative; over a few blocks and the CFG combination (guided = u + s·(c − u), s = 4,
    /// amplifies an error up to ~9×) the outputs move by a few u. Measured on the CPU accelerator
    /// (tests/Kernels/PrecisionTests.cs, fixture models): bf16 max 1.4e-2 on block outputs, 6.3e-2 on CFG
    /// outputs (tol 0.125); fp16 1.7e-3 and 6.7e-3 (tol 0.0156) — fp16's errors are 1/8 of bf16's, as u predicts.</summary>
    public const double Bf16Factor = 32 * (1.0 / 256) / 1e-4;
    public const double Fp16Factor = 32 * (1.0 / 2048) / 1e-4;

    static double Scale(ComputeDevice dev) => dev.Precision switch
    {
        Precision.Bf16 => Bf16Factor,
        Precision.Fp16 => Fp16Factor,
        _ => 1,
    };

    public static string FindFixtures(string? given)
    {
        if (given != null)
            return Directory.Exists(given) ? given : throw new UsageException($"--fixtures {given}: folder not found");
        foreach (var root in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(root); d != null; d = d.Parent)
            {
                foreach (var sub in new[] { "tests/fixtures", "fixtures" })
                {
                    var p = Path.Combine(d.FullName, sub);
                    if (File.Exists(Path.Combine(p, "dit_p2.ref.safetensors"))) return p;
                }
            }
        throw new UsageException("reference fixtures not found (expected tests/fixtures/dit_p2.ref.safetensors); pass --fixtures DIR");
    }

    public static IEnumerable<CheckResult> All(ComputeDevice dev, string dir)
    {
        foreach (var r in Model(dev, dir, "dit_p2")) yield return r;
        foreach (var r in Model(dev, dir, "dit_p4")) yield return r;
        foreach (var r in Trajectories(dev, dir)) yield return r;
        var (vaeErr, _) = VaeFixtureCheck.Compare(dev, dir);
        yield return new CheckResult("vae decoder image [0,255]", vaeErr, VaeImageTolerance);
        var (layoutErr, _) = LayoutFixtureCheck.Compare(dev, dir);
        yield return new CheckResult("diffusers layout = official (dit_p2)", layoutErr, 0);
        yield return new CheckResult("t5 encoder last_hidden_state (t5_tiny)", BlockDance.Transformer.T5.T5FixtureCheck.Compare(dev, dir), ModelTolerance);
    }

    /// <summary>The VAE's output is on the [0, 255] scale after ~30 convolutions: 1e-2 there is 4e-5 of the range.</summary>
    public const double VaeImageTolerance = 1e-2;

    static double MaxErr(float[] expected, float[] got) => Check.MaxAbsError(expected, got);

    static int[] Ints(float[] a) => a.Select(v => (int)v).ToArray();
    static int[] Shape(SafeTensorsFile f, string name) => f.Get(name).Shape.Select(x => (int)x).ToArray();

    public static DiT LoadModel(ComputeDevice dev, string dir, string name) =>
        ModelLoader.Load(dev, Path.Combine(dir, $"{name}.weights.safetensors"));

    /// <summary>c, every block's output, the final output, the resumed-from-block-0 output and both CFG rules.</summary>
    public static IEnumerable<CheckResult> Model(ComputeDevice dev, string dir, string name)
    {
        using var model = LoadModel(dev, dir, name);
        using var refs = SafeTensorsFile.Open(Path.Combine(dir, $"{name}.ref.safetensors"));
        var cfg = model.Config;
        var results = new List<CheckResult>();

        using var x = Tensor.FromHost(dev, "x", refs.ReadFloat32("x"), Shape(refs, "x"));
        var t = refs.ReadFloat32("t");
        var y = Ints(refs.ReadFloat32("y"));
        int n = t.Length;
        using var outT = Tensor.Allocate(dev, "out", n, cfg.OutChannels, cfg.InputSize, cfg.InputSize);
        var blockOut = new float[cfg.Depth][];
        model.OnBlockOutput = (i, f) => blockOut[i] = f.ToHost();
        model.Forward(x, t, y, outT);
        model.OnBlockOutput = null;
        results.Add(new($"{name} c (condition)", MaxErr(refs.ReadFloat32("c"), model.CurrentWorkspace!.C.ToHost()[..(n * cfg.Hidden)]), ModelTolerance * Scale(dev)));
        for (int i = 0; i < cfg.Depth; i++)
            results.Add(new($"{name} block.{i}", MaxErr(refs.ReadFloat32($"block.{i}"), blockOut[i]), ModelTolerance * Scale(dev)));
        results.Add(new($"{name} final", MaxErr(refs.ReadFloat32("final"), outT.ToHost()), ModelTolerance * Scale(dev)));

        // The cache path: start at block 1 from the reference block.0 output (a BlockDance reuse step).
        using var feature = Tensor.FromHost(dev, "block0", refs.ReadFloat32("block.0"), n, cfg.Tokens, cfg.Hidden);
        model.Embed(null, t, y);                                                   // condition only
        model.Final(model.RunBlocks(1, cfg.Depth, feature), outT);
        results.Add(new($"{name} resume from block.0", MaxErr(refs.ReadFloat32("resume.final"), outT.ToHost()), ModelTolerance * Scale(dev)));

        // forward_with_cfg, official (first 3 channels) and all-channel guidance.
        var cx = refs.ReadFloat32("cfg.x");
        var ct = refs.ReadFloat32("cfg.t");
        var cy = Ints(refs.ReadFloat32("cfg.y"));
        float scale = refs.ReadFloat32("cfg.scale")[0];
        int m = ct.Length, hw = cfg.InputSize * cfg.InputSize;
        using var cxT = Tensor.FromHost(dev, "cfg.x", cx, Shape(refs, "cfg.x"));
        using var cOut = Tensor.Allocate(dev, "cfg.out", m, cfg.OutChannels, cfg.InputSize, cfg.InputSize);
        foreach (var (key, guided) in new[] { ("cfg.out", Math.Min(Guidance.OfficialChannels, cfg.InChannels)), ("cfg_all.out", cfg.InChannels) })
        {
            model.Forward(cxT, ct, cy, cOut);
            Guidance.Run(dev, cOut.View, m / 2, cfg.OutChannels, hw, guided, scale);
            results.Add(new($"{name} {key} (cfg {guided} ch)", MaxErr(refs.ReadFloat32(key), cOut.ToHost()), ModelTolerance * Scale(dev)));
        }
        return results;
    }

    /// <summary>DDIM (even and stride spacing) and DDPM 10-step CFG trajectories of the dit_p2 model.</summary>
    public static IEnumerable<CheckResult> Trajectories(ComputeDevice dev, string dir)
    {
        using var model = LoadModel(dev, dir, "dit_p2");
        using var refs = SafeTensorsFile.Open(Path.Combine(dir, "traj.safetensors"));
        var results = new List<CheckResult>();
        int[] labels = [3, 7];

        foreach (var (prefix, kind, spacing) in new[] { ("ddim", SamplerKind.Ddim, Spacing.Even), ("ddpm", SamplerKind.Ddpm, Spacing.Even), ("ddim_stride", SamplerKind.Ddim, Spacing.Stride) })
        {
            var schedule = new Schedule(10, spacing);
            var expectedTs = Ints(refs.ReadFloat32($"{prefix}.timesteps"));
            results.Add(new($"traj {prefix} timesteps", expectedTs.SequenceEqual(schedule.Timesteps) ? 0 : double.PositiveInfinity, 0));
            var noiseKey = prefix == "ddim_stride" ? "ddim.noise" : $"{prefix}.noise";
            using var x = Tensor.FromHost(dev, "x", refs.ReadFloat32(noiseKey), Shape(refs, noiseKey));
            using var den = new GuidedDenoiser(model, new ClassLabels(labels), 4f, CfgChannels.Official, new NoCache(), 10);
            var sampler = new DiffusionSampler(schedule, kind);
            double worst = 0, scaleMax = 0;
            sampler.OnStep = (step, k, _) =>
            {
                var key = $"{prefix}.x.{step}";
                if (!refs.Contains(key)) return;
                var expected = refs.ReadFloat32(key);
                scaleMax = Math.Max(scaleMax, expected.Max(Math.Abs));
                worst = Math.Max(worst, MaxErr(expected, x.ToHost()) / Math.Max(1, expected.Max(Math.Abs)));
            };
            INoiseSource noise = kind == SamplerKind.Ddpm ? new FixtureNoise(refs) : new SeededNoise(0);
            sampler.Run(den, x, noise, model.Config.OutChannels);
            results.Add(new($"traj {prefix} 10 steps (rel. to max|x|≈{scaleMax:F0})", worst, TrajectoryRelTolerance * Scale(dev)));
        }
        return results;
    }

    /// <summary>The per-step DDPM noise stored in the fixture (ddpm.z.K for step K).</summary>
    sealed class FixtureNoise(SafeTensorsFile refs) : INoiseSource
    {
        public void Fill(Tensor z, int stream) => z.CopyFromHost(refs.ReadFloat32($"ddpm.z.{stream - 1}"));
    }
}
