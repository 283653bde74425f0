// bf16 ⇄ fp32 on the host and in kernels (ILGPU has no bf16 type: a bf16 is the upper 16 bits of an fp32).
//   fp32 → bf16: round to nearest, ties to even (what cvt.rn.bf16x2.f32 does on the GPU); NaN stays NaN.
//   bf16 → fp32: exact (shift left by 16).
// Pack(lo, hi) puts `lo` in the low half — the element with the lower index in an mma fragment register.
using ILGPU;

namespace BlockDance.Kernels;

public static class Bf16
{
    public static ushort FromFloat(float f)
    {
        uint u = (uint)Interop.FloatAsInt(f);
        if ((u & 0x7FFFFFFFu) > 0x7F800000u) return (ushort)((u >> 16) | 0x40); // quiet NaN
        u += 0x7FFFu + ((u >> 16) & 1u);
        return (ushort)(u >> 16);
    }

    public static float ToFloat(ushort b) => Interop.IntAsFloat((uint)b << 16);

    /// <summary>fp32 rounded to the nearest bf16 and back (the value a bf16 operand carries).</summary>
    public static float Round(float f) => ToFloat(FromFloat(f));

    public static uint Pack(ushort lo, ushort hi) => lo | ((uint)hi << 16);
    public static ushort Lo(uint packed) => (ushort)(packed & 0xFFFF);
    public static ushort Hi(uint packed) => (ushort)(packed >> 16);

    public static ushort[] FromFloats(ReadOnlySpan<float> src)
    {
        var dst = new ushort[src.Length];
        for (int i = 0; i < src.Length; i++) dst[i] = FromFloat(src[i]);
        return dst;
    }
}
