// PixArt-α's new kernels against their references: masked cross-attention (a masked key contributes nothing;
// a row with every key masked is 0, not NaN), the strided row add (broadcast, column slices, in place) and the
// DPM-Solver++ update.
using BlockDance.Kernels;
using ILGPU.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class PixArtKernelTests(ITestOutputHelper output)
{
    static Tensor Up(ComputeDevice dev, float[] a) => Tensor.FromHost(dev, "t", a, a.Length);

    [SkippableTheory]
    [InlineData("sim", 0, 3, 5, 7, 2, 24)]
    [InlineData("cpu", 0, 3, 5, 7, 2, 24)]
    [InlineData("sim", 1, 2, 4, 3, 1, 72)]
    [InlineData("cpu", 1, 2, 4, 3, 1, 72)]
    [InlineData("cuda", 0, 3, 5, 7, 2, 24)]
    public void CrossAttention_MaskedKeysIgnored_FullyMaskedRowIsZero(string kind, int seed, int n, int t, int l, int heads, int hd)
    {
        var dev = TestDevices.Get(kind);
        int d = heads * hd, captions = 3;
        var q = Tolerance.Random(seed, n * t * d, 2f);
        var kv = Tolerance.Random(seed + 1, captions * l * 2 * d, 2f);
        var keep = new float[captions * l];
        for (int j = 0; j < l; j++) { keep[j] = j < 2 ? 1 : 0; keep[l + j] = 1; }      // caption 2: every key masked
        int[] cap = Enumerable.Range(0, n).Select(i => i % captions).ToArray();
        var expected = new float[n * t * d];
        CrossAttention.Reference(q, kv, keep, cap, expected, n, t, l, heads, hd, 1f / MathF.Sqrt(hd));
        using var tq = Up(dev, q); using var tkv = Up(dev, kv); using var tk = Up(dev, keep);
        using var tc = dev.Accelerator.Allocate1D<int>(cap);
        using var o = Tensor.Allocate(dev, "o", n * t * d);
        CrossAttention.Run(dev, tq.View, tkv.View, tk.View, tc.View, o.View, n, t, l, heads, hd, 1f / MathF.Sqrt(hd));
        var got = o.ToHost();
        Tolerance.AssertClose(expected, got, 1e-5, 1e-5, "cross-attention", output);
        for (int b = 0; b < n; b++)
            if (cap[b] == 2) Assert.All(got[(b * t * d)..((b + 1) * t * d)], v => Assert.Equal(0f, v));
        // a masked key's values do not matter: change them, the output stays the same
        for (int e = 0; e < 2 * d; e++) kv[(l - 1) * 2 * d + e] = 1000f;
        using var tkv2 = Up(dev, kv);
        CrossAttention.Run(dev, tq.View, tkv2.View, tk.View, tc.View, o.View, n, t, l, heads, hd, 1f / MathF.Sqrt(hd));
        Assert.Equal(got, o.ToHost());
    }

    [SkippableTheory]
    [InlineData("sim")]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void StridedAdd_BroadcastsRowsAndAddsColumnSlicesInPlace(string kind)
    {
        var dev = TestDevices.Get(kind);
        int rows = 3, width = 5;
        var table = Tolerance.Random(1, 2 * width); var x = Tolerance.Random(2, rows * 12); var outH = Tolerance.Random(3, rows * 12);
        var expected = (float[])outH.Clone();
        StridedAdd.Reference(table, 0, width, x, 12, 4, expected, 12, 7, rows, width);
        using var ta = Up(dev, table); using var tx = Up(dev, x); using var to = Up(dev, outH);
        StridedAdd.Run(dev, new(ta.View, 0, width), new(tx.View, 12, 4), new(to.View, 12, 7), rows, width);
        Assert.Equal(expected, to.ToHost());
        var inPlace = (float[])x.Clone();
        StridedAdd.Reference(inPlace, 12, 1, table, 0, 0, inPlace, 12, 1, rows, width);
        StridedAdd.Run(dev, new(tx.View, 12, 1), new(ta.View, 0, 0), new(tx.View, 12, 1), rows, width);
        Assert.Equal(inPlace, tx.ToHost());
    }

    [SkippableTheory]
    [InlineData("sim")]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void DpmSolverStep_MatchesReference_AndKeepsX0(string kind)
    {
        var dev = TestDevices.Get(kind);
        int b = 2, c = 4, hw = 9, cOut = 8;
        var x = Tolerance.Random(1, b * c * hw, 3f); var o = Tolerance.Random(2, b * cOut * hw); var prev = Tolerance.Random(3, b * c * hw);
        var k = new DpmCoefficients(0.3f, 0.95f, 0.8f, 0.25f, -0.1f);
        var ex = (float[])x.Clone(); var ep = (float[])prev.Clone();
        DpmSolverStep.Reference(ex, o, ep, b, c, hw, cOut, k);
        using var tx = Up(dev, x); using var to = Up(dev, o); using var tp = Up(dev, prev);
        DpmSolverStep.Run(dev, tx.View, to.View, tp.View, b, c, hw, cOut, k);
        Tolerance.AssertClose(ex, tx.ToHost(), 1e-6, 1e-6, "dpm x", output);
        Tolerance.AssertClose(ep, tp.ToHost(), 1e-6, 1e-6, "dpm x0", output);
    }
}
