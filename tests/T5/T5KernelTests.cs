// The T5 kernels against their plain references on random inputs (cpu always, cuda where a GPU exists).
// Tolerance 1e-5 abs + 1e-5 rel: fp32 kernels vs float64-accumulating references over short reductions.
using BlockDance.Kernels;
using BlockDance.Transformer.T5;
using ILGPU.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests.T5;

public class T5KernelTests(ITestOutputHelper output)
{
    static Tensor Up(ComputeDevice dev, float[] a) => Tensor.FromHost(dev, "t", a, a.Length);

    [SkippableTheory]
    [InlineData("sim", 0, 5, 16)]
    [InlineData("cpu", 0, 5, 16)]
    [InlineData("sim", 1, 3, 72)]
    [InlineData("cpu", 1, 3, 72)]
    [InlineData("cuda", 0, 5, 16)]
    public void RmsNorm_MatchesReference(string kind, int seed, int rows, int d)
    {
        var dev = TestDevices.Get(kind);
        var x = Tolerance.Random(seed, rows * d, 3f);
        for (int i = 0; i < x.Length; i++) x[i] += 2f; // a non-zero mean must NOT be subtracted
        var w = Tolerance.Random(seed + 1, d);
        using var tx = Up(dev, x); using var tw = Up(dev, w); using var ty = Tensor.Allocate(dev, "y", rows * d);
        var expected = new float[rows * d];
        RmsNorm.Reference(x, w, expected, rows, d, 1e-6f);
        RmsNorm.Run(dev, tx.View, tw.View, ty.View, rows, d, 1e-6f);
        Tolerance.AssertClose(expected, ty.ToHost(), 1e-5, 1e-5, "rmsnorm", output);
    }

    [Fact]
    public void RmsNormReference_DoesNotSubtractTheMean()
    {
        // x = [1, 3], w = 1: rms = √5, so y = [1/√5, 3/√5]; a LayerNorm would give [−1, 1].
        var y = new float[2];
        RmsNorm.Reference([1f, 3f], [1f, 1f], y, 1, 2, 0f);
        Assert.Equal(1 / Math.Sqrt(5), y[0], 6);
        Assert.Equal(3 / Math.Sqrt(5), y[1], 6);
    }

    [SkippableTheory]
    [InlineData("sim", 0, 2, 9, 3, 5)]      // odd head dim, offsets past the exact buckets
    [InlineData("cpu", 0, 2, 9, 3, 5)]      // odd head dim, offsets past the exact buckets
    [InlineData("sim", 1, 3, 6, 2, 8)]
    [InlineData("cpu", 1, 3, 6, 2, 8)]
    [InlineData("cuda", 0, 2, 9, 3, 5)]
    public void RelativeBiasAttention_MatchesReference_WithBiasAndKeyMask(string kind, int seed, int n, int t, int heads, int hd)
    {
        var dev = TestDevices.Get(kind);
        int d = heads * hd, buckets = 8;
        var qkv = Tolerance.Random(seed, 3 * n * t * d, 1.5f);
        var table = Tolerance.Random(seed + 1, buckets * heads, 2f);
        var bucket = T5RelativePosition.Buckets(t, buckets, 6);
        var mask = new float[n * t];
        for (int b = 0; b < n; b++)
            for (int j = 0; j < t; j++) mask[b * t + j] = j < t - 2 * b ? 1f : 0f; // row b: 2b padded keys
        if (n > 2) Array.Clear(mask, 2 * t, t);                                   // and one row with every key masked → zeros
        using var tq = Up(dev, qkv); using var tt = Up(dev, table); using var tm = Up(dev, mask);
        using var tb = dev.Accelerator.Allocate1D(bucket);
        using var to = Tensor.Allocate(dev, "o", n * t * d);
        var expected = new float[n * t * d];
        RelativeBiasAttention.Reference(qkv, table, bucket, mask, expected, n, t, heads, hd, 1f);
        RelativeBiasAttention.Run(dev, tq.View, tt.View, tb.View, tm.View, to.View, n, t, heads, hd, 1f, buckets);
        Tolerance.AssertClose(expected, to.ToHost(), 1e-5, 1e-5, "relative_bias_attention", output);

        // The bias and the mask both change the result (the check above could not pass with either ignored).
        var noBias = new float[n * t * d];
        RelativeBiasAttention.Reference(qkv, new float[table.Length], bucket, mask, noBias, n, t, heads, hd, 1f);
        Assert.True(Tolerance.MaxAbsError(expected, noBias) > 1e-2);
        var noMask = new float[n * t * d];
        var ones = Enumerable.Repeat(1f, n * t).ToArray();
        RelativeBiasAttention.Reference(qkv, table, bucket, ones, noMask, n, t, heads, hd, 1f);
        Assert.True(Tolerance.MaxAbsError(expected, noMask) > 1e-2);
    }

