// GEMM v3: bf16 / fp16 tensor cores, y[M, N] = epilogue(x[M, K] · W[N, K]ᵀ + b[N]) with fp32 accumulation and
// output — the op and epilogues of v1 (Gemm.cs), operands rounded to 16 bits (GemmWeights).
//
// What v3 changes against v2 (the Ampere recipe of CUTLASS's sm80 GEMMs, config "A" of the project's
// GPU-kernel notes: everything fits ILGPU's 48 KB shared-memory limit):
//   - mma.sync.m16n8k16 (TensorCore/Mma.cs) instead of FFMA: a 128×128 output block per group of 8 warps
//     (2 along M × 4 along N), each warp a 64×32 tile = 4×4 m16n8 tiles, 64 fp32 accumulators per thread;
//   - K walked in slices of 32, double-buffered in shared memory (2 × (8 KB of x + 8 KB of W) = 32 KB):
//     each thread issues the 16-byte global loads of slice k+1 into registers, multiplies slice k, then
//     stores slice k+1 to the other stage — one barrier per slice. (Why not cp.async: see below.)
//   - fragments come from shared memory by ldmatrix.x4 (TensorCore/LdMatrix.cs): per 16-deep k step a warp
//     issues 4 ldmatrix for A, 2 for B and 16 mma. W[n][k] (PyTorch's Linear layout) is already the
//     "col" B operand, so no transpose is needed anywhere;
//   - the 64-byte shared rows are XOR-swizzled (16-byte chunk c of row r stored at c ^ ((r >> 1) & 3)), so
//     the eight rows an ldmatrix matrix reads, and the chunks a warp stores, fall in eight
//     distinct 16-byte bank groups: no bank conflicts, no padding;
//   - edges: rows past M/N and k past K are loaded as zero chunks — every lane always
//     executes every mma (.aligned), stores are predicated. K must be a multiple of 8 (16-byte rows of
//     bf16); Gemm.Run falls back to an fp32 version otherwise (logged).
// Compiled at OptimizationLevel.O2 (the program's CUDA context): ILGPU hands multi-result inline PTX
// (mma's 4 accumulators, ldmatrix's 4 fragments) its operands through small local allocas; at O1 they stay
// in local memory (STL/LDL around every HMMA), at O2 ptxas promotes them to registers.
// Why no cp.async (LDGSTS): ptxas 11.8 stops promoting those allocas in any kernel that contains a
// cp.async (probe kernels: one cp.async anywhere → 40-byte stack frame, LDL/STL around each HMMA; this
// kernel with a 3-stage cp.async pipeline: 832-byte stack frame, 417 LDL/STL on sm_80). Register-staged
// double buffering keeps everything in registers. Declaring the fragments as named PTX registers would
// allow cp.async, but ILGPU orders PTX blocks so that such a declaration can follow its first use.
// KernelSpecialization(256, 2) caps registers at 128 for 2 groups per SM (loaded from the [GpuKernel] attribute,
// as `blockdance ptx` compiles it).
// On the CPU accelerator the else-branches of the TensorCore primitives emulate each lane's result
// (warp shuffles), so this exact tiling, swizzle, pipeline order and epilogue run in the CPU tests.
using BlockDance.Kernels.Harness;
using BlockDance.Kernels.TensorCore;
using ILGPU;
using ILGPU.Runtime;
using ILGPU.Runtime.Cuda;

namespace BlockDance.Kernels;

public static class GemmV3
{
    public const int Tile = 128, BK = 32, Stages = 2, Threads = 256;
    const int RowBytes = BK * 2;                       // 64 bytes: one k slice of one row in 16 bits
    const int OperandBytes = Tile * RowBytes;          // 8 KB per operand per stage
    const int StageBytes = 2 * OperandBytes;           // x then W
    public const int SharedBytes = Stages * StageBytes; // 32,768

    /// <summary>The epilogue's scalars (one struct keeps the kernel's parameter list short).</summary>
    public struct EpilogueArgs { public int Ep, RowsPerSample, GateStride, GateOffset; }

    /// <summary>Byte offset of 16-byte chunk c of row r in a swizzled [128][64 B] operand tile at `tileBase`.</summary>
    static int ATile(int tileBase, int r, int c) => tileBase + r * RowBytes + ((c ^ ((r >> 1) & 3)) << 4);

    /// <summary>Four fp32 accumulators of one m16n8 tile (c0..c3 of the mma fragment layout).</summary>
    public struct Acc4 { public float C0, C1, C2, C3; }

    /// <summary>Four fragment registers from one ldmatrix.x4.</summary>
    public struct Frag4 { public uint R0, R1, R2, R3; }

