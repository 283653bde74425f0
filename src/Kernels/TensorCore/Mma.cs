// Tensor-core matrix multiply-accumulate, one warp-wide m16n8k16 tile: D (16×8, fp32) = A (16×16) · B (16×8) + C.
//
// On CUDA this is one `mma.sync.aligned.m16n8k16.row.col.f32.{bf16,f16}.{bf16,f16}.f32` instruction (inline PTX,
// sm_80+; SASS HMMA.16816.F32[.BF16]). On ILGPU's CPU accelerator the `else` branch computes exactly what the
// instruction returns in each lane, gathering the fragments of the other lanes with warp shuffles — so the
// tiling, fragment indexing and epilogue code of every tensor-core kernel runs and is tested without a GPU;
// only the hardware instruction itself is not.
//
// Fragment layout (PTX ISA, "Matrix Fragments for mma.m16n8k16"), lane l, g = l >> 2, t = l & 3. Each 32-bit
// operand register holds two 16-bit elements, the lower-indexed one in the low half:
//   a0 = A[g][2t, 2t+1]     a1 = A[g+8][2t, 2t+1]     a2 = A[g][2t+8, 2t+9]     a3 = A[g+8][2t+8, 2t+9]
//   b0 = B[2t, 2t+1][g]     b1 = B[2t+8, 2t+9][g]     (B is k-major per column: "col" layout)
//   c0 = C[g][2t]  c1 = C[g][2t+1]  c2 = C[g+8][2t]  c3 = C[g+8][2t+1]   (fp32, one element per register)
// A PyTorch Linear weight W[n][k] is exactly the "col" B operand: b0 is two contiguous elements of row n.
//
// The emulation sums the 16 products in k order in fp32. bf16·bf16 and fp16·fp16 products are exact in fp32;
// the hardware's accumulation order and rounding are unspecified, so compare with a relative tolerance
// (~1e-5·√K), never bit for bit.
//
// Operand passing: instructions with one result use CudaAsm.Emit(asm, out r, inputs…) (values, no memory);
// mma/ldmatrix need 2–4 results and go through EmitRef with Input/Ref/Output structs, which ILGPU lowers to
// tiny local allocas. Compiled at OptimizationLevel.O2, ptxas promotes those to registers (0-byte stack frame,
// no LDL/STL in SASS); at O1 they stay in local memory around every HMMA. Tensor-core kernels are therefore
// compiled at O2, and `blockdance ptx` checks the stack frame of each.
using ILGPU;
using ILGPU.Runtime.Cuda;
using Half = ILGPU.Half;

namespace BlockDance.Kernels.TensorCore;

public static class Mma
{
    /// <summary>c += A·B for one m16n8k16 tile with bf16 operands (per-lane fragments, see the header).</summary>
    public static void M16N8K16Bf16(uint a0, uint a1, uint a2, uint a3, uint b0, uint b1,
        ref float c0, ref float c1, ref float c2, ref float c3)
    {
        if (CudaAsm.IsSupported)
        {
            Input<uint> ia0 = a0, ia1 = a1, ia2 = a2, ia3 = a3, ib0 = b0, ib1 = b1;
            Ref<float> r0 = c0, r1 = c1, r2 = c2, r3 = c3;
            CudaAsm.EmitRef("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};",
                ref r0, ref r1, ref r2, ref r3, ref ia0, ref ia1, ref ia2, ref ia3, ref ib0, ref ib1);
            c0 = r0.Value; c1 = r1.Value; c2 = r2.Value; c3 = r3.Value;
        }
        else
        {
            Emulate(a0, a1, a2, a3, b0, b1, ref c0, ref c1, ref c2, ref c3, false);
        }
    }

    /// <summary>c += A·B for one m16n8k16 tile with IEEE fp16 operands.</summary>
    public static void M16N8K16F16(uint a0, uint a1, uint a2, uint a3, uint b0, uint b1,
        ref float c0, ref float c1, ref float c2, ref float c3)
    {
        if (CudaAsm.IsSupported)
        {
            Input<uint> ia0 = a0, ia1 = a1, ia2 = a2, ia3 = a3, ib0 = b0, ib1 = b1;
            Ref<float> r0 = c0, r1 = c1, r2 = c2, r3 = c3;
            CudaAsm.EmitRef("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};",
                ref r0, ref r1, ref r2, ref r3, ref ia0, ref ia1, ref ia2, ref ia3, ref ib0, ref ib1);
            c0 = r0.Value; c1 = r1.Value; c2 = r2.Value; c3 = r3.Value;
        }
        else
        {
            Emulate(a0, a1, a2, a3, b0, b1, ref c0, ref c1, ref c2, ref c3, true);
        }
    }