    [SkippableTheory]
    [InlineData("sim", 0, 1000)]
    [InlineData("cpu", 0, 1000)]
    [InlineData("cuda", 0, 1000)]
    public void GatedGelu_MatchesReference(string kind, int seed, int len)
    {
        var dev = TestDevices.Get(kind);
        var g = Tolerance.Random(seed, len, 4f); var u = Tolerance.Random(seed + 1, len, 2f);
        using var tg = Up(dev, g); using var tu = Up(dev, u); using var ty = Tensor.Allocate(dev, "y", len);
        var expected = new float[len];
        GatedGelu.Reference(g, u, expected);
        GatedGelu.Run(dev, tg.View, tu.View, ty.View, len);
        // fp32 rounding (1e-6) plus the device's tanh error: |gate| ≤ 4, |up| ≤ 2 (tanh.approx.f32 on CUDA)
        Tolerance.AssertClose(expected, ty.ToHost(), 1e-6 + 2 * Activations.GeluTanhError(dev, 4), 1e-6, "gated_gelu", output);
        // gelu_new(1) = 0.841192 (tanh form), times up.
        Assert.Equal(0.841192f * 2f, Activations.GeluTanh(1f) * 2f, 5);
    }

    [Theory]
    // (offset j − i, bucket) for XXL's 32 buckets / distance 128 (the spec's table; keys left get 0..15, right 16..31).
    [InlineData(0, 0)] [InlineData(-1, 1)] [InlineData(1, 17)] [InlineData(-7, 7)] [InlineData(7, 23)]
    [InlineData(-8, 8)] [InlineData(8, 24)] [InlineData(-12, 9)] [InlineData(12, 25)] [InlineData(-16, 10)] [InlineData(16, 26)]
    [InlineData(-32, 12)] [InlineData(32, 28)] [InlineData(-64, 14)] [InlineData(64, 30)] [InlineData(-127, 15)] [InlineData(127, 31)]
    [InlineData(-500, 15)] [InlineData(500, 31)]
    public void RelativePositionBucket_MatchesT5_Xxl(int offset, int expected) =>
        Assert.Equal(expected, T5RelativePosition.Bucket(offset, 32, 128));

    [Fact]
    public void RelativePositionBuckets_TinyConfig_MatchPyTorchReference()
    {
        // printed by tools/reference/t5_reference.py for 8 buckets, distance 12, j − i = −19..19
        int[] expected = [3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 3, 2, 2, 2, 1, 0, 5, 6, 6, 6, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7];
        Assert.Equal(expected, T5RelativePosition.Buckets(20, 8, 12));
    }
}

public class T5HarnessTests
{
    // The harness entries of the T5 kernels validate their versions on the "small" shapes (what the
    // `blockdance kernels` harness runs first) — and a corrupted launch fails that validation.
    [SkippableTheory]
    [InlineData("cpu", "rmsnorm")]
    [InlineData("cpu", "relative_bias_attention")]
    [InlineData("cuda", "rmsnorm")]
    [InlineData("cuda", "relative_bias_attention")]
    public void HarnessOp_ValidatesEveryVersion_OnSmallShapes(string kind, string name)
    {
        var dev = TestDevices.Get(kind);
        var op = BlockDance.Kernels.Harness.KernelOps.All.Single(o => o.Name == name);
        foreach (var v in op.Versions)
            foreach (var shape in op.Shapes("small"))
            {
                using var trial = op.Prepare(dev, v, shape);
                Assert.True(trial.Validation.Passed, $"{name} {v} {shape.Label}: max abs error {trial.Validation.MaxAbsError:E2}; " +
                    string.Join("; ", trial.Validation.FirstMismatches));
                trial.Launch();   // launching again (what timing does) must not throw
            }
    }
}
