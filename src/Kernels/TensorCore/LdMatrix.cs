// ldmatrix: a warp loads 8×8 tiles of 16-bit elements from shared memory straight into mma fragments.
//
// `ldmatrix.sync.aligned.m8n8.{x4,x2}{,.trans}.shared.b16` (PTX ISA, "Warp-level matrix load instruction"; SASS
// LDSM.16.M88.4 / LDSM.16.MT88.4). Lanes 8j..8j+7 give the byte addresses of the 8 rows (16 bytes each, 16-byte
// aligned) of matrix j. Lane l, t = l & 3, receives in register j:
//   plain   the 32-bit word t of row l >> 2 of matrix j                  (elements [l>>2][2t], [l>>2][2t+1])
//   .trans  element l >> 2 of rows 2t and 2t+1 of matrix j, packed lo/hi (elements [2t][l>>2], [2t+1][l>>2])
// .x2 loads matrices 0 and 1 (addresses from lanes 0..15; the other lanes' addresses are ignored but every
// lane must execute the instruction).
//
// The CPU emulation (else branch of CudaAsm.IsSupported) gets each row address from its lane with a warp
// shuffle and reads the words from the shared view, so a kernel's address math runs unchanged on the CPU.
// Offsets are byte offsets into the kernel's dynamic shared allocation (see SharedTile).
using ILGPU;
using ILGPU.Runtime.Cuda;

namespace BlockDance.Kernels.TensorCore;

public static class LdMatrix
{
    /// <summary>Four 8×8 matrices; this lane supplies the address of row (lane &amp; 7) of matrix (lane &gt;&gt; 3).</summary>
    public static void X4(ArrayView<uint> smem, int byteOffset, out uint r0, out uint r1, out uint r2, out uint r3)
    {
        if (CudaAsm.IsSupported)
        {
            Output<uint> o0 = default, o1 = default, o2 = default, o3 = default;
            Input<uint> a = (uint)byteOffset;
            CudaAsm.EmitRef("{ .reg .u32 p; mov.u32 p, __dyn_shared_alloca; add.u32 p, p, %4; ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0,%1,%2,%3}, [p]; }", ref o0, ref o1, ref o2, ref o3, ref a);
            r0 = o0.Value; r1 = o1.Value; r2 = o2.Value; r3 = o3.Value;
        }
        else
        {
            r0 = Plain(smem, byteOffset, 0); r1 = Plain(smem, byteOffset, 1);
            r2 = Plain(smem, byteOffset, 2); r3 = Plain(smem, byteOffset, 3);
        }
    }

    /// <summary>Four 8×8 matrices, transposed on the way (B operand from a k-major [k][n] tile, e.g. V in attention).</summary>
    public static void X4Trans(ArrayView<uint> smem, int byteOffset, out uint r0, out uint r1, out uint r2, out uint r3)
    {
        if (CudaAsm.IsSupported)
        {
            Output<uint> o0 = default, o1 = default, o2 = default, o3 = default;
            Input<uint> a = (uint)byteOffset;
            CudaAsm.EmitRef("{ .reg .u32 p; mov.u32 p, __dyn_shared_alloca; add.u32 p, p, %4; ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0,%1,%2,%3}, [p]; }", ref o0, ref o1, ref o2, ref o3, ref a);
            r0 = o0.Value; r1 = o1.Value; r2 = o2.Value; r3 = o3.Value;
        }
        else
        {
            r0 = Trans(smem, byteOffset, 0); r1 = Trans(smem, byteOffset, 1);
            r2 = Trans(smem, byteOffset, 2); r3 = Trans(smem, byteOffset, 3);
        }
    }

    /// <summary>Two 8×8 matrices (addresses from lanes 0..15).</summary>
    public static void X2(ArrayView<uint> smem, int byteOffset, out uint r0, out uint r1)
    {
        if (CudaAsm.IsSupported)
        {
            Output<uint> o0 = default, o1 = default;
            Input<uint> a = (uint)byteOffset;
            CudaAsm.EmitRef("{ .reg .u32 p; mov.u32 p, __dyn_shared_alloca; add.u32 p, p, %2; ldmatrix.sync.aligned.m8n8.x2.shared.b16 {%0,%1}, [p]; }", ref o0, ref o1, ref a);
            r0 = o0.Value; r1 = o1.Value;
        }
        else
        {
            r0 = Plain(smem, byteOffset, 0); r1 = Plain(smem, byteOffset, 1);
        }
    }

    /// <summary>Two 8×8 matrices, transposed (addresses from lanes 0..15).</summary>
    public static void X2Trans(ArrayView<uint> smem, int byteOffset, out uint r0, out uint r1)
    {
        if (CudaAsm.IsSupported)
        {
            Output<uint> o0 = default, o1 = default;
            Input<uint> a = (uint)byteOffset;
            CudaAsm.EmitRef("{ .reg .u32 p; mov.u32 p, __dyn_shared_alloca; add.u32 p, p, %2; ldmatrix.sync.aligned.m8n8.x2.trans.shared.b16 {%0,%1}, [p]; }", ref o0, ref o1, ref a);
            r0 = o0.Value; r1 = o1.Value;
        }
        else
        {
            r0 = Trans(smem, byteOffset, 0); r1 = Trans(smem, byteOffset, 1);
        }
    }

    // ------------------------------------------------------------------ CPU emulation
    // Every lane calls both shuffles (warp-uniform), whichever matrix it needs.
    static uint Plain(ArrayView<uint> smem, int byteOffset, int matrix)
    {
        int lane = Warp.LaneIdx;
        int row = Warp.Shuffle(byteOffset, 8 * matrix + (lane >> 2));
        return smem[(row >> 2) + (lane & 3)];
    }

    static uint Trans(ArrayView<uint> smem, int byteOffset, int matrix)
    {
        int lane = Warp.LaneIdx, t = lane & 3;
        int rowLo = Warp.Shuffle(byteOffset, 8 * matrix + 2 * t);
        int rowHi = Warp.Shuffle(byteOffset, 8 * matrix + 2 * t + 1);
        int col = 2 * (lane >> 2);
        return SharedTile.Half16(smem, rowLo + col) | (SharedTile.Half16(smem, rowHi + col) << 16);
    }
}
