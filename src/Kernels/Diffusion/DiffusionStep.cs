// The per-step update of the samplers, elementwise over the sample x (B, C, H, W), reading the
// (guided) model output out (≥B, 2C or C, H, W): eps = out[:, :C], v = out[:, C:2C].
// The per-step constants are computed by the schedule in float64 and passed as float32.
//
//   x0     = √(1/ᾱ)·x − √(1/ᾱ − 1)·eps                  (no clipping, as the reference script)
//   DDIM   x' = x0·√ᾱ_prev + √(1 − ᾱ_prev − σ²)·eps + σ·z          (σ = 0 for η = 0)
//   DDPM   mean = coef1·x0 + coef2·x
//          f = (v + 1)/2,  log σ² = f·log β' + (1 − f)·log pv_clipped   (learned range)
//          x' = mean + [i ≠ 0]·exp(½ log σ²)·z
//          The last step (i = 0, t = 0) is the posterior mean alone: its variance is 0 (log σ² = −∞ when only one
//          step is kept), and 0·exp(½·(f·log β + (1 − f)·(−∞))) is NaN for f ≥ 1, so the noise term is skipped, not
//          multiplied by 0. With one step, mean = x0 (coef1 = 1, coef2 = 0).
// host: the host backend's version (`--device cpu`): the same scalar formulas per element, so the same bytes
//     as the ILGPU kernels; chunks of HostSimd.ElementChunk elements over the threads.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

/// <summary>float32 constants of one sampler step (see Schedule in the sampler).</summary>
public readonly record struct StepCoefficients(
    float SqrtRecipAlpha, float SqrtRecipM1Alpha,   // x0 from eps
    float A, float B, float Sigma,                  // DDIM: x' = A·x0 + B·eps + Sigma·z
    float Coef1, float Coef2, float LogBeta, float LogPv, float NoiseScale); // DDPM

public static unsafe class DiffusionStep
{
    public static void DdimReference(float[] x, float[] o, float[]? z, int b, int c, int hw, int cOut, StepCoefficients k)
    {
        for (int s = 0; s < b; s++)
            for (int ch = 0; ch < c; ch++)
                for (int i = 0; i < hw; i++)
                {
                    int xi = (s * c + ch) * hw + i;
                    float eps = o[(s * cOut + ch) * hw + i];
                    float x0 = k.SqrtRecipAlpha * x[xi] - k.SqrtRecipM1Alpha * eps;
                    x[xi] = x0 * k.A + k.B * eps + (z == null ? 0f : k.Sigma * z[xi]);
                }
    }

    static void DdimKernel(Index1D index, ArrayView<float> x, ArrayView<float> o, ArrayView<float> z, int b, int c, int hw, int cOut,
        StepCoefficients k, int useNoise, int width)
    {
        long total = (long)b * c * hw;
        for (long xi = index; xi < total; xi += width)
        {
            int i = (int)(xi % hw), ch = (int)(xi / hw % c), s = (int)(xi / hw / c);
            float eps = o[((long)s * cOut + ch) * hw + i];
            float x0 = k.SqrtRecipAlpha * x[xi] - k.SqrtRecipM1Alpha * eps;
            float v = x0 * k.A + k.B * eps;
            if (useNoise != 0) v += k.Sigma * z[xi];
            x[xi] = v;
        }
    }

    public static void DdpmReference(float[] x, float[] o, float[] z, int b, int c, int hw, int cOut, StepCoefficients k)
    {
        for (int s = 0; s < b; s++)
            for (int ch = 0; ch < c; ch++)
                for (int i = 0; i < hw; i++)
                {
                    int xi = (s * c + ch) * hw + i;
                    float eps = o[(s * cOut + ch) * hw + i], v = o[(s * cOut + c + ch) * hw + i];
                    float x0 = k.SqrtRecipAlpha * x[xi] - k.SqrtRecipM1Alpha * eps;
                    float mean = k.Coef1 * x0 + k.Coef2 * x[xi];
                    if (k.NoiseScale == 0f) { x[xi] = mean; continue; }   // the last step: the mean, no noise term
                    float f = (v + 1f) / 2f;
                    float logVar = f * k.LogBeta + (1f - f) * k.LogPv;
                    x[xi] = mean + k.NoiseScale * MathF.Exp(0.5f * logVar) * z[xi];
                }
    }

