// Host version of GroupNorm (+SiLU) over NCHW (host backend, `--device cpu`): one work item per (b, g), whose
// group is one contiguous range of (C/G)·H·W values:
//   mean = Σx / n and M2 = Σ(x − mean)², each summed in float over chunks of GroupNorm.ChunkElements values
//   (8 lanes, then the lanes in order) and the chunk sums added in float64: no E[x²] − E[x]² cancellation,
//   and a 1M-value group keeps float64 accuracy across chunks;
//   y = (x − mean)·rstd·gamma[c] + beta[c], then SiLU (v / (1 + exp(−v)), Vector256.Exp) when asked.
// The order is fixed by the shape alone, so any thread count gives the same bytes. No scratch buffer.
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class GroupNormHost
{
    public const string Kernel = "groupnorm_host";

    /// <summary>Same contract as GroupNorm.Run (sizes checked there); y may be x.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float> gamma, ArrayView<float> beta, ArrayView<float> y,
        int batch, int channels, long hw, int groups, float eps, bool silu)
    {
        int cg = channels / groups;
        long n = cg * hw;
        Host.For(dev, Kernel, batch * groups, bg =>
        {
            float* xs = Host.Ptr(x) + bg * n, ys = Host.Ptr(y) + bg * n;
            double sum = 0;
            for (long i = 0; i < n; i += GroupNorm.ChunkElements) sum += HostSimd.Sum(xs + i, (int)Math.Min(GroupNorm.ChunkElements, n - i));
            float mean = (float)(sum / n);
            double m2 = 0;
            for (long i = 0; i < n; i += GroupNorm.ChunkElements) m2 += HostSimd.SumSquaredDeviation(xs + i, (int)Math.Min(GroupNorm.ChunkElements, n - i), mean);
            float rstd = (float)(1.0 / Math.Sqrt(m2 / n + eps));
            int g = bg % groups;
            for (int c = 0; c < cg; c++)
                Normalize(xs + c * hw, ys + c * hw, hw, mean, rstd, Host.Ptr(gamma)[g * cg + c], Host.Ptr(beta)[g * cg + c], silu);
        });
    }

    static void Normalize(float* x, float* y, long count, float mean, float rstd, float gamma, float beta, bool silu)
    {
        var vm = Vector256.Create(mean);
        var vr = Vector256.Create(rstd);
        var vg = Vector256.Create(gamma);
        var vb = Vector256.Create(beta);
        var one = Vector256.Create(1f);
        long i = 0;
        for (; i + HostSimd.Lanes <= count; i += HostSimd.Lanes)
        {
            var v = HostSimd.MulAdd((Vector256.Load(x + i) - vm) * vr, vg, vb);
            if (silu) v /= one + Vector256.Exp(-v);
            v.Store(y + i);
        }
        for (; i < count; i++)
        {
            float v = HostSimd.MulAdd((x[i] - mean) * rstd, gamma, beta);
            y[i] = silu ? Activations.Silu(v) : v;
        }
    }
}
