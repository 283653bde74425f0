// Per-row linear combination of up to four feature buffers, for the feature caches (src/Cache):
//
//   out[r, e] = Σ_{j < m} W[r, j] · in_j[r, e]        r < rows, e < rowLen, m ≤ 4
//
// One op serves every cache arithmetic: a residual reuse h_e = h_s + R (weights 1, 1), a residual
// R = h_e − h_s (1, −1), a Taylor forecast F + (F − F')·k/Δ (1 + k/Δ, −k/Δ), and keeping or shifting a
// row's history (a row whose weights are (1, 0, …) on itself keeps its value). Weights are per row, so
// every sample of a batch can take its own decision. A term whose weight is exactly 0 is not read (its
// buffer may hold anything), and a weight of exactly 1 adds the value itself: a combination that only
// copies or adds is exact. out may be one of the inputs (each element reads its inputs before it writes).
//
// v1 (the only version): one thread per element; the op is memory-bound and small next to a block.
// Weights come either per row from a device buffer (Run: rows that took different decisions) or, the same
// for every row, as kernel arguments (RunUniform: nothing to upload, so a step with a fixed schedule copies
// nothing to the device). Both kernels are one formula (Combine, over where the weights come from: IWeights), so
// they do the same arithmetic in the same order: the same bits.
// host: the host backend's version (`--device cpu`): the same scalar formula per element, so the same bytes
//     as the ILGPU kernel; chunks of HostSimd.ElementChunk elements over the threads.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class FeatureCombine
{
    public const int MaxInputs = 4;

    /// <summary>The plain reference: weights (rows, 4), inputs each (rows · rowLen).</summary>
    public static void Reference(float[] output, float[][] inputs, float[] weights, int rows, int rowLen)
    {
        for (int r = 0; r < rows; r++)
            for (int e = 0; e < rowLen; e++)
            {
                long i = (long)r * rowLen + e;
                float acc = 0f;
                bool first = true;
                for (int j = 0; j < inputs.Length; j++)
                {
                    float w = weights[r * MaxInputs + j];
                    if (w == 0f) continue;
                    float v = w == 1f ? inputs[j][i] : w * inputs[j][i];
                    acc = first ? v : acc + v;
                    first = false;
                }
                output[i] = acc;
            }
    }

    // Where the weights of element i's row come from: per row from a device buffer, or one set as kernel arguments.
    interface IWeights
    {
        int Row(long i);
        float Get(int row, int j);
    }

    readonly struct PerRow(ArrayView<float> weights, int rowLen) : IWeights
    {
        readonly ArrayView<float> w = weights;
        readonly int len = rowLen;
        public int Row(long i) => (int)(i / len);
        public float Get(int row, int j) => w[row * MaxInputs + j];
    }

    readonly struct Uniform(float w0, float w1, float w2, float w3) : IWeights
    {
        readonly float a = w0, b = w1, c = w2, d = w3;
        public int Row(long i) => 0;
        public float Get(int row, int j) => j == 0 ? a : j == 1 ? b : j == 2 ? c : d;
    }

    // The one formula of both kernels (and of Reference): terms of weight 0 are not read, a weight of 1 adds the value itself.
    static void Combine<TW>(Index1D index, ArrayView<float> output, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> d,
        TW weights, int m, long total, int width) where TW : struct, IWeights
    {
        for (long i = index; i < total; i += width)
        {
            int r = weights.Row(i);
            float acc = 0f;
            bool first = true;
            for (int j = 0; j < m; j++)
            {
                float w = weights.Get(r, j);
                if (w == 0f) continue;
                float x = j == 0 ? a[i] : j == 1 ? b[i] : j == 2 ? c[i] : d[i];
                float v = w == 1f ? x : w * x;
                acc = first ? v : acc + v;
                first = false;
            }
            output[i] = acc;
        }
    }

    static void Kernel(Index1D index, ArrayView<float> output, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> d,
        ArrayView<float> weights, int m, int rowLen, long total, int width) =>
        Combine(index, output, a, b, c, d, new PerRow(weights, rowLen), m, total, width);

    static void UniformKernel(Index1D index, ArrayView<float> output, ArrayView<float> a, ArrayView<float> b, ArrayView<float> c, ArrayView<float> d,
        float w0, float w1, float w2, float w3, int m, long total, int width) =>
        Combine(index, output, a, b, c, d, new Uniform(w0, w1, w2, w3), m, total, width);

    /// <summary>The launchers' checks; the four input views, the missing ones standing in for the first (never read: m terms).</summary>
    static ArrayView<float>[] Inputs(ArrayView<float> output, ArrayView<float>[] inputs, long total)
    {
        if (inputs.Length is < 1 or > MaxInputs) throw new ArgumentException($"feature combine: 1..{MaxInputs} inputs, found {inputs.Length}");
        Check.Size("feature combine output", output.Length, total);
        foreach (var x in inputs) Check.Size("feature combine input", x.Length, total);
        var v = new ArrayView<float>[MaxInputs];
        for (int j = 0; j < MaxInputs; j++) v[j] = j < inputs.Length ? inputs[j] : inputs[0];
        return v;
    }

    /// <summary>output = Σ_j W[r, j]·inputs[j] over the first rows·rowLen elements; weights is (rows, 4) on the device.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> output, ArrayView<float>[] inputs, ArrayView<float> weights, int rows, int rowLen)
    {
        long total = (long)rows * rowLen;
        var v = Inputs(output, inputs, total);
        Check.Size("feature combine weights", weights.Length, (long)rows * MaxInputs);
        if (dev.IsHost) { CombineHost(dev, "feature_combine_host", output, v, inputs.Length, total, rowLen, weights, null); return; }
        int width = dev.LaunchWidth(total);
        dev.Kernels.Get("feature_combine", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, long, int>(Kernel))
            (width, output, v[0], v[1], v[2], v[3], weights, inputs.Length, rowLen, total, width);
    }

    /// <summary>output = Σ_j w[j]·inputs[j] over the first rows·rowLen elements, the same weights (≤ 4, host values) for every row.</summary>
    public static void RunUniform(ComputeDevice dev, ArrayView<float> output, ArrayView<float>[] inputs, float[] w, int rows, int rowLen)
    {
        long total = (long)rows * rowLen;
        var v = Inputs(output, inputs, total);
        if (w.Length > MaxInputs) throw new ArgumentException($"feature combine: at most {MaxInputs} weights, found {w.Length}");
        float W(int j) => j < w.Length ? w[j] : 0f;
        if (dev.IsHost) { CombineHost(dev, "feature_combine_uniform_host", output, v, inputs.Length, total, rowLen, default, [W(0), W(1), W(2), W(3)]); return; }
        int width = dev.LaunchWidth(total);
        dev.Kernels.Get("feature_combine_uniform", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, ArrayView<float>, float, float, float, float, int, long, int>(UniformKernel))
            (width, output, v[0], v[1], v[2], v[3], W(0), W(1), W(2), W(3), inputs.Length, total, width);
    }

    // The host version of both: weights per row (rowWeights, stride MaxInputs) or the same for every row (uniform).
    static void CombineHost(ComputeDevice dev, string name, ArrayView<float> output, ArrayView<float>[] v, int m, long total, int rowLen,
        ArrayView<float> rowWeights, float[]? uniform) =>
        HostSimd.Elementwise(dev, name, total, (start, end) =>
        {
            fixed (float* u = uniform)
            {
                float* wp = uniform != null ? u : Host.Ptr(rowWeights), op = Host.Ptr(output);
                int stride = uniform != null ? 0 : MaxInputs;
                float* a = Host.Ptr(v[0]), bq = Host.Ptr(v[1]), cq = Host.Ptr(v[2]), dq = Host.Ptr(v[3]);
                for (long i = start; i < end; i++)
                {
                    int r = (int)(i / rowLen);
                    float acc = 0f;
                    bool first = true;
                    for (int j = 0; j < m; j++)
                    {
                        float w = wp[r * stride + j];
                        if (w == 0f) continue;
                        float x = j == 0 ? a[i] : j == 1 ? bq[i] : j == 2 ? cq[i] : dq[i];
                        float t = w == 1f ? x : w * x;
                        acc = first ? t : acc + t;
                        first = false;
                    }
                    op[i] = acc;
                }
            }
        });
}
