// The register-blocked micro-kernel of the host backend's GEMM-shaped ops (GemmHost, Conv2dHost):
//   c[r, j] (+)= Σ_{p < kc} a_r[p] · b[p·16 + j]     r < 6, j < 16
// a_r: six row pointers (rows of x for a GEMM, of the weights for a convolution); b: a packed panel slice,
// 16 contiguous floats per k step; c: the 6 × 16 result tile, row-major (row r at c + 16 r).
//
// Fma6x16 keeps the tile in 12 Vector256 accumulators (AVX2 has 16 ymm registers: 12 + 2 for b + 1 broadcast
// fit; with AVX-512 the JIT has 32). Each output element is one chain of FMAs in k order — the order every
// caller relies on for determinism. Scalar6x16 is the fallback without FMA hardware (a*b + c, rounded twice).
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BlockDance.Kernels;

public static unsafe class MicroKernel
{
    public const int Mr = 6, Nr = 16;

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Fma6x16(float** a, float* b, int kc, float* c, bool accumulate)
    {
        float* a0 = a[0], a1 = a[1], a2 = a[2], a3 = a[3], a4 = a[4], a5 = a[5];
        Vector256<float> c00, c01, c10, c11, c20, c21, c30, c31, c40, c41, c50, c51;
        if (accumulate)
        {
            c00 = Avx.LoadVector256(c); c01 = Avx.LoadVector256(c + 8);
            c10 = Avx.LoadVector256(c + 16); c11 = Avx.LoadVector256(c + 24);
            c20 = Avx.LoadVector256(c + 32); c21 = Avx.LoadVector256(c + 40);
            c30 = Avx.LoadVector256(c + 48); c31 = Avx.LoadVector256(c + 56);
            c40 = Avx.LoadVector256(c + 64); c41 = Avx.LoadVector256(c + 72);
            c50 = Avx.LoadVector256(c + 80); c51 = Avx.LoadVector256(c + 88);
        }
        else
        {
            c00 = c01 = c10 = c11 = c20 = c21 = c30 = c31 = c40 = c41 = c50 = c51 = Vector256<float>.Zero;
        }
        for (int p = 0; p < kc; p++)
        {
            var b0 = Avx.LoadVector256(b);
            var b1 = Avx.LoadVector256(b + 8);
            b += Nr;
            var x = Vector256.Create(a0[p]);
            c00 = Fma.MultiplyAdd(x, b0, c00); c01 = Fma.MultiplyAdd(x, b1, c01);
            x = Vector256.Create(a1[p]);
            c10 = Fma.MultiplyAdd(x, b0, c10); c11 = Fma.MultiplyAdd(x, b1, c11);
            x = Vector256.Create(a2[p]);
            c20 = Fma.MultiplyAdd(x, b0, c20); c21 = Fma.MultiplyAdd(x, b1, c21);
            x = Vector256.Create(a3[p]);
            c30 = Fma.MultiplyAdd(x, b0, c30); c31 = Fma.MultiplyAdd(x, b1, c31);
            x = Vector256.Create(a4[p]);
            c40 = Fma.MultiplyAdd(x, b0, c40); c41 = Fma.MultiplyAdd(x, b1, c41);
            x = Vector256.Create(a5[p]);
            c50 = Fma.MultiplyAdd(x, b0, c50); c51 = Fma.MultiplyAdd(x, b1, c51);
        }
        Avx.Store(c, c00); Avx.Store(c + 8, c01);
        Avx.Store(c + 16, c10); Avx.Store(c + 24, c11);
        Avx.Store(c + 32, c20); Avx.Store(c + 40, c21);
        Avx.Store(c + 48, c30); Avx.Store(c + 56, c31);
        Avx.Store(c + 64, c40); Avx.Store(c + 72, c41);
        Avx.Store(c + 80, c50); Avx.Store(c + 88, c51);
    }

    /// <summary>The same tile without SIMD (the fallback; also what the scalar-path tests run).</summary>
    public static void Scalar6x16(float** a, float* b, int kc, float* c, bool accumulate)
    {
        if (!accumulate) new Span<float>(c, Mr * Nr).Clear();
        for (int r = 0; r < Mr; r++)
        {
            float* ar = a[r], cr = c + r * Nr;
            for (int p = 0; p < kc; p++)
            {
                float av = ar[p];
                float* bp = b + p * Nr;
                for (int j = 0; j < Nr; j++) cr[j] += av * bp[j];
            }
        }
    }
}