    // The accumulators and fragments are passed by value: a `ref`/`out` to a local of the main loop makes
    // ILGPU keep that local in memory (measured: 832-byte stack frame, 417 LDL/STL), while the address-taken
    // locals inside these small helpers are straight-line and ptxas keeps them in registers.
    // On the CPU accelerator both go through WarpScratch (operands exchanged in shared memory: 2 warp barriers
    // per instruction instead of a shuffle per register), the same per-lane results as the primitives' own
    // emulation, ~15× fewer synchronizations — what keeps the CPU tests of this kernel affordable.
    static Acc4 Mma16(ArrayView<uint> smem, bool f16, Frag4 a, uint b0, uint b1, Acc4 c)
    {
        float c0 = c.C0, c1 = c.C1, c2 = c.C2, c3 = c.C3;
        if (!CudaAsm.IsSupported) WarpScratch.Mma(smem, ScratchWord, f16, a.R0, a.R1, a.R2, a.R3, b0, b1, ref c0, ref c1, ref c2, ref c3);
        else if (f16) Mma.M16N8K16F16(a.R0, a.R1, a.R2, a.R3, b0, b1, ref c0, ref c1, ref c2, ref c3);
        else Mma.M16N8K16Bf16(a.R0, a.R1, a.R2, a.R3, b0, b1, ref c0, ref c1, ref c2, ref c3);
        return new Acc4 { C0 = c0, C1 = c1, C2 = c2, C3 = c3 };
    }

    static Frag4 X4(ArrayView<uint> smem, int byteOffset)
    {
        uint r0, r1, r2, r3;
        if (CudaAsm.IsSupported) LdMatrix.X4(smem, byteOffset, out r0, out r1, out r2, out r3);
        else WarpScratch.X4(smem, ScratchWord, byteOffset, out r0, out r1, out r2, out r3);
        return new Frag4 { R0 = r0, R1 = r1, R2 = r2, R3 = r3 };
    }

    /// <summary>CPU only: the emulation's scratch words follow the stages in dynamic shared memory.</summary>
    const int ScratchWord = SharedBytes / 4;
    const int CpuScratchBytes = Threads / 32 * WarpScratch.ScratchWordsPerWarp * 4;

    /// <summary>This thread's share of one k slice: 2 chunks of x and 2 of W (16 bytes each).</summary>
    public struct Staged { public Chunk16 X0, X1, W0, W1; }

    /// <summary>16 bytes of row `row` at column kc (zeros outside the matrix; K % 8 == 0, so a chunk is wholly in or out).</summary>
    static Chunk16 LoadChunk(ArrayView<Chunk16> src, int row, int rows, int kc, int k) =>
        row < rows && kc < k ? src[((long)row * k + kc) >> 3] : default;

    /// <summary>Loads this thread's chunks of k slice `k0` into registers (consecutive threads, consecutive chunks).</summary>
    static Staged LoadSlice(ArrayView<Chunk16> x, ArrayView<Chunk16> w, int tid, int m0, int n0, int k0, int m, int n, int k)
    {
        int r0 = tid >> 2, r1 = (tid + Threads) >> 2, kc = k0 + (tid & 3) * 8;
        return new Staged
        {
            X0 = LoadChunk(x, m0 + r0, m, kc, k), X1 = LoadChunk(x, m0 + r1, m, kc, k),
            W0 = LoadChunk(w, n0 + r0, n, kc, k), W1 = LoadChunk(w, n0 + r1, n, kc, k),
        };
    }

    /// <summary>Stores the staged chunks into stage `stage` of the swizzled shared tiles.</summary>
    static void StoreSlice(ArrayView<Chunk16> smem, int stage, int tid, Staged s)
    {
        int aBase = stage * StageBytes, bBase = aBase + OperandBytes, c = tid & 3;
        int r0 = tid >> 2, r1 = (tid + Threads) >> 2;
        smem[ATile(aBase, r0, c) >> 4] = s.X0;
        smem[ATile(aBase, r1, c) >> 4] = s.X1;
        smem[ATile(bBase, r0, c) >> 4] = s.W0;
        smem[ATile(bBase, r1, c) >> 4] = s.W1;
    }

    static void StoreQuad(ArrayView<float> y, ArrayView<float> b, ArrayView<float> res, ArrayView<float> gate, EpilogueArgs e,
        int row, int col, int m, int n, Acc4 acc)
    {
        int g = Warp.LaneIdx >> 2, t = Warp.LaneIdx & 3;
        int r0 = row + g, r1 = row + g + 8, c = col + 2 * t;
        StoreOne(y, b, res, gate, e, r0, c, m, n, acc.C0);
        StoreOne(y, b, res, gate, e, r0, c + 1, m, n, acc.C1);
        StoreOne(y, b, res, gate, e, r1, c, m, n, acc.C2);
        StoreOne(y, b, res, gate, e, r1, c + 1, m, n, acc.C3);
    }

