// A faster CPU emulation of ldmatrix.x4 and mma.m16n8k16 for kernels that run many of them (GEMM v3):
// the lanes exchange their operands through a per-warp scratch area in shared memory (one write, one warp
// barrier, the reads, one barrier) instead of one warp shuffle per register as in LdMatrix/Mma. On ILGPU's
// CPU accelerator a shuffle costs about as much as a barrier, so an emulated mma drops from 32 shuffles to
// 2 barriers. The result per lane is the same: exactly what the instruction returns in that lane under the
// PTX ISA fragment layouts (see Mma.cs and LdMatrix.cs for the tables); products in fp32, summed in k order.
// CPU only: kernels call these in the else branch of CudaAsm.IsSupported (the GPU never sees the scratch).
// Scratch: ScratchWordsPerWarp 32-bit words per warp, at word `scratch` + warp·ScratchWordsPerWarp.
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace BlockDance.Kernels.TensorCore;

public static class WarpScratch
{
    /// <summary>Words of scratch one warp needs (6 operand registers per lane).</summary>
    public const int ScratchWordsPerWarp = 32 * 6;

    /// <summary>ldmatrix.x4 (plain): this lane gives the byte offset of row (lane &amp; 7) of matrix (lane &gt;&gt; 3).</summary>
    public static void X4(ArrayView<uint> smem, int scratch, int byteOffset, out uint r0, out uint r1, out uint r2, out uint r3)
    {
        int lane = Warp.LaneIdx, s = scratch + Warp.WarpIdx * ScratchWordsPerWarp;
        smem[s + lane] = (uint)byteOffset;
        Warp.Barrier();
        int row = lane >> 2, word = lane & 3;
        r0 = smem[(int)(smem[s + row] >> 2) + word];
        r1 = smem[(int)(smem[s + 8 + row] >> 2) + word];
        r2 = smem[(int)(smem[s + 16 + row] >> 2) + word];
        r3 = smem[(int)(smem[s + 24 + row] >> 2) + word];
        Warp.Barrier();
    }

    static float Lo(uint v, bool f16) => f16 ? (float)Interop.IntAsFloat((ushort)(v & 0xFFFF)) : Interop.IntAsFloat(v << 16);
    static float Hi(uint v, bool f16) => f16 ? (float)Interop.IntAsFloat((ushort)(v >> 16)) : Interop.IntAsFloat(v & 0xFFFF0000u);

    /// <summary>mma.m16n8k16 (row.col, fp32 accumulate) with bf16 or fp16 operands: c += A·B for this lane's four outputs.</summary>
    public static void Mma(ArrayView<uint> smem, int scratch, bool f16, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1,
        ref float c0, ref float c1, ref float c2, ref float c3)
    {
        int lane = Warp.LaneIdx, s = scratch + Warp.WarpIdx * ScratchWordsPerWarp;
        int me = s + lane * 6;
        smem[me] = a0; smem[me + 1] = a1; smem[me + 2] = a2; smem[me + 3] = a3; smem[me + 4] = b0; smem[me + 5] = b1;
        Warp.Barrier();
        int g = lane >> 2, t = lane & 3;
        float d0 = c0, d1 = c1, d2 = c2, d3 = c3;
        // Row g of A: a0 (k = 2u, 2u+1) and a2 (k = 2u+8, 2u+9) of lane 4g+u; row g+8: a1, a3.
        // Column n of B: b0 (k = 2u, 2u+1) and b1 (k = 2u+8, 2u+9) of lane 4n+u; this lane needs n = 2t, 2t+1.
        for (int half = 0; half < 2; half++)          // k 0..7, then 8..15
            for (int u = 0; u < 4; u++)
            {
                int la = s + (4 * g + u) * 6, lb0 = s + (4 * (2 * t) + u) * 6, lb1 = s + (4 * (2 * t + 1) + u) * 6;
                uint rg = smem[la + 2 * half], rg8 = smem[la + 1 + 2 * half];
                uint col0 = smem[lb0 + 4 + half], col1 = smem[lb1 + 4 + half];
                d0 += Lo(rg, f16) * Lo(col0, f16); d0 += Hi(rg, f16) * Hi(col0, f16);
                d1 += Lo(rg, f16) * Lo(col1, f16); d1 += Hi(rg, f16) * Hi(col1, f16);
                d2 += Lo(rg8, f16) * Lo(col0, f16); d2 += Hi(rg8, f16) * Hi(col0, f16);
                d3 += Lo(rg8, f16) * Lo(col1, f16); d3 += Hi(rg8, f16) * Hi(col1, f16);
            }
        c0 = d0; c1 = d1; c2 = d2; c3 = d3;
        Warp.Barrier();
    }
}
