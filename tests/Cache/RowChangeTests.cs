// RowChange (the adaptive caches' gate signal on the device) against its reference on random inputs, on every backend:
// per row Σ|v − prev| and Σ|prev| with v = x − y or x, and `current` ← v. The host backend adds in the reference's order
// (bit-identical); the ILGPU kernel adds P contiguous chunks of a row, then the P partials: only the float64 summation
// order differs, rtol 1e-12 is far above its rounding error for these sizes. Then ChangeSignal: the per-sample relative
// L1 over both CFG rows is CacheSignals' on the host copies, read back with exactly one host wait.
using BlockDance.Cache;
using BlockDance.Kernels;
using ILGPU.Runtime;
using Xunit;

namespace BlockDance.Tests;

public class RowChangeTests
{
    [SkippableTheory]
    [InlineData("sim", 0, 1, 7, true)]          // short rows: one chunk
    [InlineData("sim", 1, 4, 9001, false)]      // 2 chunks per row, the last one short
    [InlineData("cpu", 2, 4, 9001, true)]
    [InlineData("cpu", 3, 2, 49 * 96, false)]   // the demo model's rows
    [InlineData("cuda", 4, 4, 256 * 1152, true)]
    public void RowChange_MatchesReference(string kind, int seed, int rows, int len, bool difference)
    {
        var dev = TestDevices.Get(kind);
        int n = rows * len;
        var x = Tolerance.Random(seed, n, 2f);
        var y = Tolerance.Random(seed + 1, n);
        var prev = Tolerance.Random(seed + 2, n);
        var want = RowChange.Reference(x, difference ? y : null, prev, rows, len);
        using var tx = Tensor.FromHost(dev, "x", x, n);
        using var ty = Tensor.FromHost(dev, "y", y, n);
        using var tp = Tensor.FromHost(dev, "prev", prev, n);
        using var tc = Tensor.Allocate(dev, "current", n);
        using var results = dev.Accelerator.Allocate1D<double>(2 * rows);
        using var partials = dev.Accelerator.Allocate1D<double>(2L * rows * RowChange.Chunks(len));
        RowChange.Run(dev, tx.View, difference ? ty.View : null, tp.View, tc.View, rows, len, results.View, partials.View);
        var got = results.GetAsArray1D();
        for (int i = 0; i < want.Length; i++)
            if (dev.IsHost) Assert.Equal(want[i], got[i]);
            else Assert.True(Math.Abs(want[i] - got[i]) <= 1e-12 * Math.Abs(want[i]), $"{i}: {got[i]} vs {want[i]}");
        var v = difference ? x.Select((e, i) => e - y[i]).ToArray() : x;
        Assert.Equal(v, tc.ToHost());
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void ChangeSignal_IsCacheSignalsRelativeL1_WithOneHostWait(bool guided)
    {
        var dev = TestDevices.Get("cpu");
        var cfg = new CfgLayout(3, guided);
        int rowLen = 50, n = cfg.ModelBatch * rowLen;
        var x = Tolerance.Random(11, n);
        var y = Tolerance.Random(12, n);
        var prev = Tolerance.Random(13, n);
        using var tx = Tensor.FromHost(dev, "x", x, n);
        using var ty = Tensor.FromHost(dev, "y", y, n);
        using var tp = Tensor.FromHost(dev, "prev", prev, n);
        using var signal = new ChangeSignal(dev, cfg.ModelBatch, rowLen);
        long waits = dev.HostWaits;
        var d = signal.RelativeL1(tx, ty, tp, cfg);
        Assert.Equal(1, dev.HostWaits - waits);
        var want = CacheSignals.RelativeL1(CacheSignals.Difference(x, y), prev, cfg, rowLen);
        for (int i = 0; i < cfg.Samples; i++) Assert.Equal(want[i], d[i], 12);
    }
}
