// GEMM v2: fp32 SIMT tiled, y[M, N] = epilogue(x[M, K] · W[N, K]ᵀ + b[N]) — same op and epilogues as v1 (Gemm.cs).
//
// What v2 changes against v1 (following the classic shared-memory SGEMM design, e.g. siboehm's SGEMM_CUDA
// kernel 6, adapted to W stored [out, in]):
//   - a 128×128 output block per group of 256 threads; each thread owns an 8×8 register tile (64 fp32
//     accumulators in eight Row8 structs: ILGPU does not unroll loops, so the tile is spelled out);
//   - K is walked in slices of BK = 8: the group copies x[128 rows][8] and W[128 rows][8] with one 16-byte
//     load per thread each (rows are contiguous along K in both operands, so the loads are coalesced),
//     and stores them transposed, As[k][m] and Bs[k][n], so that each k step reads two float4 of A and two
//     of B from shared memory and issues 64 FFMA;
//   - the next slice is loaded into registers while the current one is multiplied (register prefetch),
//     so global latency overlaps the FFMA; 2 barriers per slice, 8 KB of shared memory.
// Ragged M/N are zero-filled on load and predicated on store; K not a multiple of 4 (or a view that is not
// 16-byte aligned) takes the scalar, bounds-checked load path — same kernel, the `vec` flag chooses.
// Occupancy: 256 threads × ≤ 128 registers → 2 groups per SM (KernelSpecialization(256, 2)).
using BlockDance.Kernels.Harness;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class GemmV2
{
    public const int Tile = 128, BK = 8, Threads = 256;

    /// <summary>Four floats, 16-byte aligned: one ld/st .v4.f32.</summary>
    public struct Vec4 { public float X, Y, Z, W; }

    /// <summary>One row of a thread's 8×8 register tile.</summary>
    struct Row8
    {
        public float C0, C1, C2, C3, C4, C5, C6, C7;
        public void Fma(float a, Vec4 b0, Vec4 b1)
        {
            C0 += a * b0.X; C1 += a * b0.Y; C2 += a * b0.Z; C3 += a * b0.W;
            C4 += a * b1.X; C5 += a * b1.Y; C6 += a * b1.Z; C7 += a * b1.W;
        }
    }

    /// <summary>Loads the float4 x[row][k..k+3] (zeros outside the matrix); `vec`: 16-byte load.</summary>
    static Vec4 Load4(ArrayView<float> a, ArrayView<Vec4> a4, int row, int rows, int k, int kTotal, bool vec)
    {
        var v = new Vec4();
        if (row >= rows) return v;
        long i = (long)row * kTotal + k;
        if (vec) return k < kTotal ? a4[i / 4] : v;   // K % 4 == 0: a float4 is wholly in or out
        if (k < kTotal) v.X = a[i];
        if (k + 1 < kTotal) v.Y = a[i + 1];
        if (k + 2 < kTotal) v.Z = a[i + 2];
        if (k + 3 < kTotal) v.W = a[i + 3];
        return v;
    }

    /// <summary>Writes a float4 along k into a transposed [BK][Tile] shared tile.</summary>
    static void StoreT(ArrayView<float> s, int kq, int col, Vec4 v)
    {
        s[(kq + 0) * Tile + col] = v.X;
        s[(kq + 1) * Tile + col] = v.Y;
        s[(kq + 2) * Tile + col] = v.Z;
        s[(kq + 3) * Tile + col] = v.W;
    }

    static void StoreRow(ArrayView<float> y, ArrayView<float> b, ArrayView<float> res, ArrayView<float> gate, Row8 r,
        int row, int c0, int m, int n, int ep, int rowsPerSample, int gateStride, int gateOffset)
    {
        if (row >= m) return;
        StoreOne(y, b, res, gate, r.C0, row, c0 + 0, n, ep, rowsPerSample, gateStride, gateOffset);
        StoreOne(y, b, res, gate, r.C1, row, c0 + 1, n, ep, rowsPerSample, gateStride, gateOffset);
        StoreOne(y, b, res, gate, r.C2, row, c0 + 2, n, ep, rowsPerSample, gateStride, gateOffset);
        StoreOne(y, b, res, gate, r.C3, row, c0 + 3, n, ep, rowsPerSample, gateStride, gateOffset);
        StoreOne(y, b, res, gate, r.C4, row, c0 + 4, n, ep, rowsPerSample, gateStride, gateOffset);
        StoreOne(y, b, res, gate, r.C5, row, c0 + 5, n, ep, rowsPerSample, gateStride, gateOffset);
        StoreOne(y, b, res, gate, r.C6, row, c0 + 6, n, ep, rowsPerSample, gateStride, gateOffset);
        StoreOne(y, b, res, gate, r.C7, row, c0 + 7, n, ep, rowsPerSample, gateStride, gateOffset);
    }

    static void StoreOne(ArrayView<float> y, ArrayView<float> b, ArrayView<float> res, ArrayView<float> gate, float acc,
        int row, int col, int n, int ep, int rowsPerSample, int gateStride, int gateOffset)
    {
        if (col < n)
            y[(long)row * n + col] = Gemm.Apply(acc + b[col], ep, res, gate, row, col, n, rowsPerSample, gateStride, gateOffset);
    }

    // ---------------------------------------------------------------- kernel v2
    [GpuKernel("gemm_v2", Grouped = true, GroupSize = Threads, MinGroupsPerSM = 2, Claims = "LDG.E.128,LDS.128")]
    static void Kernel(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y,
        ArrayView<float> res, ArrayView<float> gate, int m, int n, int k, int ep, int rowsPerSample, int gateStride,
        int gateOffset, int vecFlag)
    {
        var as4 = SharedMemory.Allocate<Vec4>(BK * Tile / 4);   // (BK, 128) of x, transposed
        var bs4 = SharedMemory.Allocate<Vec4>(BK * Tile / 4);   // (BK, 128) of W, transposed
        var asF = as4.Cast<float>();
        var bsF = bs4.Cast<float>();
        bool vec = vecFlag != 0;
        var x4 = x.Cast<Vec4>();
        var w4 = w.Cast<Vec4>();
        int tid = Group.IdxX;
        int m0 = Grid.IdxY * Tile, n0 = Grid.IdxX * Tile;
        int ty = tid / 16, tx = tid % 16;           // 16×16 threads, each 8 rows × 8 columns
        int ldRow = tid / 2, ldK = (tid % 2) * 4;   // copy: thread → (row, 4 consecutive k)

        var r0 = new Row8(); var r1 = new Row8(); var r2 = new Row8(); var r3 = new Row8();
        var r4 = new Row8(); var r5 = new Row8(); var r6 = new Row8(); var r7 = new Row8();

        var nextA = Load4(x, x4, m0 + ldRow, m, ldK, k, vec);
        var nextB = Load4(w, w4, n0 + ldRow, n, ldK, k, vec);
        for (int k0 = 0; k0 < k; k0 += BK)
        {
            StoreT(asF, ldK, ldRow, nextA);
            StoreT(bsF, ldK, ldRow, nextB);
            Group.Barrier();
            if (k0 + BK < k)
            {
                nextA = Load4(x, x4, m0 + ldRow, m, k0 + BK + ldK, k, vec);
                nextB = Load4(w, w4, n0 + ldRow, n, k0 + BK + ldK, k, vec);
            }
            for (int kk = 0; kk < BK; kk++)
            {
                var a0 = as4[kk * (Tile / 4) + ty * 2];
                var a1 = as4[kk * (Tile / 4) + ty * 2 + 1];
                var b0 = bs4[kk * (Tile / 4) + tx * 2];
                var b1 = bs4[kk * (Tile / 4) + tx * 2 + 1];
                r0.Fma(a0.X, b0, b1); r1.Fma(a0.Y, b0, b1); r2.Fma(a0.Z, b0, b1); r3.Fma(a0.W, b0, b1);
                r4.Fma(a1.X, b0, b1); r5.Fma(a1.Y, b0, b1); r6.Fma(a1.Z, b0, b1); r7.Fma(a1.W, b0, b1);
            }
            Group.Barrier();
        }

        int row = m0 + ty * 8, col = n0 + tx * 8;
        StoreRow(y, b, res, gate, r0, row + 0, col, m, n, ep, rowsPerSample, gateStride, gateOffset);
        StoreRow(y, b, res, gate, r1, row + 1, col, m, n, ep, rowsPerSample, gateStride, gateOffset);
        StoreRow(y, b, res, gate, r2, row + 2, col, m, n, ep, rowsPerSample, gateStride, gateOffset);
        StoreRow(y, b, res, gate, r3, row + 3, col, m, n, ep, rowsPerSample, gateStride, gateOffset);
        StoreRow(y, b, res, gate, r4, row + 4, col, m, n, ep, rowsPerSample, gateStride, gateOffset);
        StoreRow(y, b, res, gate, r5, row + 5, col, m, n, ep, rowsPerSample, gateStride, gateOffset);
        StoreRow(y, b, res, gate, r6, row + 6, col, m, n, ep, rowsPerSample, gateStride, gateOffset);
        StoreRow(y, b, res, gate, r7, row + 7, col, m, n, ep, rowsPerSample, gateStride, gateOffset);
    }

    // ---------------------------------------------------------------- launcher
    /// <summary>True when the device can run a 256-thread group (every CUDA GPU; the CPU accelerator only
    /// when created with 8 warps per group, as the tests and `blockdance kernels` do).</summary>
    public static bool Supports(ComputeDevice dev) => dev.Accelerator.MaxNumThreadsPerGroup >= Threads;

    /// <summary>True when the view's first element sits on a 16-byte boundary (host-side check).</summary>
    public static bool Aligned16<T>(ArrayView<T> v) where T : unmanaged => v.Length == 0 || v.LoadEffectiveAddressAsPtr().ToInt64() % 16 == 0;

    /// <summary>y (m, n) = epilogue(x (m, k) · w (n, k)ᵀ + b (n)); arguments as Gemm.Run.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y,
        int m, int n, int k, Epilogue ep = Epilogue.None, ArrayView<float> res = default, GateSpec gate = default)
    {
        var (resV, gateV) = Gemm.CheckArgs(x, w, b, y, m, n, k, ep, res, gate);
        bool vec = k % 4 == 0 && Aligned16(x) && Aligned16(w);
        var kernel = dev.Kernels.Get("gemm_v2", a =>
        {
            Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                int, int, int, int, int, int, int, int> entry = Kernel;
            return a.LoadStreamKernel(entry, GpuKernelAttribute.SpecializationFor(dev, entry));   // (256, 2) on CUDA
        });
        var grid = new Index2D((n + Tile - 1) / Tile, (m + Tile - 1) / Tile);
        kernel(new KernelConfig(grid, new Index2D(Threads, 1)), x, w, b, y, resV, gateV, m, n, k, (int)ep,
            Math.Max(1, gate.RowsPerSample), gate.GateStride, gate.GateOffset, vec ? 1 : 0);
    }
}