    static void StoreOne(ArrayView<float> y, ArrayView<float> b, ArrayView<float> res, ArrayView<float> gate, EpilogueArgs e,
        int row, int col, int m, int n, float acc)
    {
        if (row < m && col < n)
            y[(long)row * n + col] = Gemm.Apply(acc + b[col], e.Ep, res, gate, row, col, n, e.RowsPerSample, e.GateStride, e.GateOffset);
    }

    // ---------------------------------------------------------------- kernel v3
    static void Body(bool f16, ArrayView<Chunk16> x, ArrayView<Chunk16> w, ArrayView<float> b, ArrayView<float> y,
        ArrayView<float> res, ArrayView<float> gate, int m, int n, int k, EpilogueArgs e)
    {
        var chunks = SharedMemory.GetDynamic<Chunk16>();
        var smem = chunks.Cast<uint>();
        int tid = Group.IdxX, lane = Warp.LaneIdx, warp = Warp.WarpIdx;
        int wm = warp >> 2, wn = warp & 3;               // 2 × 4 warps, 64 × 32 outputs each
        int m0 = Grid.IdxY * Tile, n0 = Grid.IdxX * Tile;
        int tiles = (k + BK - 1) / BK;
        Acc4 c00 = default, c01 = default, c02 = default, c03 = default;
        Acc4 c10 = default, c11 = default, c12 = default, c13 = default;
        Acc4 c20 = default, c21 = default, c22 = default, c23 = default;
        Acc4 c30 = default, c31 = default, c32 = default, c33 = default;

        // Prologue: slice 0 into stage 0.
        StoreSlice(chunks, 0, tid, LoadSlice(x, w, tid, m0, n0, 0, m, n, k));
        Group.Barrier();
        for (int kt = 0; kt < tiles; kt++)
        {
            // The next slice's global loads are issued first and land in registers while the tensor
            // cores work on this one; they are stored to the other stage afterwards.
            bool more = kt + 1 < tiles;
            Staged next = more ? LoadSlice(x, w, tid, m0, n0, (kt + 1) * BK, m, n, k) : default;
            int aBase = (kt & 1) * StageBytes, bBase = aBase + OperandBytes;
            for (int kk = 0; kk < BK / 16; kk++)
            {
                var a0 = X4(smem, ATile(aBase, wm * 64 + 0 * 16 + (lane & 15), kk * 2 + (lane >> 4)));
                var a1 = X4(smem, ATile(aBase, wm * 64 + 1 * 16 + (lane & 15), kk * 2 + (lane >> 4)));
                var a2 = X4(smem, ATile(aBase, wm * 64 + 2 * 16 + (lane & 15), kk * 2 + (lane >> 4)));
                var a3 = X4(smem, ATile(aBase, wm * 64 + 3 * 16 + (lane & 15), kk * 2 + (lane >> 4)));
                var b0 = X4(smem, ATile(bBase, wn * 32 + 0 * 16 + (lane & 7) + 8 * (lane >> 4), kk * 2 + ((lane >> 3) & 1)));   // b0, b1 of n-tiles 0 and 1
                var b1 = X4(smem, ATile(bBase, wn * 32 + 1 * 16 + (lane & 7) + 8 * (lane >> 4), kk * 2 + ((lane >> 3) & 1)));   // b0, b1 of n-tiles 2 and 3
                c00 = Mma16(smem, f16, a0, b0.R0, b0.R1, c00);
                c01 = Mma16(smem, f16, a0, b0.R2, b0.R3, c01);
                c02 = Mma16(smem, f16, a0, b1.R0, b1.R1, c02);
                c03 = Mma16(smem, f16, a0, b1.R2, b1.R3, c03);
                c10 = Mma16(smem, f16, a1, b0.R0, b0.R1, c10);
                c11 = Mma16(smem, f16, a1, b0.R2, b0.R3, c11);
                c12 = Mma16(smem, f16, a1, b1.R0, b1.R1, c12);
                c13 = Mma16(smem, f16, a1, b1.R2, b1.R3, c13);
                c20 = Mma16(smem, f16, a2, b0.R0, b0.R1, c20);
                c21 = Mma16(smem, f16, a2, b0.R2, b0.R3, c21);
                c22 = Mma16(smem, f16, a2, b1.R0, b1.R1, c22);
                c23 = Mma16(smem, f16, a2, b1.R2, b1.R3, c23);
                c30 = Mma16(smem, f16, a3, b0.R0, b0.R1, c30);
                c31 = Mma16(smem, f16, a3, b0.R2, b0.R3, c31);
                c32 = Mma16(smem, f16, a3, b1.R0, b1.R1, c32);
                c33 = Mma16(smem, f16, a3, b1.R2, b1.R3, c33);
            }
            if (more) StoreSlice(chunks, (kt + 1) & 1, tid, next);
            Group.Barrier();   // the stage just filled is complete; the one just read is free again
        }

        int rowW = m0 + wm * 64, colW = n0 + wn * 32;
        StoreQuad(y, b, res, gate, e, rowW + 0 * 16, colW + 0 * 8, m, n, c00);
        StoreQuad(y, b, res, gate, e, rowW + 0 * 16, colW + 1 * 8, m, n, c01);
        StoreQuad(y, b, res, gate, e, rowW + 0 * 16, colW + 2 * 8, m, n, c02);
        StoreQuad(y, b, res, gate, e, rowW + 0 * 16, colW + 3 * 8, m, n, c03);
        StoreQuad(y, b, res, gate, e, rowW + 1 * 16, colW + 0 * 8, m, n, c10);
        StoreQuad(y, b, res, gate, e, rowW + 1 * 16, colW + 1 * 8, m, n, c11);
        StoreQuad(y, b, res, gate, e, rowW + 1 * 16, colW + 2 * 8, m, n, c12);
        StoreQuad(y, b, res, gate, e, rowW + 1 * 16, colW + 3 * 8, m, n, c13);
        StoreQuad(y, b, res, gate, e, rowW + 2 * 16, colW + 0 * 8, m, n, c20);
        StoreQuad(y, b, res, gate, e, rowW + 2 * 16, colW + 1 * 8, m, n, c21);
        StoreQuad(y, b, res, gate, e, rowW + 2 * 16, colW + 2 * 8, m, n, c22);
        StoreQuad(y, b, res, gate, e, rowW + 2 * 16, colW + 3 * 8, m, n, c23);
        StoreQuad(y, b, res, gate, e, rowW + 3 * 16, colW + 0 * 8, m, n, c30);
        StoreQuad(y, b, res, gate, e, rowW + 3 * 16, colW + 1 * 8, m, n, c31);
        StoreQuad(y, b, res, gate, e, rowW + 3 * 16, colW + 2 * 8, m, n, c32);
        StoreQuad(y, b, res, gate, e, rowW + 3 * 16, colW + 3 * 8, m, n, c33);
    }

