// Similarity of two feature tensors, reduced on the device into a small results buffer:
//   a, b (N, T, D): a block's output at step s and at step s−1 (the whole model batch, flattened)
//   results[slot·4 + k] += Σ over all N·T·D elements of
//       k = 0: (a − b)²     k = 1: a·b     k = 2: a²     k = 3: b²
// so that MSE = results[·0] / numel and cosine = results[·1] / √(results[·2] · results[·3]).
// The sums are pooled over the samples (the batch is one long vector) and accumulate (+=), so a
// run with several batches adds them up; the caller zeroes the buffer once, runs all steps, and
// copies the buffer to the host once at the end (no host traffic per step).
// Sums are float64: cosines near 1 need 1 − cos ≈ 1e-5 resolved, which float32 sums over 10⁵–10⁶
// terms cannot do.
//
// v1 (deterministic, no atomics, no shared memory, runs on the CPU accelerator):
//   stage 1: P work items, item i grid-strides over the elements and writes its 4 partial sums
//            to partials[k·P + i]
//   stage 2: while P > FanIn, G = ⌈P / FanIn⌉ work items per k each sum every G-th partial
//            (partials ping-pong between two buffers); then 4 work items add the last ≤ FanIn
//            partials, in order, into results[slot·4 + k].
//   The summation order depends only on P, which depends only on the device and numel, so a
//   run is bit-reproducible on a given device. CPU accelerator: P = 4·cores ≤ FanIn → one pass.
// host (the host backend, `--device cpu`): one work item per chunk of HostSimd.ElementChunk elements writes its
//   4 float64 partial sums; the partials are then added in chunk order. The order depends only on numel.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class FeatureSimilarity
{
    /// <summary>Sums per slot: Σ(a−b)², Σab, Σa², Σb².</summary>
    public const int Stats = 4;
    /// <summary>Partials summed by one work item in a reduction pass.</summary>
    public const int FanIn = 64;
    /// <summary>Stage-1 work items at most (CUDA): enough to keep an H100's memory busy, and the
    /// partials stay small (32768·4 doubles = 1 MiB).</summary>
    public const int MaxPartials = 32768;

    public static void Reference(float[] a, float[] b, double[] results, int slot)
    {
        if (a.Length != b.Length) throw new ArgumentException($"feature similarity: a has {a.Length} elements, b has {b.Length}");
        double dd = 0, ab = 0, aa = 0, bb = 0;
        for (long i = 0; i < a.Length; i++)
        {
            double x = a[i], y = b[i], d = x - y;
            dd += d * d; ab += x * y; aa += x * x; bb += y * y;
        }
        results[slot * Stats + 0] += dd;
        results[slot * Stats + 1] += ab;
        results[slot * Stats + 2] += aa;
        results[slot * Stats + 3] += bb;
    }

    /// <summary>MSE and cosine of one slot's sums over `numel` elements (cosine of two zero vectors: 1).</summary>
    public static (double Mse, double Cosine) Finish(ReadOnlySpan<double> results, int slot, long numel)
    {
        double dd = results[slot * Stats], ab = results[slot * Stats + 1], aa = results[slot * Stats + 2], bb = results[slot * Stats + 3];
        double norm = Math.Sqrt(aa * bb);
        double cos = norm > 0 ? Math.Clamp(ab / norm, -1, 1) : (aa == 0 && bb == 0 ? 1 : 0);
        return (dd / numel, cos);
    }

    static void PartialsKernel(Index1D index, ArrayView<float> a, ArrayView<float> b, ArrayView<double> partials, long numel, int width)
    {
        int i = index;
        double dd = 0, ab = 0, aa = 0, bb = 0;
        for (long e = i; e < numel; e += width)
        {
            double x = a[e], y = b[e], d = x - y;
            dd += d * d; ab += x * y; aa += x * x; bb += y * y;
        }
        partials[0L * width + i] = dd;
        partials[1L * width + i] = ab;
        partials[2L * width + i] = aa;
        partials[3L * width + i] = bb;
    }

    /// <summary>src [k·count + i] → dst [k·groups + g] = Σ_{i ≡ g mod groups} src[k·count + i].</summary>
    static void ReduceKernel(Index1D index, ArrayView<double> src, ArrayView<double> dst, int count, int groups)
    {
        int item = index;
        int k = item / groups, g = item % groups;
        double s = 0;
        for (int i = g; i < count; i += groups) s += src[(long)k * count + i];
        dst[(long)k * groups + g] = s;
    }

    /// <summary>results[slot·4 + k] += Σ_i src[k·count + i], in order (4 work items).</summary>
    static void AccumulateKernel(Index1D index, ArrayView<double> src, ArrayView<double> results, int count, int slot)
    {
        int k = index;
        double s = 0;
        for (int i = 0; i < count; i++) s += src[(long)k * count + i];
        results[(long)slot * Stats + k] += s;
    }

    /// <summary>Scratch for the partial sums (two ping-pong buffers), allocated once and reused.</summary>
    public sealed class Scratch(ComputeDevice dev) : IDisposable
    {
        readonly MemoryBuffer1D<double, Stride1D.Dense> p0 = dev.Accelerator.Allocate1D<double>((long)Stats * MaxPartials);
        readonly MemoryBuffer1D<double, Stride1D.Dense> p1 = dev.Accelerator.Allocate1D<double>((long)Stats * MaxPartials);
        public ArrayView<double> First => p0.View;
        public ArrayView<double> Second => p1.View;
        public long Bytes => p0.LengthInBytes + p1.LengthInBytes;
        public void Dispose() { p0.Dispose(); p1.Dispose(); }
    }

    /// <summary>results[slot·4 + 0..3] += Σ(a−b)², Σab, Σa², Σb² over the first `numel` elements of a and b.
    /// `width` overrides the number of stage-1 work items (tests use it to force several passes).</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> a, ArrayView<float> b, long numel,
                           ArrayView<double> results, int slot, Scratch scratch, int width = 0)
    {
        Check.Size("feature similarity a", a.Length, numel);
        Check.Size("feature similarity b", b.Length, numel);
        Check.Size("feature similarity results", results.Length, (long)(slot + 1) * Stats);
        if (slot < 0) throw new ArgumentException($"feature similarity: slot must be ≥ 0, found {slot}");
        if (dev.IsHost) { RunHost(dev, a, b, numel, results, slot); return; }
        if (width <= 0) width = (int)Math.Min(dev.LaunchWidth(numel), MaxPartials);
        if (width > MaxPartials) throw new ArgumentException($"feature similarity: width {width} exceeds {MaxPartials}");

        dev.Kernels.Get("feature_similarity_partials_v1", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                ArrayView<double>, long, int>(PartialsKernel))
            (width, a, b, scratch.First, numel, width);

        var src = scratch.First;
        var dst = scratch.Second;
        int count = width;
        while (count > FanIn)
        {
            int groups = (count + FanIn - 1) / FanIn;
            dev.Kernels.Get("feature_similarity_reduce_v1", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>,
                    ArrayView<double>, int, int>(ReduceKernel))
                (Stats * groups, src, dst, count, groups);
            (src, dst) = (dst, src);
            count = groups;
        }
        dev.Kernels.Get("feature_similarity_accumulate_v1", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>,
                ArrayView<double>, int, int>(AccumulateKernel))
            (Stats, src, results, count, slot);
    }

    /// <summary>Bytes read per call (both tensors once).</summary>
    public static long BytesRead(long numel) => 2 * 4 * numel;

    static void RunHost(ComputeDevice dev, ArrayView<float> a, ArrayView<float> b, long numel, ArrayView<double> results, int slot)
    {
        long chunks = Math.Max(1, (numel + HostSimd.ElementChunk - 1) / HostSimd.ElementChunk);
        var partials = new double[Stats * chunks];
        HostSimd.Elementwise(dev, "feature_similarity_host", numel, (start, end) =>
        {
            float* ap = Host.Ptr(a), bp = Host.Ptr(b);
            double dd = 0, ab = 0, aa = 0, bb = 0;
            for (long e = start; e < end; e++)
            {
                double x = ap[e], y = bp[e], d = x - y;
                dd += d * d; ab += x * y; aa += x * x; bb += y * y;
            }
            long c = start / HostSimd.ElementChunk * Stats;
            partials[c] = dd; partials[c + 1] = ab; partials[c + 2] = aa; partials[c + 3] = bb;
        });
        double* r = Host.Ptr(results) + (long)slot * Stats;
        for (int k = 0; k < Stats; k++)
        {
            double sum = 0;
            for (long c = 0; c < chunks; c++) sum += partials[c * Stats + k];
            r[k] += sum;
        }
    }
}
