// GEMM v2 (fp32 SIMT tiled), v3 (bf16/fp16 tensor cores; emulated mma.sync/ldmatrix/cp.async on the CPU)
// and the small-M version against Gemm.Reference, every epilogue, ragged M/N/K edges.
// The tiled versions run 256-thread groups: on the CPU accelerator that is the "cpu-tiled" device
// (8 warps per group) and the shapes stay tiny (one simulated thread costs ~1 µs, a barrier far more).
// Tolerances: fp32 versions as v1 (1e-5 abs + 1e-5 rel, inputs O(1), K ≤ 72 — the sum order differs
// from the float64 reference by a few ulps of the partial sums).
using BlockDance.Kernels;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class GemmVersionTests(ITestOutputHelper output)
{
    static Tensor Up(ComputeDevice dev, float[] a) => Tensor.FromHost(dev, "t", a, a.Length);

    /// <summary>Runs `run` for every epilogue on seeded inputs and compares with the fp32 reference computed
    /// from `refX`/`refW` (the operands as the version sees them: rounded to bf16/fp16 for v3).</summary>
    internal static void CheckAllEpilogues(ComputeDevice dev, int seed, int m, int n, int k, double atol, double rtol, string name,
        ITestOutputHelper output, Action<Tensor, Tensor, Tensor, Tensor, Epilogue, Tensor, GateSpec> run,
        Func<float[], float[]>? roundOperand = null, Epilogue[]? epilogues = null)
    {
        var x = Tolerance.Random(seed, (long)m * k); var w = Tolerance.Random(seed + 1, (long)n * k, 0.3f);
        var b = Tolerance.Random(seed + 2, n); var res = Tolerance.Random(seed + 3, (long)m * n);
        int rowsPerSample = Math.Max(1, m / 3), samples = (m + rowsPerSample - 1) / rowsPerSample, gateStride = 2 * n + 3;
        var gate = Tolerance.Random(seed + 4, (long)samples * gateStride);
        var xr = roundOperand?.Invoke(x) ?? x; var wr = roundOperand?.Invoke(w) ?? w;
        using var tx = Up(dev, x); using var tw = Up(dev, w); using var tb = Up(dev, b);
        using var tres = Up(dev, res); using var tgate = Up(dev, gate);
        using var ty = Tensor.Allocate(dev, "y", m * n);
        // GELU's tanh is tanh.approx.f32 on CUDA: its error on the largest pre-activation adds to the tolerance
        var pre = new float[m * n];
        Gemm.Reference(xr, wr, b, pre, m, n, k, Epilogue.None, res, gate, rowsPerSample, gateStride, n + 1);
        double geluError = Activations.GeluTanhError(dev, pre.Max(MathF.Abs));
        foreach (var ep in epilogues ?? Enum.GetValues<Epilogue>())
        {
            var expected = new float[m * n];
            Gemm.Reference(xr, wr, b, expected, m, n, k, ep, res, gate, rowsPerSample, gateStride, n + 1);
            run(tx, tw, tb, ty, ep, tres, new GateSpec(tgate.View, rowsPerSample, gateStride, n + 1));
            Tolerance.AssertClose(expected, ty.ToHost(), atol + (ep == Epilogue.Gelu ? geluError : 0), rtol, $"{name} {m}x{n}x{k} {ep}", output);
        }
    }

    [SkippableTheory]
    [InlineData("cpu-tiled", 0, 130, 136, 20)]   // ragged M and N over 2×2 blocks, 16-byte loads, 3 K slices
    [InlineData("cpu-tiled", 1, 7, 13, 19)]      // K not a multiple of 4: the scalar-load path
    [InlineData("cuda", 0, 300, 200, 72)]
    [InlineData("cuda", 1, 256, 1152, 1152)]
    public void GemmV2_MatchesReference_AllEpilogues(string kind, int seed, int m, int n, int k)
    {
        var dev = TestDevices.Get(kind);
        double tol = 1e-5 * Math.Max(1, Math.Sqrt(k / 72.0));
        CheckAllEpilogues(dev, seed, m, n, k, tol, tol, "gemm_v2", output, (x, w, b, y, ep, res, gate) =>
            GemmV2.Run(dev, x.View, w.View, b.View, y.View, m, n, k, ep, res.View, gate));
    }

    [SkippableTheory]
    [InlineData("sim", 0, 3, 10, 24)]        // one pass, 16-byte loads, 1 warp per group
    [InlineData("sim", 1, 11, 5, 37)]        // two row passes (8 + 3), K not a multiple of 4
    [InlineData("cpu-tiled", 2, 2, 17, 40)]  // 8 warps per group, last group partly empty
    [InlineData("cuda", 0, 16, 6912, 1152)]  // DiT-XL/2 adaLN at batch 16
    public void GemmSmallM_MatchesReference_AllEpilogues(string kind, int seed, int m, int n, int k)
    {
        var dev = TestDevices.Get(kind);
        double tol = 1e-5 * Math.Max(1, Math.Sqrt(k / 72.0));
        CheckAllEpilogues(dev, seed, m, n, k, tol, tol, "gemm_small_m", output, (x, w, b, y, ep, res, gate) =>
            GemmSmallM.Run(dev, x.View, w.View, b.View, y.View, m, n, k, ep, res.View, gate));
    }

    // v3 on the CPU accelerator runs the per-lane emulation of mma.sync/ldmatrix (TensorCore/), so the tiling,
    // swizzle, fragment indexing, double buffering and epilogue are the ones the GPU runs. Reference: the fp32
    // reference on the operands rounded to bf16/fp16 (products of 16-bit values are exact in fp32, only the
    // summation order differs) → the fp32 tolerance. The emulation is slow (~10 s per 256-thread group and
    // k16 step on 2 cores: every emulated mma is 32 warp shuffles), so each row runs few epilogues; every
    // epilogue goes through the same StoreOne → Gemm.Apply as v2, which the v2 test covers in full.
    [SkippableTheory]
    [InlineData("cpu-tiled", 0, 20, 24, 40, "bf16", "None,GatedResidual,Gelu")] // ragged M/N in one block, K = 32 + 8 (zero-filled slice)
    [InlineData("cpu-tiled", 1, 130, 24, 16, "bf16", "Silu")]     // two blocks along M (rows 128, 129 in the second)
    [InlineData("cpu-tiled", 2, 9, 136, 16, "fp16", "Relu")]      // two blocks along N, fp16 operands
    [InlineData("cuda", 0, 300, 200, 72, "bf16", "None,Gelu,Silu,GatedResidual,Relu")]
    [InlineData("cuda", 1, 4096, 1152, 1152, "fp16", "None,GatedResidual")]
    public void GemmV3_MatchesReference(string kind, int seed, int m, int n, int k, string precision, string epilogues)
    {
        var dev = TestDevices.Get(kind);
        var p = precision == "bf16" ? Precision.Bf16 : Precision.Fp16;
        double tol = 1e-5 * Math.Max(1, Math.Sqrt(k / 72.0));
        GemmWeights? packed = null;
        try
        {
            CheckAllEpilogues(dev, seed, m, n, k, tol, tol, $"gemm_v3_{precision}", output, (x, w, b, y, ep, res, gate) =>
            {
                packed ??= GemmWeights.FromHost(dev, w.ToHost(), n, k, p);
                GemmV3.Run(dev, x.View, packed, b.View, y.View, m, k, ep, res.View, gate);
            }, a => GemmWeights.RoundHost(a, p), epilogues.Split(',').Select(Enum.Parse<Epilogue>).ToArray());
        }
        finally { packed?.Dispose(); }
    }
}