    static void DdpmKernel(Index1D index, ArrayView<float> x, ArrayView<float> o, ArrayView<float> z, int b, int c, int hw, int cOut,
        StepCoefficients k, int width)
    {
        long total = (long)b * c * hw;
        for (long xi = index; xi < total; xi += width)
        {
            int i = (int)(xi % hw), ch = (int)(xi / hw % c), s = (int)(xi / hw / c);
            float eps = o[((long)s * cOut + ch) * hw + i], v = o[((long)s * cOut + c + ch) * hw + i];
            float x0 = k.SqrtRecipAlpha * x[xi] - k.SqrtRecipM1Alpha * eps;
            float mean = k.Coef1 * x0 + k.Coef2 * x[xi];
            if (k.NoiseScale == 0f)
            {
                x[xi] = mean;   // the last step: the posterior mean (see the header)
                continue;
            }
            float f = (v + 1f) / 2f;
            float logVar = f * k.LogBeta + (1f - f) * k.LogPv;
            x[xi] = mean + k.NoiseScale * MathF.Exp(0.5f * logVar) * z[xi];
        }
    }

    /// <summary>x (b, c, hw) ← DDIM step from model output o (≥b, cOut, hw); z may be default when Sigma = 0.</summary>
    public static void Ddim(ComputeDevice dev, ArrayView<float> x, ArrayView<float> o, ArrayView<float> z, int b, int c, int hw, int cOut, StepCoefficients k)
    {
        Check.Size("ddim x", x.Length, (long)b * c * hw);
        Check.Size("ddim model output", o.Length, (long)b * cOut * hw);
        bool noise = k.Sigma != 0f;
        if (noise) Check.Size("ddim noise", z.Length, (long)b * c * hw);
        if (dev.IsHost)
        {
            HostSimd.Elementwise(dev, "ddim_step_host", (long)b * c * hw, (start, end) =>
            {
                float* xp = Host.Ptr(x), op = Host.Ptr(o), zp = noise ? Host.Ptr(z) : null;
                for (long xi = start; xi < end; xi++)
                {
                    int i = (int)(xi % hw), ch = (int)(xi / hw % c), s = (int)(xi / hw / c);
                    float eps = op[((long)s * cOut + ch) * hw + i];
                    float x0 = k.SqrtRecipAlpha * xp[xi] - k.SqrtRecipM1Alpha * eps;
                    float v = x0 * k.A + k.B * eps;
                    if (noise) v += k.Sigma * zp[xi];
                    xp[xi] = v;
                }
            });
            return;
        }
        int width = dev.LaunchWidth((long)b * c * hw);
        dev.Kernels.Get("ddim_step", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                int, int, int, int, StepCoefficients, int, int>(DdimKernel))
            (width, x, o, noise ? z : x, b, c, hw, cOut, k, noise ? 1 : 0, width);
    }

    /// <summary>x (b, c, hw) ← DDPM learned-range step from model output o (≥b, 2c, hw) and noise z (b, c, hw).</summary>
    public static void Ddpm(ComputeDevice dev, ArrayView<float> x, ArrayView<float> o, ArrayView<float> z, int b, int c, int hw, int cOut, StepCoefficients k)
    {
        Check.Size("ddpm x", x.Length, (long)b * c * hw);
        Check.Size("ddpm model output", o.Length, (long)b * cOut * hw);
        Check.Size("ddpm noise", z.Length, (long)b * c * hw);
        if (cOut < 2 * c) throw new ArgumentException($"DDPM with learned variance needs {2 * c} output channels (eps | v), the model has {cOut}");
        if (dev.IsHost)
        {
            HostSimd.Elementwise(dev, "ddpm_step_host", (long)b * c * hw, (start, end) =>
            {
                float* xp = Host.Ptr(x), op = Host.Ptr(o), zp = Host.Ptr(z);
                for (long xi = start; xi < end; xi++)
                {
                    int i = (int)(xi % hw), ch = (int)(xi / hw % c), s = (int)(xi / hw / c);
                    float eps = op[((long)s * cOut + ch) * hw + i], v = op[((long)s * cOut + c + ch) * hw + i];
                    float x0 = k.SqrtRecipAlpha * xp[xi] - k.SqrtRecipM1Alpha * eps;
                    float mean = k.Coef1 * x0 + k.Coef2 * xp[xi];
                    if (k.NoiseScale == 0f) { xp[xi] = mean; continue; }   // the last step: the mean, no noise term
                    float f = (v + 1f) / 2f;
                    float logVar = f * k.LogBeta + (1f - f) * k.LogPv;
                    xp[xi] = mean + k.NoiseScale * MathF.Exp(0.5f * logVar) * zp[xi];
                }
            });
            return;
        }
        int width = dev.LaunchWidth((long)b * c * hw);
        dev.Kernels.Get("ddpm_step", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                int, int, int, int, StepCoefficients, int>(DdpmKernel))
            (width, x, o, z, b, c, hw, cOut, k, width);
    }
}
