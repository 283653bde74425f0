// Sinusoidal timestep features (t_embedder.timestep_embedding), the input of t_embedder.mlp:
//   freq_k = exp(−ln(10000)·k/half), half = 128, args = t·freq_k
//   emb[n] = [cos(args) | sin(args)]   (cos first, as in the DiT reference; 256 dims)
// t is the ORIGINAL integer timestep (0..999) as a float, even when sampling with respaced steps.
// The frequencies are computed on the host in float64 and rounded once to float32 (the value
// PyTorch's float32 exp produces), the products t·freq in float32 exactly as PyTorch does.
// host: the host backend's version (`--device cpu`): the same formula, one work item per row (same bytes).
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class TimestepEmbedding
{
    public const int Dim = 256;
    public const double MaxPeriod = 10000;

    public static float[] Frequencies(int dim = Dim, double freqShift = 0)
    {
        int half = dim / 2;
        var f = new float[half];
        for (int k = 0; k < half; k++) f[k] = (float)Math.Exp(-Math.Log(MaxPeriod) * k / (half - freqShift));
        return f;
    }

    public static void Reference(float[] t, float[] freqs, float[] o)
    {
        int half = freqs.Length;
        for (int n = 0; n < t.Length; n++)
            for (int k = 0; k < half; k++)
            {
                float arg = t[n] * freqs[k];
                o[n * 2 * half + k] = (float)Math.Cos(arg);
                o[n * 2 * half + half + k] = (float)Math.Sin(arg);
            }
    }

    static void Kernel(Index1D index, ArrayView<float> t, ArrayView<float> freqs, ArrayView<float> o, int n, int half, int width)
    {
        for (long idx = index; idx < (long)n * half; idx += width)
        {
            int k = (int)(idx % half), s = (int)(idx / half);
            float arg = t[s] * freqs[k];
            o[(long)s * 2 * half + k] = (float)Math.Cos(arg);
            o[(long)s * 2 * half + half + k] = (float)Math.Sin(arg);
        }
    }

    // One t for every row (a sampling step): passed as a kernel argument, so the step uploads nothing.
    static void KernelUniform(Index1D index, float t, ArrayView<float> freqs, ArrayView<float> o, int n, int half, int width)
    {
        for (long idx = index; idx < (long)n * half; idx += width)
        {
            int k = (int)(idx % half), s = (int)(idx / half);
            float arg = t * freqs[k];
            o[(long)s * 2 * half + k] = (float)Math.Cos(arg);
            o[(long)s * 2 * half + half + k] = (float)Math.Sin(arg);
        }
    }

    /// <summary>o (n, 2·half) = [cos(t·freq) | sin(t·freq)], the same t for all n rows (no host → device copy).</summary>
    public static void RunUniform(ComputeDevice dev, float t, ArrayView<float> freqs, ArrayView<float> o, int n)
    {
        int half = (int)freqs.Length;
        Check.Size("timestep out", o.Length, 2L * n * half);
        if (dev.IsHost) { RunHost(dev, "timestep_embedding_uniform_host", _ => t, freqs, o, n, half); return; }
        int width = dev.LaunchWidth((long)n * half);
        dev.Kernels.Get("timestep_embedding_uniform", a => a.LoadAutoGroupedStreamKernel<Index1D, float, ArrayView<float>,
                ArrayView<float>, int, int, int>(KernelUniform))
            (width, t, freqs, o, n, half, width);
    }

    /// <summary>o (n, 2·half) = [cos(t·freq) | sin(t·freq)] for t (n).</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> t, ArrayView<float> freqs, ArrayView<float> o, int n)
    {
        int half = (int)freqs.Length;
        Check.Size("timestep t", t.Length, n);
        Check.Size("timestep out", o.Length, 2L * n * half);
        if (dev.IsHost) { RunHost(dev, "timestep_embedding_host", s => Host.Ptr(t)[s], freqs, o, n, half); return; }
        int width = dev.LaunchWidth((long)n * half);
        dev.Kernels.Get("timestep_embedding", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, int, int, int>(Kernel))
            (width, t, freqs, o, n, half, width);
    }

    static void RunHost(ComputeDevice dev, string name, Func<int, float> timeOf, ArrayView<float> freqs, ArrayView<float> o, int n, int half) =>
        Host.For(dev, name, n, s =>
        {
            float t = timeOf(s);
            float* f = Host.Ptr(freqs), row = Host.Ptr(o) + (long)s * 2 * half;
            for (int k = 0; k < half; k++)
            {
                float arg = t * f[k];
                row[k] = (float)Math.Cos(arg);
                row[half + k] = (float)Math.Sin(arg);
            }
        });
}
