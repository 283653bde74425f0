// The GEMM in the kernel harness (`blockdance kernels --op gemm`): every version on the same seeded
// inputs, validated against Gemm.Reference, then timed; cuBLAS as the vendor baseline on CUDA.
//
// Shapes: "xl" are DiT-XL/2's at model batch 16, 256 px (M = 16·256 tokens): qkv 3456×1152, attn.proj
// 1152×1152, mlp.fc1 4608×1152, mlp.fc2 1152×4608, and adaLN at M = batch (16×6912×1152). "small" are
// CPU-accelerator sized (ragged edges included).
// Validation: epilogue None (y = x·Wᵀ + b). On xl shapes the reference covers 24 rows (first, last, middle
// and seeded random ones), all columns — the host reference would take minutes for all rows.
// Tolerance |got − ref| ≤ atol + rtol·|ref| with atol = rtol = 1e-5·max(1, √(K/72)) for every version:
// the 16-bit versions are compared with the reference computed on the same bf16/fp16-rounded operands
// (products of 16-bit values are exact in fp32, so only the summation order differs, as in fp32).
// Baseline: ILGPU.Algorithms' CuBlas SGEMM (fp32, no bias) for fp32 versions, HGEMM (fp16 in, fp16 out) for
// the 16-bit ones; it needs libcublas on the GPU machine and is reported as unavailable otherwise.
using System.Diagnostics;
using System.Text.RegularExpressions;
using ILGPU;
using ILGPU.Runtime;
using Half = ILGPU.Half;
using ILGPU.Runtime.Cuda;

namespace BlockDance.Kernels.Harness;

public sealed class GemmOp : IKernelOp, IVersionBaseline
{
    public string Name => "gemm";
    public IReadOnlyList<string> Versions { get; } = ["v1", "v2", "small-m", "v3-bf16", "v3-fp16", "host"];

    static KernelShape Shape(string what, int m, int n, int k) =>
        new($"{what} {m}x{n}x{k}", Gemm.Flops(m, n, k), 4.0 * ((long)m * k + (long)n * k + (long)m * n));

    public IReadOnlyList<KernelShape> Shapes(string set) => set switch
    {
        "xl" => [Shape("qkv", 4096, 3456, 1152), Shape("proj", 4096, 1152, 1152), Shape("fc1", 4096, 4608, 1152),
                 Shape("fc2", 4096, 1152, 4608), Shape("adaLN", 16, 6912, 1152)],
        "small" => [Shape("ragged", 70, 72, 40), Shape("adaLN", 4, 24, 96)],
        // The demo model at model batch 20 (10 digits × CFG, 49 tokens): qkv, proj, fc1, fc2, adaLN.
        "demo" => [Shape("qkv", 980, 288, 96), Shape("proj", 980, 96, 96), Shape("fc1", 980, 384, 96),
                   Shape("fc2", 980, 96, 384), Shape("adaLN", 20, 576, 96)],
        _ => throw new InvalidValueException("shapes", "xl, demo or small", $"'{set}'"),
    };

    static (int M, int N, int K) Dims(KernelShape s)
    {
        var g = Regex.Match(s.Label, @"(\d+)x(\d+)x(\d+)$").Groups;
        return (int.Parse(g[1].Value), int.Parse(g[2].Value), int.Parse(g[3].Value));
    }

    public bool Supports(ComputeDevice dev, string version) => version switch
    {
        "v1" or "small-m" => true,
        "v2" => GemmV2.Supports(dev),
        "v3-bf16" or "v3-fp16" => GemmV3.Supports(dev),
        "host" => dev.IsHost,
        _ => false,
    };

    public static Precision PrecisionOf(string version) =>
        version.EndsWith("bf16") ? Precision.Bf16 : version.EndsWith("fp16") ? Precision.Fp16 : Precision.Fp32;

    public KernelTrial Prepare(ComputeDevice dev, string version, KernelShape shape)
    {
        var (m, n, k) = Dims(shape);
        var x = Random(1, (long)m * k, 1f); var w = Random(2, (long)n * k, 0.3f); var b = Random(3, n, 1f);
        var precision = PrecisionOf(version);
        var tx = Tensor.FromHost(dev, "x", x, m, k);
        var tw = Tensor.FromHost(dev, "w", w, n, k);
        var tb = Tensor.FromHost(dev, "b", b, n);
        var ty = Tensor.Allocate(dev, "y", m, n);
        GemmWeights? packed = precision == Precision.Fp32 ? null : GemmWeights.Create(dev, tw, precision);
        var hostW = version == "host" ? GemmHost.PackToDevice(dev, "w", w, n, k) : null;   // packed once, as a layer is
        Action launch = version switch
        {
            "host" => () => GemmHost.Run(dev, tx.View, hostW!.View, tb.View, ty.View, m, n, k),
            "v1" => () => Gemm.RunV1(dev, tx.View, tw.View, tb.View, ty.View, m, n, k),
            "v2" => () => GemmV2.Run(dev, tx.View, tw.View, tb.View, ty.View, m, n, k),
            "small-m" => () => GemmSmallM.Run(dev, tx.View, tw.View, tb.View, ty.View, m, n, k),
            _ => () => GemmV3.Run(dev, tx.View, packed!, tb.View, ty.View, m, k),
        };
        launch();
        var got = ty.ToHost();
        var validation = Validate(precision == Precision.Fp32 ? x : GemmWeights.RoundHost(x, precision),
            precision == Precision.Fp32 ? w : GemmWeights.RoundHost(w, precision), b, got, m, n, k);
        return new KernelTrial(validation, launch, () => { tx.Dispose(); tw.Dispose(); tb.Dispose(); ty.Dispose(); packed?.Dispose(); hostW?.Dispose(); });
    }

