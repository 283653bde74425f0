// The change of a feature since the previous step, per row, reduced on the device into a small results buffer: the
// gate signal of the adaptive caches (TeaCache, First-Block Cache, DBCache, adaptive BlockDance), so that a step reads
// back 2·R doubles instead of whole (R, T, D) features.
//   v = x − y, or v = x without y                      x, y, prev: R rows of L values each (the first R·L elements)
//   results[2r]     = Σ_e |v[r, e] − prev[r, e]|
//   results[2r + 1] = Σ_e |prev[r, e]|
//   current ← v (optional): the value a policy keeps for the next step, without leaving the device
// Each term is rounded to float32 first (v, then v − prev), as CacheSignals computes on the host; the sums are float64.
//
// v1 (deterministic, no atomics, no shared memory, runs on the CPU accelerator):
//   stage 1: R · P work items, item (r, p) sums the p-th contiguous chunk of row r into partials[2(rP + p) + k]
//   stage 2: 2R work items, item (r, k) adds row r's P partials in order into results[2r + k]
//   P depends only on L (Chunks), so a run is bit-reproducible on a device.
// host (the host backend, `--device cpu`): one work item per row adds its elements in order.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class RowChange
{
    /// <summary>Contiguous chunks a row is summed in by v1 (enough parallel work for long rows, one for short ones).</summary>
    public static int Chunks(long rowLength) => (int)Math.Clamp(rowLength / 4096, 1, 64);

    public static double[] Reference(float[] x, float[]? y, float[] prev, int rows, long rowLength)
    {
        var r = new double[2 * rows];
        for (int row = 0; row < rows; row++)
            for (long e = row * rowLength; e < (row + 1) * rowLength; e++)
            {
                float v = y is null ? x[e] : x[e] - y[e];
                r[2 * row] += Math.Abs(v - prev[e]);
                r[2 * row + 1] += Math.Abs(prev[e]);
            }
        return r;
    }

    static void PartialsKernel(Index1D index, ArrayView<float> x, ArrayView<float> y, int hasY, ArrayView<float> prev,
                               ArrayView<float> current, int hasCurrent, ArrayView<double> partials, long rowLength, int chunks)
    {
        int item = index;
        int r = item / chunks, p = item % chunks;
        long size = (rowLength + chunks - 1) / chunks, start = p * size, end = Math.Min(rowLength, start + size);
        double num = 0, den = 0;
        for (long e = start; e < end; e++)
        {
            long o = r * rowLength + e;
            float v = hasY != 0 ? x[o] - y[o] : x[o];
            if (hasCurrent != 0) current[o] = v;
            float pv = prev[o], d = v - pv;
            num += d < 0 ? -d : d;
            den += pv < 0 ? -pv : pv;
        }
        partials[2L * item] = num;
        partials[2L * item + 1] = den;
    }

    static void FinishKernel(Index1D index, ArrayView<double> partials, ArrayView<double> results, int chunks)
    {
        int k = index;
        int r = k / 2, s = k % 2;
        double sum = 0;
        for (int p = 0; p < chunks; p++) sum += partials[2L * (r * chunks + p) + s];
        results[k] = sum;
    }

    /// <summary>results[0..2R) = per row Σ|v − prev|, Σ|prev| with v = x − y (or x); current ← v when given.
    /// partials holds 2·R·Chunks(L) doubles (v1's scratch; unused by the host backend).</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float>? y, ArrayView<float> prev, ArrayView<float>? current,
                           int rows, long rowLength, ArrayView<double> results, ArrayView<double> partials)
    {
        long n = rows * rowLength;
        if (rows < 1 || rowLength < 1) throw new ArgumentException($"row change: expected ≥ 1 rows of ≥ 1 values, found {rows} × {rowLength}");
        if (x.Length < n || prev.Length < n || (y is { } yv && yv.Length < n) || (current is { } cv && cv.Length < n))
            throw new ArgumentException($"row change: every input needs {rows} × {rowLength} = {n} values");
        Check.Size("row change results", results.Length, 2L * rows);
        int chunks = Chunks(rowLength);
        if (dev.IsHost) { RunHost(dev, x, y, prev, current, rows, rowLength, results); return; }
        Check.Size("row change partials", partials.Length, 2L * rows * chunks);
        dev.Kernels.Get("row_change_partials_v1", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, int,
                ArrayView<float>, ArrayView<float>, int, ArrayView<double>, long, int>(PartialsKernel))
            (rows * chunks, x, y ?? x, y is null ? 0 : 1, prev, current ?? x, current is null ? 0 : 1, partials, rowLength, chunks);
        dev.Kernels.Get("row_change_finish_v1", acc => acc.LoadAutoGroupedStreamKernel<Index1D, ArrayView<double>, ArrayView<double>, int>(FinishKernel))
            (2 * rows, partials, results, chunks);
    }

    static void RunHost(ComputeDevice dev, ArrayView<float> x, ArrayView<float>? y, ArrayView<float> prev, ArrayView<float>? current,
                        int rows, long rowLength, ArrayView<double> results)
    {
        Host.For(dev, "row_change_host", rows, r =>
        {
            float* xp = Host.Ptr(x), pp = Host.Ptr(prev);
            float* yp = y is { } yv ? Host.Ptr(yv) : null, cp = current is { } cv ? Host.Ptr(cv) : null;
            double num = 0, den = 0;
            for (long e = r * rowLength; e < (r + 1) * rowLength; e++)
            {
                float v = yp == null ? xp[e] : xp[e] - yp[e];
                if (cp != null) cp[e] = v;
                num += Math.Abs(v - pp[e]);
                den += Math.Abs(pp[e]);
            }
            double* o = Host.Ptr(results);
            o[2 * r] = num;
            o[2 * r + 1] = den;
        });
    }
}
