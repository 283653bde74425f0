// Each kernel against its plain reference on random inputs, on every available backend.
// Tolerances: float32 kernels vs float64-accumulating references; errors grow with the
// reduction length K, so atol/rtol are 1e-5 scaled for K ≤ 300 and inputs of O(1).
using BlockDance.Kernels;
using ILGPU.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class KernelTests(ITestOutputHelper output)
{
    static Tensor Up(ComputeDevice dev, float[] a) => Tensor.FromHost(dev, "t", a, a.Length);

    /// <summary>GEMM shapes × KernelKinds: edge tiles everywhere, full 4×4 tiles (v1), K not a multiple of 4.</summary>
    public static IEnumerable<object[]> GemmRows =>
        from kind in TestDevices.KernelKinds
        from shape in new[] { (0, 7, 13, 19), (1, 16, 24, 64), (2, 33, 9, 72), (3, 8, 12, 5) }
        select new object[] { kind[0], shape.Item1, shape.Item2, shape.Item3, shape.Item4 };

    [SkippableTheory]
    [MemberData(nameof(GemmRows))]
    [InlineData("cuda", 1, 64, 96, 128)]
    public void Gemm_MatchesReference_AllEpilogues(string kind, int seed, int m, int n, int k)
    {
        var dev = TestDevices.Get(kind);
        var x = Tolerance.Random(seed, (long)m * k); var w = Tolerance.Random(seed + 1, (long)n * k, 0.3f);
        var b = Tolerance.Random(seed + 2, n); var res = Tolerance.Random(seed + 3, (long)m * n);
        int rowsPerSample = Math.Max(1, m / 3), samples = (m + rowsPerSample - 1) / rowsPerSample, gateStride = 2 * n + 3;
        var gate = Tolerance.Random(seed + 4, (long)samples * gateStride);
        using var tx = Up(dev, x); using var tw = Up(dev, w); using var tb = Up(dev, b);
        using var tres = Up(dev, res); using var tgate = Up(dev, gate);
        using var ty = Tensor.Allocate(dev, "y", m * n);
        var pre = new float[m * n];
        Gemm.Reference(x, w, b, pre, m, n, k, Epilogue.None, res, gate, rowsPerSample, gateStride, n + 1);
        double geluError = Activations.GeluTanhError(dev, pre.Max(MathF.Abs)); // tanh.approx.f32 on CUDA
        foreach (var ep in Enum.GetValues<Epilogue>())
        {
            var expected = new float[m * n];
            Gemm.Reference(x, w, b, expected, m, n, k, ep, res, gate, rowsPerSample, gateStride, n + 1);
            Gemm.Run(dev, tx.View, tw.View, tb.View, ty.View, m, n, k, ep, tres.View, new GateSpec(tgate.View, rowsPerSample, gateStride, n + 1));
            Tolerance.AssertClose(expected, ty.ToHost(), 1e-5 + (ep == Epilogue.Gelu ? geluError : 0), 1e-5, $"gemm {m}x{n}x{k} {ep}", output);
        }
    }

    [SkippableTheory]
    [InlineData("sim", 0, 2, 5, 16)]
    [InlineData("cpu", 0, 2, 5, 16)]
    [InlineData("sim", 1, 3, 4, 72)]
    [InlineData("cpu", 1, 3, 4, 72)]
    [InlineData("cuda", 0, 2, 5, 16)]
    public void LayerNormModulate_MatchesReference(string kind, int seed, int n, int t, int d)
    {
        var dev = TestDevices.Get(kind);
        var x = Tolerance.Random(seed, n * t * d, 3f);
        for (int i = 0; i < x.Length; i++) x[i] += 2f; // non-zero mean
        var mod = Tolerance.Random(seed + 1, n * 6 * d);
        using var tx = Up(dev, x); using var tm = Up(dev, mod); using var ty = Tensor.Allocate(dev, "y", n * t * d);
        var expected = new float[n * t * d];
        LayerNormModulate.Reference(x, mod, expected, n * t, d, t, 6 * d, 3 * d, 4 * d);
        LayerNormModulate.Run(dev, tx.View, tm.View, ty.View, n * t, d, t, 6 * d, 3 * d, 4 * d);
        Tolerance.AssertClose(expected, ty.ToHost(), 1e-5, 1e-5, "layernorm_modulate", output);
    }

    [SkippableTheory]
    [InlineData("sim", 0, 2, 16, 4, 16)]
    [InlineData("cpu", 0, 2, 16, 4, 16)]
    [InlineData("sim", 1, 1, 9, 2, 72)]    // XL's head dim, odd token count
    [InlineData("cpu", 1, 1, 9, 2, 72)]    // XL's head dim, odd token count
    [InlineData("sim", 2, 2, 49, 4, 24)]   // the demo model's shape
    [InlineData("cpu", 2, 2, 49, 4, 24)]   // the demo model's shape
    [InlineData("cuda", 1, 2, 256, 16, 72)]
    public void Attention_MatchesReference(string kind, int seed, int n, int t, int heads, int hd)
    {
        var dev = TestDevices.Get(kind);
        var qkv = Tolerance.Random(seed, 3 * n * t * heads * hd, 2f);
        using var tq = Up(dev, qkv); using var to = Tensor.Allocate(dev, "o", n * t * heads * hd);
        var expected = new float[n * t * heads * hd];
        float scale = 1f / MathF.Sqrt(hd);
        Attention.Reference(qkv, expected, n, t, heads, hd, scale);
        Attention.Run(dev, tq.View, to.View, n, t, heads, hd, scale);
        Tolerance.AssertClose(expected, to.ToHost(), 1e-5, 1e-5, $"attention t{t} h{heads} hd{hd}", output);
    }

    [SkippableTheory]
    [InlineData("sim", 0, 2, 4, 8, 2, 16)]
    [InlineData("cpu", 0, 2, 4, 8, 2, 16)]
    [InlineData("sim", 1, 1, 3, 16, 4, 12)]
    [InlineData("cpu", 1, 1, 3, 16, 4, 12)]
    [InlineData("cuda", 0, 2, 4, 32, 2, 64)]
    public void PatchEmbed_MatchesReference(string kind, int seed, int n, int c, int h, int p, int d)
    {
        var dev = TestDevices.Get(kind);
        int t = (h / p) * (h / p);
        var x = Tolerance.Random(seed, n * c * h * h); var w = Tolerance.Random(seed + 1, d * c * p * p);
        var b = Tolerance.Random(seed + 2, d); var pos = Tolerance.Random(seed + 3, t * d);
        using var tx = Up(dev, x); using var tw = Up(dev, w); using var tb = Up(dev, b); using var tp = Up(dev, pos);
        using var to = Tensor.Allocate(dev, "o", n * t * d);
        var expected = new float[n * t * d];
        PatchEmbed.Reference(x, w, b, pos, expected, n, c, h, h, p, d);
        PatchEmbed.Run(dev, tx.View, tw.View, tb.View, tp.View, to.View, n, c, h, h, p, d);
        Tolerance.AssertClose(expected, to.ToHost(), 1e-5, 1e-5, "patch_embed", output);
    }

    [SkippableTheory]
    [InlineData("sim")]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void SmallKernels_MatchReference(string kind)
    {
        var dev = TestDevices.Get(kind);
        // timestep features
        var t = new float[] { 0, 17, 999, 500 };
        var freqs = TimestepEmbedding.Frequencies();
        using var tt = Up(dev, t); using var tf = Up(dev, freqs); using var te = Tensor.Allocate(dev, "e", 4 * 256);
        var expT = new float[4 * 256];
        TimestepEmbedding.Reference(t, freqs, expT);
        TimestepEmbedding.Run(dev, tt.View, tf.View, te.View, 4);
        Tolerance.AssertClose(expT, te.ToHost(), 1e-6, 1e-6, "timestep_embedding", output);

        // label embedding + condition sum
        int d = 8; var temb = Tolerance.Random(1, 3 * d); var table = Tolerance.Random(2, 5 * d); var y = new[] { 4, 0, 2 };
        using var ttemb = Up(dev, temb); using var ttab = Up(dev, table); using var tc = Tensor.Allocate(dev, "c", 3 * d);
        using var ty = dev.Accelerator.Allocate1D(y);
        var expC = new float[3 * d];
        LabelEmbed.Reference(temb, table, y, expC, d);
        LabelEmbed.Run(dev, ttemb.View, ttab.View, ty.View, tc.View, 3, d);
        Tolerance.AssertClose(expC, tc.ToHost(), 0, 0, "label_embed", output);

        // SiLU
        var s = Tolerance.Random(3, 100, 5f);
        using var ts = Up(dev, s); using var tso = Tensor.Allocate(dev, "so", 100);
        Activations.SiluRun(dev, ts.View, tso.View);
        Tolerance.AssertClose(s.Select(Activations.Silu).ToArray(), tso.ToHost(), 1e-6, 1e-6, "silu", output);

        // unpatchify
        int n = 2, c = 3, h = 8, p = 2;
        var tok = Tolerance.Random(4, n * c * h * h);
        using var ttok = Up(dev, tok); using var timg = Tensor.Allocate(dev, "img", n * c * h * h);
        var expU = new float[n * c * h * h];
        Unpatchify.Reference(tok, expU, n, c, h, h, p);
        Unpatchify.Run(dev, ttok.View, timg.View, n, c, h, h, p);
        Tolerance.AssertClose(expU, timg.ToHost(), 0, 0, "unpatchify", output);

        // guidance (first 3 of 8 channels guided)
        var o = Tolerance.Random(5, 2 * 2 * 8 * 16);
        using var to = Up(dev, o);
        var expG = (float[])o.Clone();
        Guidance.Reference(expG, 2, 8, 16, 3, 4f);
        Guidance.Run(dev, to.View, 2, 8, 16, 3, 4f);
        Tolerance.AssertClose(expG, to.ToHost(), 1e-6, 1e-6, "cfg_guidance", output);

        // noise: the device generator equals the host definition, and looks standard normal
        using var tz = Tensor.Allocate(dev, "z", 4096);
        GaussianNoise.Run(dev, tz.View, 42, 3);
        var z = tz.ToHost();
        Tolerance.AssertClose(GaussianNoise.Reference(42, 3, 4096), z, 1e-6, 1e-6, "gaussian_noise", output);
        double mean = z.Average(), var = z.Select(v => (v - mean) * (v - mean)).Average();
        Assert.InRange(mean, -0.06, 0.06);
        Assert.InRange(var, 0.93, 1.07);
    }
}
