// The host backend's kernels (`--device cpu`) beyond the per-op reference tests (KernelKinds rows elsewhere):
//   - attention at shapes that cross its query blocks (32) and key blocks (64), the VAE's head dim 512 and an
//     odd one, against Attention.Reference (fp32 sums over ≤ 130 keys vs float64: 1e-5 + 1e-5·|ref|, as v1);
//   - the same bytes for 1, 2 and 3 threads (work items fixed by the shape, ComputeDevice.Create(threads:));
//   - the same bytes for a sample alone and inside a batch;
//   - the elementwise step ops (seeded noise, DDIM/DDPM, guidance, timestep features, unpatchify) give the
//     ILGPU kernels' bytes: the host version evaluates the same formula.
using BlockDance.Kernels;
using ILGPU.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class HostKernelTests(ITestOutputHelper output)
{
    static Tensor Up(ComputeDevice dev, float[] a) => Tensor.FromHost(dev, "t", a, a.Length);

    static float[] Attend(ComputeDevice dev, float[] qkv, int n, int t, int heads, int hd)
    {
        using var tq = Up(dev, qkv); using var to = Tensor.Allocate(dev, "o", n * t * heads * hd);
        Attention.Run(dev, tq.View, to.View, n, t, heads, hd, 1f / MathF.Sqrt(hd));
        return to.ToHost();
    }

    [SkippableTheory]
    [InlineData(0, 1, 70, 2, 72)]    // 3 query blocks (32 + 32 + 6), 2 key blocks (64 + 6)
    [InlineData(1, 1, 130, 1, 24)]   // demo head dim, 3 key blocks
    [InlineData(2, 1, 33, 1, 512)]   // the VAE's head: 4 × 32 accumulator lanes per row
    [InlineData(3, 2, 5, 3, 5)]      // head dim not a multiple of 8, fewer keys than one 16-key tile
    public void HostAttention_MatchesReference_AcrossBlocks(int seed, int n, int t, int heads, int hd)
    {
        var dev = TestDevices.Get("cpu");
        var qkv = Tolerance.Random(seed, 3 * n * t * heads * hd, 2f);
        var expected = new float[n * t * heads * hd];
        Attention.Reference(qkv, expected, n, t, heads, hd, 1f / MathF.Sqrt(hd));
        Assert.Equal(Attention.HostKernel, Attention.KernelName(dev, hd));
        Tolerance.AssertClose(expected, Attend(dev, qkv, n, t, heads, hd), 1e-5, 1e-5, $"host attention t{t} h{heads} hd{hd}", output);
    }

    [SkippableFact]
    public void HostAttention_SampleAloneEqualsSampleInBatch_BitForBit()
    {
        var dev = TestDevices.Get("cpu");
        int t = 49, heads = 4, hd = 24, per = 3 * t * heads * hd;
        var batch = Tolerance.Random(5, 3L * per, 2f);
        var all = Attend(dev, batch, 3, t, heads, hd);
        var alone = Attend(dev, batch[per..(2 * per)], 1, t, heads, hd);
        Assert.Equal(alone, all[(t * heads * hd)..(2 * t * heads * hd)]);
    }

    [SkippableFact]
    public void HostKernels_GiveTheSameBytes_ForOneTwoAndThreeThreads()
    {
        float[]? first = null;
        for (int threads = 1; threads <= 3; threads++)
        {
            using var dev = ComputeDevice.Create(DeviceKind.Cpu, threads: threads);
            Assert.Equal(threads, dev.Threads);
            var got = new List<float>();
            got.AddRange(Attend(dev, Tolerance.Random(1, 3 * 2 * 70 * 2 * 72, 2f), 2, 70, 2, 72));

            int rows = 37, d = 1152;
            using var x = Up(dev, Tolerance.Random(2, rows * d, 3f)); using var mod = Up(dev, Tolerance.Random(3, 2 * 6 * d));
            using var y = Tensor.Allocate(dev, "y", rows * d);
            LayerNormModulate.Run(dev, x.View, mod.View, y.View, rows, d, 19, 6 * d, 0, d);
            got.AddRange(y.ToHost());

            int channels = 64, hw = 300, groups = 32;
            using var gx = Up(dev, Tolerance.Random(4, 2 * channels * hw)); using var gg = Up(dev, Tolerance.Random(5, channels));
            using var gb = Up(dev, Tolerance.Random(6, channels)); using var gy = Tensor.Allocate(dev, "gy", 2 * channels * hw);
            using var scratch = Tensor.Allocate(dev, "scratch", (int)GroupNorm.ScratchLength(2, channels, hw, groups));
            GroupNorm.Run(dev, gx.View, gg.View, gb.View, gy.View, scratch.View, 2, channels, hw, groups, GroupNorm.DefaultEps, silu: true);
            got.AddRange(gy.ToHost());

            using var fa = Up(dev, Tolerance.Random(7, 50_000)); using var fb = Up(dev, Tolerance.Random(8, 50_000));
            using var results = dev.Accelerator.Allocate1D(new double[FeatureSimilarity.Stats]);
            using var fs = new FeatureSimilarity.Scratch(dev);
            FeatureSimilarity.Run(dev, fa.View, fb.View, 50_000, results.View, 0, fs);
            var sums = new double[FeatureSimilarity.Stats];
            results.View.CopyToCPU(sums);
            got.AddRange(sums.Select(v => (float)v));
            got.AddRange(sums.Select(v => (float)(v - (float)v)));   // the float64 bits below float32

            if (first is null) first = got.ToArray();
            else Assert.Equal(first, got.ToArray());
            output.WriteLine($"{threads} thread(s): {got.Count} values");
        }
    }

    [SkippableFact]
    public void HostStepOps_GiveTheIlgpuKernelsBytes()
    {
        var host = TestDevices.Get("cpu");
        var sim = TestDevices.Get("sim");
        float[] Each(ComputeDevice dev)
        {
            int b = 3, c = 4, hw = 64, cOut = 8;
            var got = new List<float>();
            using var z = Tensor.Allocate(dev, "z", 40_000);
            GaussianNoise.Run(dev, z.View, 1234, 7, offset: 99);
            got.AddRange(z.ToHost());

            using var o = Up(dev, Tolerance.Random(1, 2 * b * cOut * hw));
            Guidance.Run(dev, o.View, b, cOut, hw, 3, 4f);
            got.AddRange(o.ToHost());
            var k = new StepCoefficients(1.1f, 0.3f, 0.9f, 0.2f, 0.05f, 0.7f, 0.25f, -3f, -4f, 1f);
            using var x = Up(dev, Tolerance.Random(2, b * c * hw));
            DiffusionStep.Ddim(dev, x.View, o.View, z.View.SubView(0, b * c * hw), b, c, hw, cOut, k);
            DiffusionStep.Ddpm(dev, x.View, o.View, z.View.SubView(0, b * c * hw), b, c, hw, cOut, k);
            got.AddRange(x.ToHost());

            using var f = Up(dev, TimestepEmbedding.Frequencies());
            using var e = Tensor.Allocate(dev, "e", 3 * TimestepEmbedding.Dim);
            TimestepEmbedding.RunUniform(dev, 937f, f.View, e.View, 3);
            got.AddRange(e.ToHost());

            using var tok = Up(dev, Tolerance.Random(3, 2 * 3 * 8 * 8));
            using var img = Tensor.Allocate(dev, "img", 2 * 3 * 8 * 8);
            Unpatchify.Run(dev, tok.View, img.View, 2, 3, 8, 8, 2);
            got.AddRange(img.ToHost());
            return got.ToArray();
        }
        Assert.Equal(Each(sim), Each(host));
        Assert.True(host.Kernels.LaunchesOf("gaussian_noise_host") > 0);
    }
}