    [GpuKernel("gemm_v3_bf16", Grouped = true, GroupSize = Threads, MinGroupsPerSM = 2, O2 = true, Claims = "HMMA,LDSM,LDG.E.128,STS.128")]
    static void KernelBf16(ArrayView<Chunk16> x, ArrayView<Chunk16> w, ArrayView<float> b, ArrayView<float> y,
        ArrayView<float> res, ArrayView<float> gate, int m, int n, int k, EpilogueArgs e) =>
        Body(false, x, w, b, y, res, gate, m, n, k, e);

    [GpuKernel("gemm_v3_fp16", Grouped = true, GroupSize = Threads, MinGroupsPerSM = 2, O2 = true, Claims = "HMMA,LDSM,LDG.E.128,STS.128")]
    static void KernelF16(ArrayView<Chunk16> x, ArrayView<Chunk16> w, ArrayView<float> b, ArrayView<float> y,
        ArrayView<float> res, ArrayView<float> gate, int m, int n, int k, EpilogueArgs e) =>
        Body(true, x, w, b, y, res, gate, m, n, k, e);

    // ---------------------------------------------------------------- launcher
    /// <summary>True when the device can run this version: 256-thread groups with 32 KB of shared memory
    /// (every CUDA GPU from sm_80 on; the CPU accelerator when created with 8 warps per group).</summary>
    public static bool Supports(ComputeDevice dev) => dev.Accelerator.MaxNumThreadsPerGroup >= Threads &&
        dev.Accelerator.MaxSharedMemoryPerGroup >= SharedBytes &&
        (!dev.IsCuda || dev.Accelerator is ILGPU.Runtime.Cuda.CudaAccelerator { Architecture: { } arch } && arch >= ILGPU.Runtime.Cuda.CudaArchitecture.SM_80);

    /// <summary>Whether a GEMM of reduction length k can use v3 (16-byte rows of 16-bit values).</summary>
    public static bool SupportsK(int k) => k % 8 == 0;

