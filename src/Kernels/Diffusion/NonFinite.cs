// Counts the non-finite elements (NaN, +Inf, −Inf) of a tensor on the device:
//   counts[slot] += |{ i : x[i] is NaN or ±Inf }|
// Used where a bad value must not turn silently into a black image: the weights as they are uploaded
// (one slot per tensor, read back once after loading) and the sample after every sampling step
// (SamplingGuard). The count is accumulated with an atomic add, so several launches can share one
// counter buffer and a single 4-byte read-back answers "was anything non-finite?".
//
// Versions:
//   v1 (this file): grid-stride loop, one atomic add per non-finite element. Finite data — the case that
//      matters for speed — does no atomics at all, and a bad tensor is rare and reported anyway.
//   host: the host backend's version, the same bit test; one atomic add per chunk that has a non-finite value.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class NonFinite
{
    /// <summary>The host reference: how many elements are NaN or ±Inf.</summary>
    public static long CountReference(ReadOnlySpan<float> x)
    {
        long n = 0;
        foreach (var v in x) if (!float.IsFinite(v)) n++;
        return n;
    }

    static void Kernel(Index1D index, ArrayView<float> x, ArrayView<int> counts, int slot, int width)
    {
        for (long i = index; i < x.Length; i += width)
        {
            float v = x[i];
            // IEEE 754 binary32: NaN and ±Inf are exactly the values whose 8 exponent bits are all ones.
            // A bit test, not v != v or v − v == 0, which a fast-math compiler may fold away.
            if ((Interop.FloatAsInt(v) & 0x7F800000) == 0x7F800000) Atomic.Add(ref counts[slot], 1);
        }
    }

    /// <summary>Adds the number of non-finite elements of x to counts[slot] (asynchronous; read counts back to see it).</summary>
    public static void Count(ComputeDevice dev, ArrayView<float> x, ArrayView<int> counts, int slot)
    {
        if (slot < 0 || slot >= counts.Length) throw new ArgumentOutOfRangeException(nameof(slot), $"slot {slot} outside 0..{counts.Length - 1}");
        if (x.Length == 0) return;
        if (dev.IsHost)
        {
            HostSimd.Elementwise(dev, "non_finite_count_host", x.Length, (s, e) =>
            {
                float* xp = Host.Ptr(x);
                int bad = 0;
                for (long i = s; i < e; i++) if ((BitConverter.SingleToInt32Bits(xp[i]) & 0x7F800000) == 0x7F800000) bad++;
                if (bad != 0) Interlocked.Add(ref Host.Ptr(counts)[slot], bad);
            });
            return;
        }
        int width = dev.LaunchWidth(x.Length);
        dev.Kernels.Get("non_finite_count", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<int>, int, int>(Kernel))
            (width, x, counts, slot, width);
    }
}
