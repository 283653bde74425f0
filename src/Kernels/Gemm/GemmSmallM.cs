// GEMM for few rows (adaLN: M = batch, N = 6·D), y[M, N] = epilogue(x[M, K] · W[N, K]ᵀ + b[N]) — same op and
// epilogues as Gemm.cs, shaped like a matrix-vector product.
//
// Why a separate version: at M = 16 the tiled versions make ⌈16/128⌉·N/128 = 54 groups for adaLN's
// 16×6912×1152 — a fraction of an H100's 132 SMs — while the op is memory-bound (the weights, 31.9 MB
// in fp32, are read once; x is 74 KB). So this version spreads the weights over every SM instead:
//   - one warp per output column n (6,912 warps for adaLN), the warp reads W's row n once, lanes
//     striding along K with 16-byte loads (a warp load is 512 contiguous bytes);
//   - each lane keeps one partial sum per row of x for a chunk of 8 rows (x rows come through L1/L2:
//     every warp reads all of them); M > 8 repeats the pass per chunk (W's row is then an L1/L2 hit);
//   - the 8 partial sums are reduced across the warp with 5 ShuffleXor steps each, then lane r stores
//     row r of the chunk through the shared epilogue.
// Not split-K: with one warp per column the grid already has N/8 groups of 8 warps (864 for adaLN), and
// no second reduction pass or atomics are needed. Warps per group follow the launch (8 on CUDA, as many
// as the device allows on the CPU accelerator), so the kernel runs on the default CPU device too.
using BlockDance.Kernels.Harness;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class GemmSmallM
{
    public const int RowsPerPass = 8, WarpsPerGroup = 8;

    /// <summary>Sum of x[r][k..k+3]·w4 for one row (0 for rows past m).</summary>
    static float Dot4(ArrayView<GemmV2.Vec4> x4, int r, int m, int k4, int kq, GemmV2.Vec4 w)
    {
        if (r >= m) return 0f;
        var a = x4[(long)r * k4 + kq];
        return a.X * w.X + a.Y * w.Y + a.Z * w.Z + a.W * w.W;
    }

    static float Dot1(ArrayView<float> x, int r, int m, int k, int p, float w) => r < m ? x[(long)r * k + p] * w : 0f;

    // ---------------------------------------------------------------- kernel
    [GpuKernel("gemm_small_m", Grouped = true, GroupSize = WarpsPerGroup * 32, Claims = "LDG.E.128,SHFL.BFLY")]
    static void Kernel(ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y,
        ArrayView<float> res, ArrayView<float> gate, int m, int n, int k, int ep, int rowsPerSample, int gateStride,
        int gateOffset, int vecFlag)
    {
        int lane = Warp.LaneIdx;
        int col = Grid.IdxX * (Group.DimX / 32) + Warp.WarpIdx;
        if (col >= n) return;   // a whole warp leaves together: no shuffle is left half-populated
        var x4 = x.Cast<GemmV2.Vec4>();
        var w4 = w.Cast<GemmV2.Vec4>();
        int k4 = k / 4;
        for (int r0 = 0; r0 < m; r0 += RowsPerPass)
        {
            float s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
            if (vecFlag != 0)
            {
                for (int q = lane; q < k4; q += 32)
                {
                    var wv = w4[(long)col * k4 + q];   // (N, K/4): row `col`, 16 bytes
                    s0 += Dot4(x4, r0 + 0, m, k4, q, wv); s1 += Dot4(x4, r0 + 1, m, k4, q, wv);
                    s2 += Dot4(x4, r0 + 2, m, k4, q, wv); s3 += Dot4(x4, r0 + 3, m, k4, q, wv);
                    s4 += Dot4(x4, r0 + 4, m, k4, q, wv); s5 += Dot4(x4, r0 + 5, m, k4, q, wv);
                    s6 += Dot4(x4, r0 + 6, m, k4, q, wv); s7 += Dot4(x4, r0 + 7, m, k4, q, wv);
                }
            }
            else
            {
                for (int p = lane; p < k; p += 32)
                {
                    float wv = w[(long)col * k + p];
                    s0 += Dot1(x, r0 + 0, m, k, p, wv); s1 += Dot1(x, r0 + 1, m, k, p, wv);
                    s2 += Dot1(x, r0 + 2, m, k, p, wv); s3 += Dot1(x, r0 + 3, m, k, p, wv);
                    s4 += Dot1(x, r0 + 4, m, k, p, wv); s5 += Dot1(x, r0 + 5, m, k, p, wv);
                    s6 += Dot1(x, r0 + 6, m, k, p, wv); s7 += Dot1(x, r0 + 7, m, k, p, wv);
                }
            }
            s0 = WarpReduce.Sum(s0); s1 = WarpReduce.Sum(s1); s2 = WarpReduce.Sum(s2); s3 = WarpReduce.Sum(s3);
            s4 = WarpReduce.Sum(s4); s5 = WarpReduce.Sum(s5); s6 = WarpReduce.Sum(s6); s7 = WarpReduce.Sum(s7);
            // Every lane now holds all 8 sums; lane r writes row r0 + r.
            float mine = lane == 0 ? s0 : lane == 1 ? s1 : lane == 2 ? s2 : lane == 3 ? s3
                       : lane == 4 ? s4 : lane == 5 ? s5 : lane == 6 ? s6 : s7;
            int row = r0 + lane;
            if (lane < RowsPerPass && row < m)
                y[(long)row * n + col] = Gemm.Apply(mine + b[col], ep, res, gate, row, col, n, rowsPerSample, gateStride, gateOffset);
        }
    }

    // ---------------------------------------------------------------- launcher
    /// <summary>y (m, n) = epilogue(x (m, k) · w (n, k)ᵀ + b (n)); arguments as Gemm.Run. Any m works; it pays
    /// off while m is small (one pass over W per 8 rows).</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y,
        int m, int n, int k, Epilogue ep = Epilogue.None, ArrayView<float> res = default, GateSpec gate = default)
    {
        var (resV, gateV) = Gemm.CheckArgs(x, w, b, y, m, n, k, ep, res, gate);
        bool vec = k % 4 == 0 && GemmV2.Aligned16(x) && GemmV2.Aligned16(w);
        int warps = Math.Max(1, Math.Min(WarpsPerGroup, dev.Accelerator.MaxNumThreadsPerGroup / 32));
        var kernel = dev.Kernels.Get("gemm_small_m", a =>
        {
            Action<ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                int, int, int, int, int, int, int, int> entry = Kernel;
            return a.LoadStreamKernel(entry, GpuKernelAttribute.SpecializationFor(dev, entry));   // .maxntid WarpsPerGroup·32 on CUDA
        });
        kernel(new KernelConfig((n + warps - 1) / warps, warps * 32), x, w, b, y, resV, gateV, m, n, k, (int)ep,
            Math.Max(1, gate.RowsPerSample), gate.GateStride, gate.GateOffset, vec ? 1 : 0);
    }
}
