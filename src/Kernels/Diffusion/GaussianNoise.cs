// The project's seeded Gaussian noise, generated on the device (no host traffic per step).
//
// Counter-based: element i of stream s under seed k is a pure function of (k, s, i):
//   h1 = SplitMix64(k ⊕ SplitMix64(s·2⁶⁴/φ + i)), h2 = SplitMix64(h1)
//   u1 = (h1 >> 40 + 1) / 2²⁴ ∈ (0, 1],  u2 = (h2 >> 40) / 2²⁴ ∈ [0, 1)
//   z  = √(−2 ln u1) · cos(2π u2)                                  (Box–Muller)
// Streams: 0 = the starting noise x_T, 1 + step = the DDPM noise of that step (and DDIM with η > 0).
// Same seed, same device → bit-identical noise. Across devices (CPU vs CUDA) the integers agree
// exactly; log/cos may differ in the last bit.
// The host backend (`--device cpu`) calls the same Sample per element: the same bytes as the ILGPU kernel.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class GaussianNoise
{
    const ulong Golden = 0x9E3779B97F4A7C15UL;

    static ulong SplitMix64(ulong z)
    {
        z += Golden;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    public static float Sample(ulong seed, ulong stream, ulong i)
    {
        ulong h1 = SplitMix64(seed ^ SplitMix64(stream * Golden + i));
        ulong h2 = SplitMix64(h1);
        float u1 = ((h1 >> 40) + 1) * (1f / 16777216f);
        float u2 = (h2 >> 40) * (1f / 16777216f);
        return MathF.Sqrt(-2f * MathF.Log(u1)) * MathF.Cos(2f * MathF.PI * u2);
    }

    public static float[] Reference(ulong seed, ulong stream, long count)
    {
        var o = new float[count];
        for (long i = 0; i < count; i++) o[i] = Sample(seed, stream, (ulong)i);
        return o;
    }

    static void Kernel(Index1D index, ArrayView<float> o, ulong seed, ulong stream, long offset, int width)
    {
        for (long i = index; i < o.Length; i += width) o[i] = Sample(seed, stream, (ulong)(offset + i));
    }

    /// <summary>o[i] = element offset + i of the stream, so a sample's noise does not depend on how
    /// samples are batched (offset = first sample · C·H·W).</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> o, ulong seed, ulong stream, long offset = 0)
    {
        if (dev.IsHost)
        {
            HostSimd.Elementwise(dev, "gaussian_noise_host", o.Length, (s, e) =>
            {
                float* op = Host.Ptr(o);
                for (long i = s; i < e; i++) op[i] = Sample(seed, stream, (ulong)(offset + i));
            });
            return;
        }
        int width = dev.LaunchWidth(o.Length);
        dev.Kernels.Get("gaussian_noise", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ulong, ulong, long, int>(Kernel))
            (width, o, seed, stream, offset, width);
    }
}
