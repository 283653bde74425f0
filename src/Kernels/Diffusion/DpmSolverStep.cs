// One DPM-Solver++ (2M) update (Lu et al., "DPM-Solver++", multistep, data prediction), elementwise over the
// sample x (B, C, H, W), reading eps = out[:, :C] of the (guided) model output (≥B, C_out, H, W) and the
// previous step's data prediction prev (B, C, H, W):
//   x0    = (x − σ_k·eps) / α_k                          data prediction at step k
//   x'    = A·x + B·x0 + D·(x0 − prev)                   A = σ_{k+1}/σ_k, B = −α_{k+1}·expm1(−h)
//                                                        D = ½·B / r (second order, midpoint), 0 (first order)
//   prev ← x0                                            kept for the next step's second-order term
// The coefficients are computed in float64 by the sampler (DpmSolver in the sampling library) and passed as
// float32. The last step (σ_{k+1} = 0, α_{k+1} = 1, h = ∞) has A = 0, B = 1, D = 0: x' = x0.
//
// v1 (this file): grid-stride, no shared memory.
// host: the host backend's version (`--device cpu`): the same scalar formula per element, so the same bytes
//     as the ILGPU kernel; chunks of HostSimd.ElementChunk elements over the threads.
using BlockDance.Kernels.Harness;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

/// <summary>float32 constants of one DPM-Solver++ step.</summary>
public readonly record struct DpmCoefficients(float Alpha, float Sigma, float A, float B, float D);

public static unsafe class DpmSolverStep
{
    public static void Reference(float[] x, float[] o, float[] prev, int b, int c, int hw, int cOut, DpmCoefficients k)
    {
        for (int s = 0; s < b; s++)
            for (int ch = 0; ch < c; ch++)
                for (int i = 0; i < hw; i++)
                {
                    int xi = (s * c + ch) * hw + i;
                    float eps = o[(s * cOut + ch) * hw + i];
                    float x0 = (x[xi] - k.Sigma * eps) / k.Alpha;
                    x[xi] = k.A * x[xi] + k.B * x0 + k.D * (x0 - prev[xi]);
                    prev[xi] = x0;
                }
    }

    [GpuKernel("dpm_solver_step")]
    static void Kernel(Index1D index, ArrayView<float> x, ArrayView<float> o, ArrayView<float> prev, int b, int c, int hw, int cOut,
        DpmCoefficients k, int width)
    {
        long total = (long)b * c * hw;
        for (long xi = index; xi < total; xi += width)
        {
            int i = (int)(xi % hw), ch = (int)(xi / hw % c), s = (int)(xi / hw / c);
            float eps = o[((long)s * cOut + ch) * hw + i];
            float x0 = (x[xi] - k.Sigma * eps) / k.Alpha;
            x[xi] = k.A * x[xi] + k.B * x0 + k.D * (x0 - prev[xi]);
            prev[xi] = x0;
        }
    }

    /// <summary>x (b, c, hw) ← one DPM-Solver++ step from model output o (≥b, cOut, hw); prev (b, c, hw) ← x0.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float> o, ArrayView<float> prev, int b, int c, int hw, int cOut, DpmCoefficients k)
    {
        Check.Size("dpm-solver x", x.Length, (long)b * c * hw);
        Check.Size("dpm-solver previous x0", prev.Length, (long)b * c * hw);
        if (o.Length < (long)b * cOut * hw || cOut < c)
            throw new ArgumentException($"dpm-solver: model output of {o.Length} values, {cOut} channels, for {b}×{c}×{hw}");
        if (dev.IsHost)
        {
            HostSimd.Elementwise(dev, "dpm_solver_step_host", (long)b * c * hw, (start, end) =>
            {
                float* xp = Host.Ptr(x), op = Host.Ptr(o), pp = Host.Ptr(prev);
                for (long xi = start; xi < end; xi++)
                {
                    int i = (int)(xi % hw), ch = (int)(xi / hw % c), s = (int)(xi / hw / c);
                    float eps = op[((long)s * cOut + ch) * hw + i];
                    float x0 = (xp[xi] - k.Sigma * eps) / k.Alpha;
                    xp[xi] = k.A * xp[xi] + k.B * x0 + k.D * (x0 - pp[xi]);
                    pp[xi] = x0;
                }
            });
            return;
        }
        int width = dev.LaunchWidth((long)b * c * hw);
        dev.Kernels.Get("dpm_solver_step", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                int, int, int, int, DpmCoefficients, int>(Kernel))
            (width, x, o, prev, b, c, hw, cOut, k, width);
    }
}
