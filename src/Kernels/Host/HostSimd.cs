// SIMD helpers shared by the host kernels (host backend, `--device cpu`): 8-lane Vector256 arithmetic with
// FMA where the CPU has it (a·b + c with two roundings otherwise), per-thread scratch, and the chunked
// elementwise loop.
//
// Determinism: every helper reduces in a fixed order (lane-wise partial sums, then the lanes in index order),
// and Elementwise cuts its range into chunks of a fixed size, so results depend only on the inputs and the
// machine, never on the thread count.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BlockDance.Kernels;

public static unsafe class HostSimd
{
    /// <summary>Lanes of a Vector256&lt;float&gt;.</summary>
    public const int Lanes = 8;

    /// <summary>Elements per work item of an elementwise host kernel: large enough that a work item costs far more
    /// than its scheduling, small enough that a batch of 2 samples still spreads over the threads.</summary>
    public const int ElementChunk = 1 << 14;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static Vector256<float> MulAdd(Vector256<float> a, Vector256<float> b, Vector256<float> c) =>
        Fma.IsSupported ? Fma.MultiplyAdd(a, b, c) : a * b + c;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float MulAdd(float a, float b, float c) => Fma.IsSupported ? MathF.FusedMultiplyAdd(a, b, c) : a * b + c;

    /// <summary>The lanes of v summed in index order.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static float Sum(Vector256<float> v)
    {
        float s = v.GetElement(0);
        for (int i = 1; i < Lanes; i++) s += v.GetElement(i);
        return s;
    }

    /// <summary>Σ x[i] over n floats: 8 lane sums, then the lanes and the tail in order.</summary>
    public static float Sum(float* x, int n)
    {
        var acc = Vector256<float>.Zero;
        int i = 0;
        for (; i + Lanes <= n; i += Lanes) acc += Vector256.Load(x + i);
        float s = Sum(acc);
        for (; i < n; i++) s += x[i];
        return s;
    }

    /// <summary>Σ (x[i] − c)² over n floats (same order as Sum).</summary>
    public static float SumSquaredDeviation(float* x, int n, float c)
    {
        var acc = Vector256<float>.Zero;
        var vc = Vector256.Create(c);
        int i = 0;
        for (; i + Lanes <= n; i += Lanes) { var e = Vector256.Load(x + i) - vc; acc = MulAdd(e, e, acc); }
        float s = Sum(acc);
        for (; i < n; i++) { float e = x[i] - c; s = MulAdd(e, e, s); }
        return s;
    }

    /// <summary>A per-thread scratch array of at least `length` floats (slot 0..7: independent arrays).
    /// Contents are left over from earlier use.</summary>
    public static float[] Scratch(int slot, int length)
    {
        var all = scratch ??= new float[8][];
        if (all[slot] is null || all[slot].Length < length) all[slot] = new float[Math.Max(length, 64)];
        return all[slot];
    }

    [ThreadStatic] static float[][]? scratch;

    /// <summary>body(start, end) over [0, total) in chunks of ElementChunk (the last shorter), on the device's threads.</summary>
    public static void Elementwise(ComputeDevice dev, string name, long total, Action<long, long> body)
    {
        long chunks = (total + ElementChunk - 1) / ElementChunk;
        if (chunks > int.MaxValue) throw new ArgumentException($"{name}: {total} elements is more than a host kernel splits");
        Host.For(dev, name, (int)Math.Max(chunks, 1), c =>
        {
            long start = (long)c * ElementChunk;
            body(start, Math.Min(start + ElementChunk, total));
        });
    }
}
