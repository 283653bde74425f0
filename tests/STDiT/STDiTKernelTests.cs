// STDiT's new kernels against their references: the strided temporal attention (also against the ordinary
// attention kernel run on an explicitly transposed copy, which is what the official rearrange does), the per-frame
// table add (in place too) and the axis swap (and its inverse).
using BlockDance.Kernels;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class STDiTKernelTests(ITestOutputHelper output)
{
    static Tensor Up(ComputeDevice dev, float[] a) => Tensor.FromHost(dev, "t", a, a.Length);

    [SkippableTheory]
    [InlineData("cpu", 0, 2, 3, 5, 2, 12)]
    [InlineData("cpu", 1, 1, 16, 4, 1, 72)]
    [InlineData("cuda", 0, 2, 3, 5, 2, 12)]
    public void TemporalAttention_MatchesReferenceAndTransposedAttention(string kind, int seed, int b, int t, int s, int heads, int hd)
    {
        var dev = TestDevices.Get(kind);
        int d = heads * hd;
        float scale = 1f / MathF.Sqrt(hd);
        var qkv = Tolerance.Random(seed, (long)b * t * s * 3 * d, 2f);
        var expected = new float[b * t * s * d];
        TemporalAttention.Reference(qkv, expected, b, t, s, heads, hd, scale);
        using var tq = Up(dev, qkv);
        using var o = Tensor.Allocate(dev, "o", b * t * s * d);
        TemporalAttention.Run(dev, tq.View, o.View, b, t, s, heads, hd, scale);
        Tolerance.AssertClose(expected, o.ToHost(), 1e-5, 1e-5, "temporal attention", output);

        // the official way: (B, T, S, 3D) → (B, S, T, 3D), ordinary attention over B·S sequences, back
        var moved = new float[qkv.Length];
        SwapAxes.Reference(qkv, moved, b, t, s, 3 * d);
        var att = new float[expected.Length];
        Attention.Reference(moved, att, b * s, t, heads, hd, scale);
        var back = new float[att.Length];
        SwapAxes.Reference(att, back, b, s, t, d);
        Tolerance.AssertClose(back, expected, 1e-6, 1e-6, "temporal attention vs transposed attention", output);
    }

    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void FramePositionAdd_BroadcastsOverBatchAndSpace_InPlaceToo(string kind)
    {
        var dev = TestDevices.Get(kind);
        int n = 2, t = 3, s = 4, d = 8;
        var x = Tolerance.Random(3, n * t * s * d);
        var table = Tolerance.Random(4, t * d);
        var expected = new float[x.Length];
        FramePositionAdd.Reference(x, table, expected, n, t, s, d);
        Assert.Equal(x[(1 * t + 2) * s * d + 3 * d + 5] + table[2 * d + 5], expected[(1 * t + 2) * s * d + 3 * d + 5]);
        using var tx = Up(dev, x); using var tt = Up(dev, table);
        using var o = Tensor.Allocate(dev, "o", x.Length);
        FramePositionAdd.Run(dev, tx.View, tt.View, o.View, n, t, s, d);
        Assert.Equal(expected, o.ToHost());
        FramePositionAdd.Run(dev, tx.View, tt.View, tx.View, n, t, s, d);
        Assert.Equal(expected, tx.ToHost());
    }

    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void SwapAxes_MovesTheMiddleAxes_AndBack(string kind)
    {
        var dev = TestDevices.Get(kind);
        int a = 2, r = 4, s = 3, e = 5;
        var x = Tolerance.Random(5, a * r * s * e);
        var expected = new float[x.Length];
        SwapAxes.Reference(x, expected, a, r, s, e);
        Assert.Equal(x[((1 * r + 2) * s + 1) * e + 4], expected[((1 * s + 1) * r + 2) * e + 4]);
        using var tx = Up(dev, x);
        using var y = Tensor.Allocate(dev, "y", x.Length);
        using var z = Tensor.Allocate(dev, "z", x.Length);
        SwapAxes.Run(dev, tx.View, y.View, a, r, s, e);
        Assert.Equal(expected, y.ToHost());
        SwapAxes.Run(dev, y.View, z.View, a, s, r, e);
        Assert.Equal(x, z.ToHost());
    }
}
