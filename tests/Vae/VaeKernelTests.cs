// The VAE decoder's kernels against their plain references on random inputs, on every backend.
// Tolerances: float32 kernels vs float64-accumulating references on O(1) inputs; the longest
// reduction here is a 3×3 conv over 30 channels (K = 270, weights scaled by 1/√K) or a GroupNorm group of ~10k elements,
// so 1e-5 absolute + relative leaves room for float32 rounding and nothing more.
using BlockDance.Kernels;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class VaeKernelTests(ITestOutputHelper output)
{
    static Tensor Up(ComputeDevice dev, float[] a) => Tensor.FromHost(dev, "t", a, a.Length);

    /// <summary>Conv shapes × KernelKinds (the ILGPU kernel on sim, the host implicit GEMM on cpu).</summary>
    public static IEnumerable<object[]> ConvRows =>
        from kind in TestDevices.KernelKinds
        from s in new[]
        {
            new[] { 0, 2, 5, 7, 6, 9, 3 },     // C_out and W not multiples of 4: clamped edge tiles
            new[] { 1, 1, 24, 16, 8, 8, 3 },   // full 4×4 tiles
            new[] { 2, 2, 6, 3, 5, 4, 3 },     // conv_out-like: 3 output channels
            new[] { 3, 2, 16, 8, 4, 4, 1 },    // 1×1 (conv_shortcut, post_quant_conv)
            new[] { 4, 1, 3, 5, 1, 2, 3 },     // a 1×2 image: every tap but the centre row is padding
            new[] { 5, 2, 30, 13, 16, 32, 3 }, // host: 16-pixel panels inside rows, K = 270 (two K slices), ragged C_out
            new[] { 6, 1, 4, 7, 9, 20, 3 },    // host: panels straddling rows, a partial last item
        }
        select new object[] { kind[0], s[0], s[1], s[2], s[3], s[4], s[5], s[6] };

    [SkippableTheory]
    [MemberData(nameof(ConvRows))]
    [InlineData("cuda", 1, 2, 64, 32, 16, 16, 3)]
    [InlineData("cuda", 3, 2, 64, 32, 16, 16, 1)]
    public void Conv2d_MatchesReference_WithAndWithoutResidual(string kind, int seed, int batch, int cin, int cout, int h, int w, int k)
    {
        var dev = TestDevices.Get(kind);
        var x = Tolerance.Random(seed, (long)batch * cin * h * w);
        var wt = Tolerance.Random(seed + 1, (long)cout * cin * k * k, 1f / MathF.Sqrt(cin * k * k));
        var b = Tolerance.Random(seed + 2, cout);
        var res = Tolerance.Random(seed + 3, (long)batch * cout * h * w);
        using var tx = Up(dev, x); using var tw = Up(dev, wt); using var tb = Up(dev, b); using var tres = Up(dev, res);
        using var ty = Tensor.Allocate(dev, "y", batch * cout * h * w);
        foreach (var withRes in new[] { false, true })
        {
            var expected = new float[batch * cout * h * w];
            Conv2d.Reference(x, wt, b, expected, batch, cin, cout, h, w, k, withRes ? res : null);
            Conv2d.Run(dev, tx.View, tw.View, tb.View, ty.View, batch, cin, cout, h, w, k, withRes ? tres.View : default);
            Tolerance.AssertClose(expected, ty.ToHost(), 1e-5, 1e-5, $"conv{k}x{k} {cin}->{cout} {h}x{w} residual={withRes}", output);
        }
    }

    [Fact]
    public void Conv2dHost_SameBitsForOneTwoAndThreeThreads()
    {
        const int batch = 2, cin = 12, cout = 10, h = 12, w = 20;
        var x = Tolerance.Random(1, batch * cin * h * w); var wt = Tolerance.Random(2, cout * cin * 9, 0.1f);
        var b = Tolerance.Random(3, cout);
        float[]? first = null;
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var dev = ComputeDevice.Create(DeviceKind.Cpu, threads: threads);
            using var tx = Up(dev, x); using var tw = Up(dev, wt); using var tb = Up(dev, b);
            using var ty = Tensor.Allocate(dev, "y", batch * cout * h * w);
            Conv2d.Run(dev, tx.View, tw.View, tb.View, ty.View, batch, cin, cout, h, w, 3);
            var y = ty.ToHost();
            if (first is null) first = y;
            else Assert.True(first.AsSpan().SequenceEqual(y), $"conv2d_host with {threads} threads differs from 1 thread");
        }
    }

    [SkippableTheory]
    [InlineData("sim", 0)]
    [InlineData("cpu", 0)]
    public void Conv2d_InPlaceResidual_MatchesReference(string kind, int seed)
    {
        // The decoder writes conv2's output over the residual it adds (y = res); each output element
        // reads only its own residual element, so that must equal the out-of-place result.
        var dev = TestDevices.Get(kind);
        const int batch = 1, cin = 4, cout = 6, h = 5, w = 6;
        var x = Tolerance.Random(seed, batch * cin * h * w);
        var wt = Tolerance.Random(seed + 1, cout * cin * 9, 0.3f);
        var b = Tolerance.Random(seed + 2, cout);
        var res = Tolerance.Random(seed + 3, batch * cout * h * w);
        using var tx = Up(dev, x); using var tw = Up(dev, wt); using var tb = Up(dev, b); using var tres = Up(dev, res);
        var expected = new float[res.Length];
        Conv2d.Reference(x, wt, b, expected, batch, cin, cout, h, w, 3, res);
        Conv2d.Run(dev, tx.View, tw.View, tb.View, tres.View, batch, cin, cout, h, w, 3, tres.View);
        Tolerance.AssertClose(expected, tres.ToHost(), 1e-5, 1e-5, "conv3x3 in-place residual", output);
    }

    [SkippableTheory]
    [InlineData("sim", 0, 2, 8, 12, 4, false)]     // 2 channels per group
    [InlineData("cpu", 0, 2, 8, 12, 4, false)]     // 2 channels per group
    [InlineData("sim", 1, 1, 6, 25, 6, true)]      // 1 channel per group, SiLU fused
    [InlineData("cpu", 1, 1, 6, 25, 6, true)]      // 1 channel per group, SiLU fused
    [InlineData("sim", 2, 2, 8, 2304, 2, true)]    // 9216-element groups: 3 statistics chunks merged
    [InlineData("cpu", 2, 2, 8, 2304, 2, true)]    // 9216-element groups: 3 statistics chunks merged
    [InlineData("sim", 3, 1, 64, 9, 32, false)]    // the real group count
    [InlineData("cpu", 3, 1, 64, 9, 32, false)]    // the real group count
    [InlineData("cuda", 2, 2, 8, 2304, 2, true)]
    [InlineData("cuda", 3, 2, 128, 1024, 32, true)]
    public void GroupNorm_MatchesReference(string kind, int seed, int batch, int channels, int hw, int groups, bool silu)
    {
        var dev = TestDevices.Get(kind);
        var x = Tolerance.Random(seed, (long)batch * channels * hw, 3f);
        for (int i = 0; i < x.Length; i++) x[i] += 2f + (i / hw % 3);  // non-zero, per-channel different means
        var gamma = Tolerance.Random(seed + 1, channels);
        var beta = Tolerance.Random(seed + 2, channels);
        using var tx = Up(dev, x); using var tg = Up(dev, gamma); using var tb = Up(dev, beta);
        using var ty = Tensor.Allocate(dev, "y", x.Length);
        using var scratch = Tensor.Allocate(dev, "scratch", (int)GroupNorm.ScratchLength(batch, channels, hw, groups));
        var expected = new float[x.Length];
        GroupNorm.Reference(x, gamma, beta, expected, batch, channels, hw, groups, GroupNorm.DefaultEps, silu);
        GroupNorm.Run(dev, tx.View, tg.View, tb.View, ty.View, scratch.View, batch, channels, hw, groups, GroupNorm.DefaultEps, silu);
        output.WriteLine($"{GroupNorm.ChunksPerGroup((long)channels / groups * hw)} chunk(s) per group");
        Tolerance.AssertClose(expected, ty.ToHost(), 1e-5, 1e-5, $"groupnorm {channels}ch/{groups}g hw {hw} silu={silu}", output);
    }

    [SkippableTheory]
    [InlineData("sim", 0, 6, 3, 5)]
    [InlineData("cpu", 0, 6, 3, 5)]
    [InlineData("cuda", 0, 64, 16, 16)]
    public void Upsample_MatchesReference(string kind, int seed, int planes, int h, int w)
    {
        var dev = TestDevices.Get(kind);
        var x = Tolerance.Random(seed, planes * h * w);
        using var tx = Up(dev, x); using var ty = Tensor.Allocate(dev, "y", 4 * planes * h * w);
        var expected = new float[4 * planes * h * w];
        Upsample.Reference(x, expected, planes, h, w);
        Upsample.Run(dev, tx.View, ty.View, planes, h, w);
        Tolerance.AssertClose(expected, ty.ToHost(), 0, 0, "upsample nearest x2", output);
    }

    [SkippableTheory]
    [InlineData("sim", 0, 2, 5, 12)]
    [InlineData("cpu", 0, 2, 5, 12)]
    [InlineData("sim", 1, 1, 16, 9)]
    [InlineData("cpu", 1, 1, 16, 9)]
    [InlineData("cuda", 0, 2, 512, 1024)]
    public void Transpose_MatchesReference_WithAndWithoutResidual(string kind, int seed, int batch, int rows, int cols)
    {
        var dev = TestDevices.Get(kind);
        var x = Tolerance.Random(seed, batch * rows * cols);
        var res = Tolerance.Random(seed + 1, batch * rows * cols);
        using var tx = Up(dev, x); using var tres = Up(dev, res); using var ty = Tensor.Allocate(dev, "y", x.Length);
        foreach (var withRes in new[] { false, true })
        {
            var expected = new float[x.Length];
            Transpose.Reference(x, expected, batch, rows, cols, withRes ? res : null);
            Transpose.Run(dev, tx.View, ty.View, batch, rows, cols, withRes ? tres.View : default);
            Tolerance.AssertClose(expected, ty.ToHost(), 0, 0, $"transpose {rows}x{cols} residual={withRes}", output);
        }
    }

    [SkippableTheory]
    [InlineData("sim")]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void ImageOutput_MapsMinusOneOneTo0_255_WithClamp(string kind)
    {
        var dev = TestDevices.Get(kind);
        var x = new[] { -3f, -1f, -0.5f, 0f, 0.25f, 1f, 1.5f };
        using var tx = Up(dev, x); using var ty = Tensor.Allocate(dev, "y", x.Length);
        ImageOutput.Run(dev, tx.View, ty.View, x.Length);
        Tolerance.AssertClose([0f, 0f, 63.75f, 127.5f, 159.375f, 255f, 255f], ty.ToHost(), 0, 0, "image output", output);
    }
}
