// LayerNorm (no affine, eps 1e-6, biased variance) fused with adaLN modulate:
//   y[n, t, :] = (x − mean) / √(var + eps) · (1 + scale[n]) + shift[n]
// The DiT's norm1, norm2 and norm_final all have elementwise_affine=False; the affine part
// is the per-sample (shift, scale) that adaLN_modulation produces from the condition c.
// eps 1e-6 is the value the DiT reference passes to nn.LayerNorm.
// shift/scale are read from the adaLN output: mod[n·modStride + shiftOffset + d] and
// mod[n·modStride + scaleOffset + d].
//
// v1: one work item per token row, two passes over D (statistics, then normalize+modulate);
//     grid-stride, no shared memory — runs well on the CPU accelerator.
// v2 (LayerNormModulateV2.cs): one warp per row, float4 loads, the row in registers, optional bf16 output.
//
// host (LayerNormModulateHost.cs): the host backend's version, Vector256 passes over each row.
//
// Run picks the version: the host version on the host backend; v2 on CUDA when the shapes allow it
// (D % 4 == 0, D ≤ 1536, aligned views), otherwise v1 (logged once per reason); the simulator runs v1.
// RunVersion runs a named version (tests, kernel harness); version 0 is the host version.
using BlockDance.Kernels.Harness;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class LayerNormModulate
{
    public const float Eps = 1e-6f;

    public static void Reference(float[] x, float[] mod, float[] y, int rows, int d, int rowsPerSample,
        int modStride, int shiftOffset, int scaleOffset)
    {
        for (int r = 0; r < rows; r++)
        {
            double mean = 0, var = 0;
            for (int i = 0; i < d; i++) mean += x[r * d + i];
            mean /= d;
            for (int i = 0; i < d; i++) { double e = x[r * d + i] - mean; var += e * e; }
            var /= d;
            double rstd = 1.0 / Math.Sqrt(var + Eps);
            int s = r / rowsPerSample;
            for (int i = 0; i < d; i++)
                y[r * d + i] = (float)((x[r * d + i] - mean) * rstd) * (1f + mod[s * modStride + scaleOffset + i])
                               + mod[s * modStride + shiftOffset + i];
        }
    }

    [GpuKernel("layernorm_modulate")]
    static void Kernel(Index1D index, ArrayView<float> x, ArrayView<float> mod, ArrayView<float> y, int rows, int d,
        int rowsPerSample, int modStride, int shiftOffset, int scaleOffset, int width)
    {
        for (int r = index; r < rows; r += width)
        {
            long o = (long)r * d;
            float sum = 0;
            for (int i = 0; i < d; i++) sum += x[o + i];
            float mean = sum / d;
            float sq = 0;
            for (int i = 0; i < d; i++) { float e = x[o + i] - mean; sq += e * e; }
            float rstd = 1f / MathF.Sqrt(sq / d + Eps);
            long m = (long)(r / rowsPerSample) * modStride;
            for (int i = 0; i < d; i++)
                y[o + i] = (x[o + i] - mean) * rstd * (1f + mod[m + scaleOffset + i]) + mod[m + shiftOffset + i];
        }
    }

    /// <summary>y (rows, d) = LN(x) · (1 + scale) + shift, rows grouped rowsPerSample per sample; the best version for the device.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float> mod, ArrayView<float> y, int rows, int d,
        int rowsPerSample, int modStride, int shiftOffset, int scaleOffset)
    {
        int version = Choose(dev, x, mod, y, d, modStride, shiftOffset, scaleOffset);
        RunVersion(dev, version, x, mod, y, rows, d, rowsPerSample, modStride, shiftOffset, scaleOffset);
    }

    /// <summary>0 (host) on the host backend, else 1 or 2; logs (once per reason) when CUDA has to stay on v1.</summary>
    public static int Choose(ComputeDevice dev, ArrayView<float> x, ArrayView<float> mod, ArrayView<float> y, int d,
        int modStride, int shiftOffset, int scaleOffset)
    {
        if (dev.IsHost) return 0;
        if (!dev.IsCuda) return 1;
        if (LayerNormModulateV2.Supports(d, modStride, shiftOffset, scaleOffset) && Chunks.Aligned16(x) && Chunks.Aligned16(mod) && Chunks.Aligned16(y))
        {
            KernelChoice.Once($"layernorm: v2 (warp per row, float4 loads) on {dev.Name}");
            return 2;
        }
        KernelChoice.Once($"layernorm: v1 (one thread per row, slower) for d {d}, modulation stride {modStride}: v2 needs d ≤ {LayerNormModulateV2.MaxD}, multiples of 4 and aligned views");
        return 1;
    }

    public static void RunVersion(ComputeDevice dev, int version, ArrayView<float> x, ArrayView<float> mod, ArrayView<float> y, int rows, int d,
        int rowsPerSample, int modStride, int shiftOffset, int scaleOffset)
    {
        switch (version)
        {
            case 0: RunHost(dev, x, mod, y, rows, d, rowsPerSample, modStride, shiftOffset, scaleOffset); break;
            case 1: RunV1(dev, x, mod, y, rows, d, rowsPerSample, modStride, shiftOffset, scaleOffset); break;
            case 2: LayerNormModulateV2.Run(dev, x, mod, y, rows, d, rowsPerSample, modStride, shiftOffset, scaleOffset); break;
            default: throw new ArgumentOutOfRangeException(nameof(version), $"layernorm: expected version 0 (host), 1 or 2, found {version}");
        }
    }

    /// <summary>The host version (host backend only).</summary>
    public static void RunHost(ComputeDevice dev, ArrayView<float> x, ArrayView<float> mod, ArrayView<float> y, int rows, int d,
        int rowsPerSample, int modStride, int shiftOffset, int scaleOffset)
    {
        CheckSizes(x, mod, y, rows, d, rowsPerSample, modStride);
        LayerNormModulateHost.Run(dev, x, mod, y, rows, d, rowsPerSample, modStride, shiftOffset, scaleOffset);
    }

    static void CheckSizes(ArrayView<float> x, ArrayView<float> mod, ArrayView<float> y, int rows, int d, int rowsPerSample, int modStride)
    {
        Check.Size("layernorm x", x.Length, (long)rows * d);
        Check.Size("layernorm y", y.Length, (long)rows * d);
        Check.Size("layernorm modulation", mod.Length, (long)((rows + rowsPerSample - 1) / rowsPerSample) * modStride);
    }

    /// <summary>The v1 kernel (one work item per row, grid-stride).</summary>
    public static void RunV1(ComputeDevice dev, ArrayView<float> x, ArrayView<float> mod, ArrayView<float> y, int rows, int d,
        int rowsPerSample, int modStride, int shiftOffset, int scaleOffset)
    {
        CheckSizes(x, mod, y, rows, d, rowsPerSample, modStride);
        int width = dev.LaunchWidth(rows);
        dev.Kernels.Get("layernorm_modulate", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, int, int, int, int, int, int, int>(Kernel))
            (width, x, mod, y, rows, d, rowsPerSample, modStride, shiftOffset, scaleOffset, width);
    }
}
