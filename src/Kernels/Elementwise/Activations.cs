// Pointwise activations shared by kernels and references. Written once so the device code and the
// host reference compute exactly the same formula.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class Activations
{
    /// <summary>GELU, tanh approximation (nn.GELU(approximate="tanh")): 0.5·u·(1 + tanh(√(2/π)·(u + 0.044715·u³))).</summary>
    public static float GeluTanh(float u)
    {
        const float k = 0.7978845608028654f; // √(2/π)
        return 0.5f * u * (1f + MathF.Tanh(k * (u + 0.044715f * u * u * u)));
    }

    /// <summary>Relative error bound of tanh as `dev` evaluates MathF.Tanh. CUDA: ILGPU lowers it to
    /// tanh.approx.f32 (see `blockdance ptx --kernel gelu --out DIR`), whose PTX ISA bound is 2⁻¹¹ relative
    /// (to be confirmed by the first GPU run); the CPU (host backend and simulator): .NET's MathF.Tanh, within a
    /// few ulps (2⁻²¹).</summary>
    public static double TanhRelativeError(ComputeDevice dev) => dev.IsCuda ? 1.0 / 2048 : 1.0 / (1 << 21);

    /// <summary>Bound on |GeluTanh(u) − exact| from tanh alone for |u| ≤ maxAbsInput: GELU = ½·u·(1 + tanh(·)),
    /// so an error δ·|tanh| ≤ δ in tanh moves it by ≤ ½·|u|·δ. Tests add it to their fp32 tolerance.</summary>
    public static double GeluTanhError(ComputeDevice dev, double maxAbsInput) => 0.5 * maxAbsInput * TanhRelativeError(dev);

    /// <summary>SiLU(u) = u · sigmoid(u).</summary>
    public static float Silu(float u) => u / (1f + MathF.Exp(-u));

    // ------------------------------------------------------------ SiLU kernel (y = SiLU(x), elementwise)
    static void SiluKernel(Index1D index, ArrayView<float> x, ArrayView<float> y, int width)
    {
        for (long i = index; i < x.Length; i += width) y[i] = Silu(x[i]);
    }

    public static void SiluRun(ComputeDevice dev, ArrayView<float> x, ArrayView<float> y)
    {
        Check.Size("silu y", y.Length, x.Length);
        if (dev.IsHost)
        {
            HostSimd.Elementwise(dev, "silu_host", x.Length, (s, e) =>
            {
                float* xp = Host.Ptr(x), yp = Host.Ptr(y);
                for (long i = s; i < e; i++) yp[i] = Silu(xp[i]);
            });
            return;
        }
        int width = dev.LaunchWidth(x.Length);
        dev.Kernels.Get("silu", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int>(SiluKernel))
            (width, x, y, width);
    }
}
