// LayerNorm + adaLN modulate v2 (CUDA): the same computation as LayerNormModulate v1
//   y[r, :] = (x[r, :] − mean) / √(var + 1e-6) · (1 + scale[s]) + shift[s],  s = r / rowsPerSample
// reference: LayerNormModulate.Reference.
//
// v2: one warp per row, 8 rows per group of 256 threads (v1: one thread per row — 4,096 threads for an
//     XL batch of 16, a few SMs busy). Lane l loads the 16-byte chunks l, l+32, l+64, … of its row (each
//     warp load is 512 contiguous bytes) and keeps all of them in registers (up to 12 chunks = 48 floats,
//     so D ≤ 1536 and D % 4 == 0; XL: 1152 = 32 lanes × 9 chunks). Mean and variance are two exact passes
//     over those registers (Σx, then Σ(x−mean)², each reduced with 5 ShuffleXor) — no re-read of x and
//     no E[x²]−E[x]² cancellation. The modulate is fused into the same pass, and the output is written
//     either as fp32 or as bf16 (round to nearest even, 8 bytes per chunk), the A operand of a bf16 GEMM.
// Dispatch (which version runs where) lives in LayerNormModulate.Run.
using BlockDance.Kernels.Harness;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class LayerNormModulateV2
{
    public const int WarpsPerGroup = 8, GroupSize = 32 * WarpsPerGroup, MaxChunks = 12;
    public const int MaxD = 32 * 4 * MaxChunks;

    /// <summary>v2 applies when rows split into whole float4 chunks and fit the 12 register chunks per lane.</summary>
    public static bool Supports(int d) => d % 4 == 0 && d <= MaxD;

    /// <summary>The 12 register chunks of one lane (struct fields: ILGPU keeps them in registers).</summary>
    struct Row
    {
        public Float4Chunk C0, C1, C2, C3, C4, C5, C6, C7, C8, C9, C10, C11;
    }

    /// <summary>Chunk c of this lane (float4 index lane + 32·c of the row); 0 past the row.</summary>
    static Float4Chunk Load(ArrayView<Float4Chunk> x, long row, int c, int chunks) => c < chunks ? x[row + 32 * c] : default;

    static float Sq(Float4Chunk v, float mean, int c, int chunks)
    {
        if (c >= chunks) return 0f;
        float a = v.X - mean, b = v.Y - mean, e = v.Z - mean, f = v.W - mean;
        return (a * a + b * b) + (e * e + f * f);
    }

    /// <summary>(x − mean)·rstd·(1 + scale) + shift for one chunk (index c of the row, in float4 units).</summary>
    static Float4Chunk Modulate(Float4Chunk v, float mean, float rstd, ArrayView<Float4Chunk> mod, long scaleAt, long shiftAt)
    {
        Float4Chunk sc = mod[scaleAt], sh = mod[shiftAt];
        Float4Chunk y;
        y.X = (v.X - mean) * rstd * (1f + sc.X) + sh.X;
        y.Y = (v.Y - mean) * rstd * (1f + sc.Y) + sh.Y;
        y.Z = (v.Z - mean) * rstd * (1f + sc.Z) + sh.Z;
        y.W = (v.W - mean) * rstd * (1f + sc.W) + sh.W;
        return y;
    }

    static uint PackBf16(float lo, float hi) => ToBf16(lo) | (ToBf16(hi) << 16);

    // Round to nearest even, as Bf16.FromFloat (finite inputs; LayerNorm outputs are finite).
    static uint ToBf16(float f)
    {
        uint u = (uint)Interop.FloatAsInt(f);
        u += 0x7FFFu + ((u >> 16) & 1u);
        return u >> 16;
    }

    static void Put(Float4Chunk v, int c, int chunks, long row, ArrayView<Float4Chunk> y, ArrayView<Bf16Chunk4> yb, bool bf16,
        float mean, float rstd, ArrayView<Float4Chunk> mod, long scaleAt, long shiftAt)
    {
        if (c >= chunks) return;
        var r = Modulate(v, mean, rstd, mod, scaleAt + 32 * c, shiftAt + 32 * c);
        if (bf16)
        {
            Bf16Chunk4 p;
            p.Lo = PackBf16(r.X, r.Y);
            p.Hi = PackBf16(r.Z, r.W);
            yb[row + 32 * c] = p;
        }
        else y[row + 32 * c] = r;
    }

    // Views are in float4 units: x/y row r starts at r·d/4, mod row s at s·modStride/4.
    [GpuKernel("layernorm_modulate_v2", Grouped = true, GroupSize = GroupSize, Claims = "LDG.E.128,STG.E.128,SHFL.BFLY")]
    static void Kernel(ArrayView<Float4Chunk> x, ArrayView<Float4Chunk> mod, ArrayView<Float4Chunk> y, ArrayView<Bf16Chunk4> yb, int bf16, int rows, int d4,
        int rowsPerSample, int modStride4, int shiftOffset4, int scaleOffset4)
    {
        int r = Grid.IdxX * (Group.DimX / 32) + Group.IdxX / 32;
        if (r >= rows) return; // whole warps leave together
        int lane = Warp.LaneIdx;
        int chunks = (d4 - lane + 31) / 32; // this lane's chunks: lane, lane+32, …
        long row = (long)r * d4 + lane;
        Row v;
        v.C0 = Load(x, row, 0, chunks); v.C1 = Load(x, row, 1, chunks); v.C2 = Load(x, row, 2, chunks);
        v.C3 = Load(x, row, 3, chunks); v.C4 = Load(x, row, 4, chunks); v.C5 = Load(x, row, 5, chunks);
        v.C6 = Load(x, row, 6, chunks); v.C7 = Load(x, row, 7, chunks); v.C8 = Load(x, row, 8, chunks);
        v.C9 = Load(x, row, 9, chunks); v.C10 = Load(x, row, 10, chunks); v.C11 = Load(x, row, 11, chunks);
        // chunks past the row are 0 and add nothing to Σx
        float sum = ((v.C0.Sum + v.C1.Sum) + (v.C2.Sum + v.C3.Sum)) + ((v.C4.Sum + v.C5.Sum) + (v.C6.Sum + v.C7.Sum))
                    + ((v.C8.Sum + v.C9.Sum) + (v.C10.Sum + v.C11.Sum));
        int dim = 4 * d4;
        float mean = WarpReduce.Sum(sum) / dim;
        float sq = ((Sq(v.C0, mean, 0, chunks) + Sq(v.C1, mean, 1, chunks)) + (Sq(v.C2, mean, 2, chunks) + Sq(v.C3, mean, 3, chunks)))
                   + ((Sq(v.C4, mean, 4, chunks) + Sq(v.C5, mean, 5, chunks)) + (Sq(v.C6, mean, 6, chunks) + Sq(v.C7, mean, 7, chunks)))
                   + ((Sq(v.C8, mean, 8, chunks) + Sq(v.C9, mean, 9, chunks)) + (Sq(v.C10, mean, 10, chunks) + Sq(v.C11, mean, 11, chunks)));
        float rstd = 1f / MathF.Sqrt(WarpReduce.Sum(sq) / dim + LayerNormModulate.Eps);

        long m = (long)(r / rowsPerSample) * modStride4 + lane;
        long scaleAt = m + scaleOffset4, shiftAt = m + shiftOffset4;
        bool b = bf16 != 0;
        Put(v.C0, 0, chunks, row, y, yb, b, mean, rstd, mod, scaleAt, shiftAt);
        Put(v.C1, 1, chunks, row, y, yb, b, mean, rstd, mod, scaleAt, shiftAt);
        Put(v.C2, 2, chunks, row, y, yb, b, mean, rstd, mod, scaleAt, shiftAt);
        Put(v.C3, 3, chunks, row, y, yb, b, mean, rstd, mod, scaleAt, shiftAt);
        Put(v.C4, 4, chunks, row, y, yb, b, mean, rstd, mod, scaleAt, shiftAt);
        Put(v.C5, 5, chunks, row, y, yb, b, mean, rstd, mod, scaleAt, shiftAt);
        Put(v.C6, 6, chunks, row, y, yb, b, mean, rstd, mod, scaleAt, shiftAt);
        Put(v.C7, 7, chunks, row, y, yb, b, mean, rstd, mod, scaleAt, shiftAt);
        Put(v.C8, 8, chunks, row, y, yb, b, mean, rstd, mod, scaleAt, shiftAt);
        Put(v.C9, 9, chunks, row, y, yb, b, mean, rstd, mod, scaleAt, shiftAt);
        Put(v.C10, 10, chunks, row, y, yb, b, mean, rstd, mod, scaleAt, shiftAt);
        Put(v.C11, 11, chunks, row, y, yb, b, mean, rstd, mod, scaleAt, shiftAt);
    }

    /// <summary>True when v2 can run this call: whole float4 chunks everywhere (views 16-byte aligned).</summary>
    public static bool Supports(int d, int modStride, int shiftOffset, int scaleOffset) =>
        Supports(d) && modStride % 4 == 0 && shiftOffset % 4 == 0 && scaleOffset % 4 == 0;

    static void Launch(ComputeDevice dev, ArrayView<float> x, ArrayView<float> mod, ArrayView<Float4Chunk> y, ArrayView<Bf16Chunk4> yb, bool bf16,
        int rows, int d, int rowsPerSample, int modStride, int shiftOffset, int scaleOffset)
    {
        Check.Size("layernorm x", x.Length, (long)rows * d);
        long samples = (rows + rowsPerSample - 1) / rowsPerSample;
        Check.Size("layernorm modulation", mod.Length, samples * modStride);
        if (!Supports(d, modStride, shiftOffset, scaleOffset) || !Chunks.Aligned16(x) || !Chunks.Aligned16(mod))
            throw new ArgumentException($"layernorm v2: expected d ≤ {MaxD}, d, modulation stride and offsets multiples of 4 and 16-byte aligned views, found d {d}, stride {modStride}, offsets {shiftOffset}/{scaleOffset}");
        var xv = x.SubView(0, (long)rows * d).Cast<Float4Chunk>();
        var mv = mod.SubView(0, samples * modStride).Cast<Float4Chunk>();
        // 8 warps per group on CUDA; one on this project's CPU accelerator (its groups are one warp wide)
        int warps = dev.Accelerator.MaxNumThreadsPerGroup >= GroupSize ? WarpsPerGroup : 1;
        int groups = (rows + warps - 1) / warps;
        // On CUDA the kernel is loaded with the .maxntid that `blockdance ptx` checks ([GpuKernel] GroupSize).
        var spec = dev.IsCuda ? new KernelSpecialization(GroupSize, null) : KernelSpecialization.Empty;
        dev.Kernels.Get(bf16 ? "layernorm_modulate_v2_bf16" : "layernorm_modulate_v2", a => a.LoadStreamKernel<ArrayView<Float4Chunk>, ArrayView<Float4Chunk>, ArrayView<Float4Chunk>,
                ArrayView<Bf16Chunk4>, int, int, int, int, int, int, int>(Kernel, spec))
            (new KernelConfig(groups, 32 * warps), xv, mv, y, yb, bf16 ? 1 : 0, rows, d / 4, rowsPerSample, modStride / 4, shiftOffset / 4, scaleOffset / 4);
    }

    /// <summary>y (rows, d) fp32 = LN(x) · (1 + scale) + shift with the v2 kernel.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float> mod, ArrayView<float> y, int rows, int d,
        int rowsPerSample, int modStride, int shiftOffset, int scaleOffset)
    {
        Check.Size("layernorm y", y.Length, (long)rows * d);
        if (!Chunks.Aligned16(y)) throw new ArgumentException($"layernorm v2: expected a 16-byte aligned output view, found an unaligned view");
        var yv = y.SubView(0, (long)rows * d);
        Launch(dev, x, mod, yv.Cast<Float4Chunk>(), yv.Cast<Bf16Chunk4>(), false, rows, d, rowsPerSample, modStride, shiftOffset, scaleOffset);
    }

    /// <summary>y (rows, d) bf16 (round to nearest even) = LN(x) · (1 + scale) + shift: the A operand of a bf16 GEMM.</summary>
    public static void RunBf16(ComputeDevice dev, ArrayView<float> x, ArrayView<float> mod, ArrayView<ushort> y, int rows, int d,
        int rowsPerSample, int modStride, int shiftOffset, int scaleOffset)
    {
        Check.Size("layernorm y (bf16)", y.Length, (long)rows * d);
        if (!Chunks.Aligned16(y)) throw new ArgumentException($"layernorm v2: expected a 16-byte aligned output view, found an unaligned view");
        var yv = y.SubView(0, (long)rows * d);
        Launch(dev, x, mod, yv.Cast<Float4Chunk>(), yv.Cast<Bf16Chunk4>(), true, rows, d, rowsPerSample, modStride, shiftOffset, scaleOffset);
    }
}