    static Validation Validate(float[] x, float[] w, float[] b, float[] got, int m, int n, int k)
    {
        double tol = 1e-5 * Math.Max(1, Math.Sqrt(k / 72.0));
        var rows = m <= 256 ? Enumerable.Range(0, m).ToArray() : SampleRows(m);
        double maxErr = 0;
        var bad = new List<string>();
        foreach (int i in rows)
            for (int j = 0; j < n; j++)
            {
                double acc = 0;
                for (int p = 0; p < k; p++) acc += (double)x[(long)i * k + p] * w[(long)j * k + p];
                double expected = (float)acc + b[j], err = Math.Abs(expected - got[(long)i * n + j]);
                if (double.IsNaN(err)) err = double.PositiveInfinity;
                maxErr = Math.Max(maxErr, err);
                if (err > tol + tol * Math.Abs(expected) && bad.Count < 5)
                    bad.Add($"y[{i},{j}] expected {expected:G7}, got {got[(long)i * n + j]:G7}");
            }
        return new Validation(bad.Count == 0, maxErr, tol, tol, bad);
    }

    static int[] SampleRows(int m)
    {
        var r = new Random(7);
        return new[] { 0, 1, m / 2, m - 1 }.Concat(Enumerable.Range(0, 20).Select(_ => r.Next(m))).Distinct().ToArray();
    }

    static float[] Random(int seed, long n, float scale)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1) * scale;
        return a;
    }

    /// <summary>cuBLAS on the same shape: SGEMM for fp32 (no bias; y row-major = (W·xᵀ) column-major).
    /// Null on the CPU accelerator; throws (reported by the harness) where libcublas cannot be loaded.</summary>
    public KernelTrial? PrepareBaseline(ComputeDevice dev, KernelShape shape) => PrepareCuBlas(dev, shape, half: false);

    /// <summary>The baseline a version is compared with: SGEMM for fp32 versions, HGEMM (fp16 operands and
    /// output, tensor cores) for the 16-bit ones.</summary>
    public (string Name, KernelTrial? Trial) PrepareBaseline(ComputeDevice dev, string version, KernelShape shape) =>
        PrecisionOf(version) == Precision.Fp32 ? ("cuBLAS SGEMM", PrepareCuBlas(dev, shape, half: false))
                                               : ("cuBLAS HGEMM", PrepareCuBlas(dev, shape, half: true));

    static KernelTrial? PrepareCuBlas(ComputeDevice dev, KernelShape shape, bool half)
    {
        if (dev.Accelerator is not CudaAccelerator cuda) return null;
        var (m, n, k) = Dims(shape);
        var blas = new CuBlas(cuda);
        if (!half)
        {
            var x = cuda.Allocate1D<float>((long)m * k); var w = cuda.Allocate1D<float>((long)n * k); var y = cuda.Allocate1D<float>((long)m * n);
            x.MemSetToZero(); w.MemSetToZero();
            Action launch = () => blas.Gemm(CuBlasOperation.Transpose, CuBlasOperation.NonTranspose, n, m, k,
                1f, w.View, k, x.View, k, 0f, y.View, n);
            launch();
            return new KernelTrial(new Validation(true, 0, 0, 0, []), launch, () => { x.Dispose(); w.Dispose(); y.Dispose(); blas.Dispose(); });
        }
        else
        {
            var x = cuda.Allocate1D<Half>((long)m * k); var w = cuda.Allocate1D<Half>((long)n * k); var y = cuda.Allocate1D<Half>((long)m * n);
            x.MemSetToZero(); w.MemSetToZero();
            Action launch = () => blas.Gemm(CuBlasOperation.Transpose, CuBlasOperation.NonTranspose, n, m, k,
                (Half)1f, w.View, k, x.View, k, (Half)0f, y.View, n);
            launch();
            return new KernelTrial(new Validation(true, 0, 0, 0, []), launch, () => { x.Dispose(); w.Dispose(); y.Dispose(); blas.Dispose(); });
        }
    }
}
