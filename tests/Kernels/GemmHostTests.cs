// The host backend's GEMM (GemmHost: packed weights, 6×16 micro-kernel, K slices of 256, tiles of 48×192)
// against Gemm.Reference on seeded inputs: every epilogue, ragged M/N/K around every blocking boundary, the
// scalar fallback (GemmHost.Simd off), y aliasing the residual, and the determinism claims — bit-identical
// results for 1, 2 and 3 threads, and a row's result independent of the other rows (batching).
// Tolerance: as the ILGPU versions, 1e-5·max(1, √(K/72)) absolute + relative (fp32 sums in k order vs the
// float64 reference; inputs O(1), weights O(0.3)).
using BlockDance.Kernels;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class GemmHostTests(ITestOutputHelper output)
{
    static double Tol(int k) => 1e-5 * Math.Max(1, Math.Sqrt(k / 72.0));

    static void RunHost(ComputeDevice dev, Tensor x, Tensor w, Tensor b, Tensor y, int m, int n, int k, Epilogue ep, Tensor res, GateSpec gate)
    {
        using var packed = GemmHost.PackToDevice(dev, "w", w.ToHost(), n, k);
        GemmHost.Run(dev, x.View, packed.View, b.View, y.View, m, n, k, ep, res.View, gate);
    }

    [Theory]
    [InlineData(0, 1, 1, 1)]           // one element
    [InlineData(1, 7, 17, 5)]          // one partial strip and panel, partial vector of 1 column
    [InlineData(2, 50, 200, 300)]      // two K slices (256 + 44), ragged strips (50 = 8·6 + 2) and panels
    [InlineData(3, 97, 385, 96)]       // 3 row tiles (48 + 48 + 1), 3 column tiles (192 + 192 + 1)
    [InlineData(4, 2, 700, 520)]       // small M: column tiles split finer, three K slices
    [InlineData(5, 980, 96, 384)]      // the demo's mlp.fc2
    public void GemmHost_MatchesReference_AllEpilogues(int seed, int m, int n, int k)
    {
        var dev = TestDevices.Get("cpu");
        GemmVersionTests.CheckAllEpilogues(dev, seed, m, n, k, Tol(k), Tol(k), "gemm_host", output, (x, w, b, y, ep, res, gate) =>
            RunHost(dev, x, w, b, y, m, n, k, ep, res, gate));
    }

    [Theory]
    [InlineData(0, 13, 40, 300)]
    [InlineData(1, 6, 16, 7)]
    public void GemmHost_ScalarFallback_MatchesReference_AllEpilogues(int seed, int m, int n, int k)
    {
        var dev = TestDevices.Get("cpu");
        GemmHost.Simd = false;
        try
        {
            GemmVersionTests.CheckAllEpilogues(dev, seed, m, n, k, Tol(k), Tol(k), "gemm_host scalar", output, (x, w, b, y, ep, res, gate) =>
                RunHost(dev, x, w, b, y, m, n, k, ep, res, gate));
        }
        finally { GemmHost.Simd = GemmHost.SimdSupported; }
    }

    [Fact]
    public void GemmHost_GatedResidualIntoItsOwnResidual_MatchesReference()
    {
        // mlp.fc2 adds into its own output: y is the residual buffer.
        var dev = TestDevices.Get("cpu");
        int m = 53, n = 70, k = 300;
        var x = Tolerance.Random(1, (long)m * k); var w = Tolerance.Random(2, (long)n * k, 0.3f);
        var b = Tolerance.Random(3, n); var res = Tolerance.Random(4, (long)m * n); var gate = Tolerance.Random(5, 2 * n);
        var expected = new float[m * n];
        Gemm.Reference(x, w, b, expected, m, n, k, Epilogue.GatedResidual, res, gate, 27, n, 0);
        using var tx = Tensor.FromHost(dev, "x", x, x.Length); using var tb = Tensor.FromHost(dev, "b", b, n);
        using var ty = Tensor.FromHost(dev, "y", res, res.Length); using var tg = Tensor.FromHost(dev, "g", gate, gate.Length);
        using var packed = GemmHost.PackToDevice(dev, "w", w, n, k);
        GemmHost.Run(dev, tx.View, packed.View, tb.View, ty.View, m, n, k, Epilogue.GatedResidual, ty.View, new GateSpec(tg.View, 27, n, 0));
        Tolerance.AssertClose(expected, ty.ToHost(), Tol(k), Tol(k), "gemm_host in place", output);
    }

    static float[] HostGemm(ComputeDevice dev, float[] x, float[] w, float[] b, int m, int n, int k, Epilogue ep)
    {
        using var tx = Tensor.FromHost(dev, "x", x, x.Length); using var tb = Tensor.FromHost(dev, "b", b, n);
        using var ty = Tensor.Allocate(dev, "y", m * n);
        using var packed = GemmHost.PackToDevice(dev, "w", w, n, k);
        GemmHost.Run(dev, tx.View, packed.View, tb.View, ty.View, m, n, k, ep);
        return ty.ToHost();
    }

    [Fact]
    public void GemmHost_SameBitsForOneTwoAndThreeThreads()
    {
        int m = 200, n = 450, k = 600;
        var x = Tolerance.Random(1, (long)m * k); var w = Tolerance.Random(2, (long)n * k, 0.3f); var b = Tolerance.Random(3, n);
        Assert.True(GemmHost.TileCount(m, n) > 3, "the shape must split into more tiles than threads");
        float[]? first = null;
        foreach (int threads in new[] { 1, 2, 3 })
        {
            using var dev = ComputeDevice.Create(DeviceKind.Cpu, threads: threads);
            var y = HostGemm(dev, x, w, b, m, n, k, Epilogue.Gelu);
            if (first is null) first = y;
            else Assert.True(first.AsSpan().SequenceEqual(y), $"gemm_host with {threads} threads differs from 1 thread");
        }
    }

    [Fact]
    public void GemmHost_RowResultIndependentOfOtherRows()
    {
        // Batching: rows 3 … 8 alone (a different tiling, a partial strip) give the same bits as inside 100 rows.
        var dev = TestDevices.Get("cpu");
        int m = 100, n = 200, k = 300;
        var x = Tolerance.Random(1, (long)m * k); var w = Tolerance.Random(2, (long)n * k, 0.3f); var b = Tolerance.Random(3, n);
        var all = HostGemm(dev, x, w, b, m, n, k, Epilogue.Silu);
        int r0 = 3, rows = 5;
        var part = HostGemm(dev, x[(r0 * k)..((r0 + rows) * k)], w, b, rows, n, k, Epilogue.Silu);
        Assert.True(all.AsSpan(r0 * n, rows * n).SequenceEqual(part), "rows computed alone differ from the same rows in a larger batch");
    }

    [Theory]
    [InlineData(Precision.Fp32)]
    [InlineData(Precision.Bf16)]
    public void LayerWeights_OnTheHost_ArePackedOnceAndMatchTheReference(Precision precision)
    {
        // GemmWeights.ForLayer → packed panels; Gemm.Run(GemmWeights) → the host GEMM (x rounded under bf16).
        var dev = TestDevices.Get("cpu");
        int m = 21, n = 40, k = 24;
        var x = Tolerance.Random(1, (long)m * k); var w = Tolerance.Random(2, (long)n * k, 0.3f); var b = Tolerance.Random(3, n);
        var saved = dev.Precision;
        dev.Precision = precision;
        try
        {
            using var weights = GemmWeights.ForLayer(dev, "w", w, n, k);
            Assert.True(weights.HostPacked);
            Assert.Equal(precision, weights.Precision);
            using var tx = Tensor.FromHost(dev, "x", x, x.Length); using var tb = Tensor.FromHost(dev, "b", b, n);
            using var ty = Tensor.Allocate(dev, "y", m * n);
            long before = dev.Kernels.LaunchesOf("gemm_host_pack");
            Gemm.Run(dev, tx.View, weights, tb.View, ty.View, m);
            Assert.Equal(before, dev.Kernels.LaunchesOf("gemm_host_pack"));   // never repacked per call
            var rx = precision == Precision.Fp32 ? x : GemmWeights.RoundHost(x, precision);
            var rw = precision == Precision.Fp32 ? w : GemmWeights.RoundHost(w, precision);
            var expected = new float[m * n];
            Gemm.Reference(rx, rw, b, expected, m, n, k);
            Tolerance.AssertClose(expected, ty.ToHost(), Tol(k), Tol(k), $"layer gemm {precision}", output);
        }
        finally { dev.Precision = saved; }
    }

    [Fact]
    public void GemmHost_UsesTheSimdKernelWhereTheCpuHasIt()
    {
        // The default must follow the hardware (a static-initializer order bug once left it off everywhere).
        Assert.Equal(System.Runtime.Intrinsics.X86.Fma.IsSupported && System.Runtime.Intrinsics.Vector256.IsHardwareAccelerated, GemmHost.SimdSupported);
        Assert.Equal(GemmHost.SimdSupported, GemmHost.Simd);
    }

    [Fact]
    public void IlgpuKernelThenHostKernel_OnTheSameBuffers_SeesTheWrites()
    {
        // Mixing on the host backend: an op without a host version launches its ILGPU kernel (here GEMM v1 on
        // the CPU accelerator); the host GEMM that follows reads its output as x. Chained twice, no explicit sync.
        var dev = TestDevices.Get("cpu");
        int m = 30, n = 40, k = 50;
        var x = Tolerance.Random(1, (long)m * k); var w1 = Tolerance.Random(2, (long)k * k, 0.3f); var b1 = Tolerance.Random(3, k);
        var w2 = Tolerance.Random(4, (long)n * k, 0.3f); var b2 = Tolerance.Random(5, n);
        using var tx = Tensor.FromHost(dev, "x", x, x.Length); using var tw1 = Tensor.FromHost(dev, "w1", w1, w1.Length);
        using var tb1 = Tensor.FromHost(dev, "b1", b1, k); using var tb2 = Tensor.FromHost(dev, "b2", b2, n);
        using var th = Tensor.Allocate(dev, "h", m * k); using var ty = Tensor.Allocate(dev, "y", m * n);
        using var packed = GemmHost.PackToDevice(dev, "w2", w2, n, k);
        Gemm.RunV1(dev, tx.View, tw1.View, tb1.View, th.View, m, k, k, Epilogue.Gelu);          // ILGPU kernel
        GemmHost.Run(dev, th.View, packed.View, tb2.View, ty.View, m, n, k, Epilogue.None);    // host kernel reads h
        var h = new float[m * k]; var expected = new float[m * n];
        Gemm.Reference(x, w1, b1, h, m, k, k, Epilogue.Gelu);
        Gemm.Reference(h, w2, b2, expected, m, n, k);
        Tolerance.AssertClose(expected, ty.ToHost(), 2 * Tol(k), 2 * Tol(k), "ilgpu then host", output);
    }
}