    /// <summary>Two fp32 values rounded (to nearest even) into one bf16x2 register, `lo` in the low half.
    /// (cvt.rn.bf16x2.f32 takes the high element first.)</summary>
    public static uint PackBf16(float lo, float hi)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("cvt.rn.bf16x2.f32 %0, %1, %2;", out uint d, hi, lo);
            return d;
        }
        return Bf16.Pack(Bf16.FromFloat(lo), Bf16.FromFloat(hi));
    }

    /// <summary>Two fp32 values rounded into one f16x2 register, `lo` in the low half.</summary>
    public static uint PackF16(float lo, float hi)
    {
        if (CudaAsm.IsSupported)
        {
            CudaAsm.Emit("cvt.rn.f16x2.f32 %0, %1, %2;", out uint d, hi, lo);
            return d;
        }
        return F16Bits(lo) | (F16Bits(hi) << 16);
    }

    // ------------------------------------------------------------------ CPU emulation
    /// <summary>IEEE fp32 → fp16 bits, round to nearest even, overflow to ±∞, subnormals kept (what cvt.rn.f16 does;
    /// ILGPU's Half conversion is not guaranteed to round this way).</summary>
    static uint F16Bits(float f)
    {
        uint x = Interop.FloatAsInt(f), sign = (x >> 16) & 0x8000u, mant = x & 0x7FFFFFu;
        int exp = (int)((x >> 23) & 0xFF);
        if (exp == 0xFF) return sign | 0x7C00u | (mant != 0 ? 0x200u : 0u);
        int e = exp - 127 + 15;
        if (e >= 31) return sign | 0x7C00u;
        if (e <= 0)
        {
            if (e < -10) return sign;
            mant |= 0x800000u;
            int shift = 14 - e;                              // 14..24
            uint q = mant >> shift, rem = mant & ((1u << shift) - 1), halfway = 1u << (shift - 1);
            if (rem > halfway || (rem == halfway && (q & 1) != 0)) q++;
            return sign | q;
        }
        uint h = ((uint)e << 10) | (mant >> 13), r = mant & 0x1FFFu;
        if (r > 0x1000u || (r == 0x1000u && (h & 1) != 0)) h++;  // a carry into the exponent is still correct (up to ∞)
        return sign | h;
    }

    static float Lo(uint v, bool f16) => f16 ? (float)Interop.IntAsFloat((ushort)(v & 0xFFFF)) : Interop.IntAsFloat(v << 16);
    static float Hi(uint v, bool f16) => f16 ? (float)Interop.IntAsFloat((ushort)(v >> 16)) : Interop.IntAsFloat(v & 0xFFFF0000u);

    /// <summary>Dot product of one A row fragment pair (k = 0..15) with one B column fragment pair.
    /// Row words: r0 = k 0,1 of lane t=0, … in the order the lanes hold them.</summary>
    static float Dot(uint rowLo0, uint rowLo1, uint rowLo2, uint rowLo3, uint rowHi0, uint rowHi1, uint rowHi2, uint rowHi3,
        uint colLo0, uint colLo1, uint colLo2, uint colLo3, uint colHi0, uint colHi1, uint colHi2, uint colHi3, float acc, bool f16)
    {
        // k = 0..7 come from the "lo" words (a0/a2 of lanes t = 0..3 hold k = 2t, 2t+1), k = 8..15 from the "hi" words.
        acc += Lo(rowLo0, f16) * Lo(colLo0, f16); acc += Hi(rowLo0, f16) * Hi(colLo0, f16);
        acc += Lo(rowLo1, f16) * Lo(colLo1, f16); acc += Hi(rowLo1, f16) * Hi(colLo1, f16);
        acc += Lo(rowLo2, f16) * Lo(colLo2, f16); acc += Hi(rowLo2, f16) * Hi(colLo2, f16);
        acc += Lo(rowLo3, f16) * Lo(colLo3, f16); acc += Hi(rowLo3, f16) * Hi(colLo3, f16);
        acc += Lo(rowHi0, f16) * Lo(colHi0, f16); acc += Hi(rowHi0, f16) * Hi(colHi0, f16);
        acc += Lo(rowHi1, f16) * Lo(colHi1, f16); acc += Hi(rowHi1, f16) * Hi(colHi1, f16);
        acc += Lo(rowHi2, f16) * Lo(colHi2, f16); acc += Hi(rowHi2, f16) * Hi(colHi2, f16);
        acc += Lo(rowHi3, f16) * Lo(colHi3, f16); acc += Hi(rowHi3, f16) * Hi(colHi3, f16);
        return acc;
    }

    static void Emulate(uint a0, uint a1, uint a2, uint a3, uint b0, uint b1,
        ref float c0, ref float c1, ref float c2, ref float c3, bool f16)
    {
        int lane = Warp.LaneIdx, g = lane >> 2, t = lane & 3;
        // Row g of A (k 0..15) lives in a0 (k 0..7) and a2 (k 8..15) of lanes 4g..4g+3; row g+8 in a1/a3.
        int ra = 4 * g;
        uint g0 = Warp.Shuffle(a0, ra), g1 = Warp.Shuffle(a0, ra + 1), g2 = Warp.Shuffle(a0, ra + 2), g3 = Warp.Shuffle(a0, ra + 3);
        uint h0 = Warp.Shuffle(a2, ra), h1 = Warp.Shuffle(a2, ra + 1), h2 = Warp.Shuffle(a2, ra + 2), h3 = Warp.Shuffle(a2, ra + 3);
        uint p0 = Warp.Shuffle(a1, ra), p1 = Warp.Shuffle(a1, ra + 1), p2 = Warp.Shuffle(a1, ra + 2), p3 = Warp.Shuffle(a1, ra + 3);
        uint q0 = Warp.Shuffle(a3, ra), q1 = Warp.Shuffle(a3, ra + 1), q2 = Warp.Shuffle(a3, ra + 2), q3 = Warp.Shuffle(a3, ra + 3);
        // Column n of B (k 0..15) lives in b0 (k 0..7) and b1 (k 8..15) of lanes 4n..4n+3; this lane needs n = 2t, 2t+1.
        int nb0 = 8 * t, nb1 = 8 * t + 4;
        uint x0 = Warp.Shuffle(b0, nb0), x1 = Warp.Shuffle(b0, nb0 + 1), x2 = Warp.Shuffle(b0, nb0 + 2), x3 = Warp.Shuffle(b0, nb0 + 3);
        uint y0 = Warp.Shuffle(b1, nb0), y1 = Warp.Shuffle(b1, nb0 + 1), y2 = Warp.Shuffle(b1, nb0 + 2), y3 = Warp.Shuffle(b1, nb0 + 3);
        uint u0 = Warp.Shuffle(b0, nb1), u1 = Warp.Shuffle(b0, nb1 + 1), u2 = Warp.Shuffle(b0, nb1 + 2), u3 = Warp.Shuffle(b0, nb1 + 3);
        uint v0 = Warp.Shuffle(b1, nb1), v1 = Warp.Shuffle(b1, nb1 + 1), v2 = Warp.Shuffle(b1, nb1 + 2), v3 = Warp.Shuffle(b1, nb1 + 3);
        c0 = Dot(g0, g1, g2, g3, h0, h1, h2, h3, x0, x1, x2, x3, y0, y1, y2, y3, c0, f16); // (g,   2t)
        c1 = Dot(g0, g1, g2, g3, h0, h1, h2, h3, u0, u1, u2, u3, v0, v1, v2, v3, c1, f16); // (g,   2t+1)
        c2 = Dot(p0, p1, p2, p3, q0, q1, q2, q3, x0, x1, x2, x3, y0, y1, y2, y3, c2, f16); // (g+8, 2t)
        c3 = Dot(p0, p1, p2, p3, q0, q1, q2, q3, u0, u1, u2, u3, v0, v1, v2, v3, c3, f16); // (g+8, 2t+1)
    }
}