    static readonly System.Runtime.CompilerServices.ConditionalWeakTable<ComputeDevice, Scratch> scratch = new();
    sealed class Scratch { public MemoryBuffer1D<ushort, Stride1D.Dense>? Bits; }

    /// <summary>The device's 16-bit copy of the activation (grown as needed, reused across calls).</summary>
    static ArrayView<ushort> ScratchFor(ComputeDevice dev, long n)
    {
        var s = scratch.GetOrCreateValue(dev);
        if (s.Bits == null || s.Bits.Length < n)
        {
            if (s.Bits != null) { dev.AllocatedBytes -= s.Bits.LengthInBytes; s.Bits.Dispose(); }
            s.Bits = dev.Accelerator.Allocate1D<ushort>(Math.Max(n, 1) + 8);
            dev.AllocatedBytes += s.Bits.LengthInBytes;
        }
        return s.Bits.View.AsContiguous();
    }

    /// <summary>y (m, n) = epilogue(x (m, k) · w (n, k)ᵀ + b (n)) with 16-bit weights: x is rounded to the weights'
    /// precision on the device first (one conversion pass), then the tensor-core kernel runs.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, GemmWeights w, ArrayView<float> b, ArrayView<float> y,
        int m, int k, Epilogue ep = Epilogue.None, ArrayView<float> res = default, GateSpec gate = default)
    {
        int n = w.N;
        if (w.Bits == null) throw new ArgumentException("gemm v3: expected 16-bit weights (GemmWeights.FromHost), found an fp32 form");
        if (w.K != k) throw new ArgumentException($"gemm v3: weights have K = {w.K}, the call has {k}");
        if (!SupportsK(k)) throw new ArgumentException($"gemm v3: expected K a multiple of 8, found {k}");
        Check.Size("gemm x", x.Length, (long)m * k);
        var x16 = ScratchFor(dev, (long)m * k);
        GemmWeights.Convert(dev, x, x16, (long)m * k, w.Precision);
        RunBits(dev, x16, w, b, y, m, k, ep, res, gate);
    }

    /// <summary>As Run, with x already in the weights' 16-bit format (x16: m·k values, 16-byte aligned).</summary>
    public static void RunBits(ComputeDevice dev, ArrayView<ushort> x16, GemmWeights w, ArrayView<float> b, ArrayView<float> y,
        int m, int k, Epilogue ep = Epilogue.None, ArrayView<float> res = default, GateSpec gate = default)
    {
        int n = w.N;
        Check.Size("gemm x16", x16.Length, (long)m * k);
        Check.Size("gemm b", b.Length, n);
        Check.Size("gemm y", y.Length, (long)m * n);
        if (ep == Epilogue.GatedResidual)
        {
            Check.Size("gemm residual", res.Length, (long)m * n);
            if (gate.RowsPerSample <= 0) throw new ArgumentException("gemm: gated residual needs RowsPerSample > 0");
        }
        var resV = res.IsValid ? res : y;
        var gateV = gate.Gate.IsValid ? gate.Gate : y;
        if (!GemmV2.Aligned16(x16) || !GemmV2.Aligned16(w.Bits!.View.AsContiguous()))
            throw new ArgumentException("gemm v3: expected 16-byte aligned 16-bit operands");
        var xw = x16.SubView(0, (long)m * k).Cast<Chunk16>();   // k % 8 == 0: whole 16-byte chunks
        var ww = w.Bits!.View.AsContiguous().SubView(0, (long)n * k).Cast<Chunk16>();
        bool f16 = w.Precision == Precision.Fp16;
        string name = f16 ? "gemm_v3_fp16" : "gemm_v3_bf16";
        var kernel = dev.Kernels.Get(name, a =>
        {
            Action<ArrayView<Chunk16>, ArrayView<Chunk16>, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                int, int, int, EpilogueArgs> entry = f16 ? KernelF16 : KernelBf16;
            return a.LoadStreamKernel(entry, GpuKernelAttribute.SpecializationFor(dev, entry));   // (256, 2) on CUDA
        });
        var grid = new Index2D((n + Tile - 1) / Tile, (m + Tile - 1) / Tile);
        int sharedBytes = SharedBytes + (dev.IsCuda ? 0 : CpuScratchBytes);
        var config = new KernelConfig(grid, new Index2D(Threads, 1), SharedMemoryConfig.RequestDynamic<Chunk16>(sharedBytes / 16));
        var e = new EpilogueArgs { Ep = (int)ep, RowsPerSample = Math.Max(1, gate.RowsPerSample), GateStride = gate.GateStride, GateOffset = gate.GateOffset };
        kernel(config, xw, ww, b, y, resV, gateV, m, n, k, e);
    }
}
