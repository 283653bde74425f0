// Attention v3 (bf16 tensor cores, CUDA): FlashAttention-2 on mma.sync — the same computation as Attention v1,
// with the two matmuls on bf16 operands and fp32 accumulation (Dao, "FlashAttention-2", 2023; fragment layouts
// from the PTX ISA, see src/Kernels/TensorCore/Mma.cs).
//
//   qkv (N, T, 3D) fp32 = [q | k | v], out (N, T, D) fp32;   reference: Attention.Reference
//
// v3 layout (one group of 8 warps per (n, head, 128 query rows) — 4 warps and 64 rows when that would leave
// the GPU under two waves of groups; one warp per group on the CPU accelerator): every K/V tile staged serves
// the group's 16·warps query rows, so larger groups read K and V from L2 fewer times.
//   - staging: q, k, v rows are read as fp32 (16-byte loads) and rounded to bf16 (RNE) into dynamic shared memory — the Q tile
//     (16 rows per warp) once, then one 64-key K tile and V tile at a time. (A bf16 qkv from the GEMM epilogue
//     would make this a plain copy; cp.async is not used: with ILGPU's EmitRef operands it forces the mma
//     operands into local memory, see TensorCore/CpAsync.cs.)
//   - head dim: hd % 8 == 0, hd ≤ 80. S = Q·Kᵀ runs over hdPad = hd rounded up to 16 (zero-filled columns;
//     XL: 72 → 80 = 5 k16 steps, 11% more S MMAs than exact); O = P·V runs over hd/8 n8-tiles (XL: 9, exact).
//   - shared rows are padded to an odd number of 16-byte chunks (XL: Q/K 88 bf16 = 176 B, V 72 = 144 B) so
//     the 8 row addresses of every ldmatrix hit 8 distinct bank groups: Q 128·176 + K 64·176 + V 64·144 =
//     43,008 B with 8 warps (31,744 B with 4), under ILGPU's 48 KB.
//   - per key tile, per warp: S (16×64) = 5 k16 steps × (1 Q ldmatrix.x4 + 4 K ldmatrix.x4 + 8 mma);
//     scale, mask keys ≥ T to −∞, online softmax per row (each lane holds rows g and g+8: max over its 16
//     values, then 2 ShuffleXor over the quad); P stays in registers — the S accumulators of n-tiles 2j, 2j+1
//     packed to bf16 ARE the A fragment of k16 step j (no shuffle, no shared memory); O (16×72) += P·V with
//     V through ldmatrix.trans (4 × .x4 + 1 × .x2) and 9 mma per k16 step.
//   - the row sum l is kept per lane and quad-reduced once at the end; O /= l, stored as fp32.
// Dispatch (which version runs where) lives in Attention.Run: v3 on CUDA when the precision is bf16/fp16.
using BlockDance.Kernels.Harness;
using BlockDance.Kernels.TensorCore;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class AttentionV3
{
    public const int WarpsPerGroup = 8, KeysPerTile = 64, MaxHeadDim = 80;

    public static bool Supports(int hd) => hd >= 8 && hd <= MaxHeadDim && hd % 8 == 0;

    /// <summary>True when the device has what v3 uses: bf16 mma.sync m16n8k16 and cvt.rn.bf16x2.f32 exist from sm_80
    /// on (PTX ISA); the CPU accelerator emulates both.</summary>
    public static bool SupportsDevice(ComputeDevice dev) =>
        !dev.IsCuda || dev.Accelerator is ILGPU.Runtime.Cuda.CudaAccelerator { Architecture: { } arch } && arch >= ILGPU.Runtime.Cuda.CudaArchitecture.SM_80;

    /// <summary>Row stride in bf16 elements: `elems` padded to an odd number of 16-byte chunks (conflict-free ldmatrix).</summary>
    static int RowStride(int elems) => elems / 8 % 2 == 1 ? elems : elems + 8;

    /// <summary>Four fp32 accumulators of one m16n8 tile: (g, 2t), (g, 2t+1), (g+8, 2t), (g+8, 2t+1).</summary>
    struct Acc4
    {
        public float C0, C1, C2, C3;
    }

    static Acc4 Mma(Acc4 c, uint a0, uint a1, uint a2, uint a3, uint b0, uint b1)
    {
        float c0 = c.C0, c1 = c.C1, c2 = c.C2, c3 = c.C3;
        TensorCore.Mma.M16N8K16Bf16(a0, a1, a2, a3, b0, b1, ref c0, ref c1, ref c2, ref c3);
        Acc4 r;
        r.C0 = c0; r.C1 = c1; r.C2 = c2; r.C3 = c3;
        return r;
    }

    /// <summary>fp32 rows → bf16 in shared memory, four elements per thread and step (one 16-byte load, one
    /// 8-byte store): `rows` rows of `stride` elements starting at byte `at`; source row r starts at float4
    /// (rowStart + r)·pitch4 + col4; rows ≥ valid and elements ≥ hd are zero (hd % 8 == 0).</summary>
    static void Stage(ArrayView<Bf16Chunk4> quads, int at, int rows, int stride, ArrayView<Float4Chunk> qkv4, long rowStart, int valid,
        long pitch4, long col4, int hd, int tid, int threads)
    {
        int perRow = stride / 4;
        for (int idx = tid; idx < rows * perRow; idx += threads)
        {
            int r = idx / perRow, q = idx % perRow;
            bool inside = r < valid && 4 * q < hd;
            Float4Chunk v = inside ? qkv4[(rowStart + r) * pitch4 + col4 + q] : default;
            Bf16Chunk4 p;
            p.Lo = TensorCore.Mma.PackBf16(v.X, v.Y);
            p.Hi = TensorCore.Mma.PackBf16(v.Z, v.W);
            quads[at / 8 + idx] = p;
        }
    }

    /// <summary>S tiles 2np, 2np+1 += Q (this warp's 16 rows, k16 step at column kc) · K (keys 16np … 16np+15)ᵀ.</summary>
    static void QkPair(ArrayView<uint> words, int kBase, int stride, int kc, int np, uint a0, uint a1, uint a2, uint a3, ref Acc4 x, ref Acc4 y)
    {
        int l = Warp.LaneIdx;
        LdMatrix.X4(words, kBase + ((16 * np + (l & 7) + 8 * (l >> 4)) * stride + kc + 8 * ((l >> 3) & 1)) * 2,
            out uint b0, out uint b1, out uint b2, out uint b3);
        x = Mma(x, a0, a1, a2, a3, b0, b1);
        y = Mma(y, a0, a1, a2, a3, b2, b3);
    }

    /// <summary>O n-tiles 2p, 2p+1 (or only 2p when it is the last of an odd count) += P (k16 step kk) · V.</summary>
    static void PvPair(ArrayView<uint> words, int vBase, int stride, int kk, int p, int nTiles, uint a0, uint a1, uint a2, uint a3, ref Acc4 x, ref Acc4 y)
    {
        int l = Warp.LaneIdx;
        if (nTiles >= 2 * p + 2)
        {
            LdMatrix.X4Trans(words, vBase + ((16 * kk + (l & 7) + 8 * ((l >> 3) & 1)) * stride + 16 * p + 8 * (l >> 4)) * 2,
                out uint b0, out uint b1, out uint b2, out uint b3);
            x = Mma(x, a0, a1, a2, a3, b0, b1);
            y = Mma(y, a0, a1, a2, a3, b2, b3);
        }
        else if (nTiles == 2 * p + 1)
        {
            LdMatrix.X2Trans(words, vBase + ((16 * kk + (l & 15)) * stride + 16 * p) * 2, out uint b0, out uint b1);
            x = Mma(x, a0, a1, a2, a3, b0, b1);
        }
    }

    /// <summary>Scale one S tile, −∞ for keys ≥ valid (columns 8j + 2t, 8j + 2t + 1 of the key tile).</summary>
    static Acc4 ScaleMask(Acc4 s, int j, int valid, float scale)
    {
        int col = 8 * j + 2 * (Warp.LaneIdx & 3);
        Acc4 r;
        r.C0 = col < valid ? s.C0 * scale : float.NegativeInfinity;
        r.C1 = col + 1 < valid ? s.C1 * scale : float.NegativeInfinity;
        r.C2 = col < valid ? s.C2 * scale : float.NegativeInfinity;
        r.C3 = col + 1 < valid ? s.C3 * scale : float.NegativeInfinity;
        return r;
    }

    static float MaxTop(Acc4 s) => Math.Max(s.C0, s.C1);
    static float MaxBottom(Acc4 s) => Math.Max(s.C2, s.C3);

    /// <summary>p = exp(s − m) for rows g (mTop) and g+8 (mBottom).</summary>
    static Acc4 Exp(Acc4 s, float mTop, float mBottom)
    {
        Acc4 r;
        r.C0 = MathF.Exp(s.C0 - mTop); r.C1 = MathF.Exp(s.C1 - mTop);
        r.C2 = MathF.Exp(s.C2 - mBottom); r.C3 = MathF.Exp(s.C3 - mBottom);
        return r;
    }

    static Acc4 Rescale(Acc4 o, float top, float bottom)
    {
        Acc4 r;
        r.C0 = o.C0 * top; r.C1 = o.C1 * top; r.C2 = o.C2 * bottom; r.C3 = o.C3 * bottom;
        return r;
    }

    static void Store(ArrayView<float> o, Acc4 v, int n, long rowTop, long rowBottom, bool top, bool bottom, int hd, float invTop, float invBottom)
    {
        int col = 8 * n + 2 * (Warp.LaneIdx & 3);
        if (col >= hd) return;
        if (top) { o[rowTop + col] = v.C0 * invTop; o[rowTop + col + 1] = v.C1 * invTop; }
        if (bottom) { o[rowBottom + col] = v.C2 * invBottom; o[rowBottom + col + 1] = v.C3 * invBottom; }
    }

    [GpuKernel("attention_v3_bf16", Grouped = true, GroupSize = 32 * WarpsPerGroup, MinGroupsPerSM = 1, O2 = true, Claims = "HMMA.16816.F32.BF16,LDSM.16.M88.4,LDSM.16.MT88.4,MUFU.EX2")]
    static void Kernel(ArrayView<Float4Chunk> qkv4, ArrayView<float> o, int t, int heads, int hd, float scale, int tilesPerHead,
        int qkStride, int vStride, int kSteps, int nTiles)
    {
        var shared = SharedMemory.GetDynamic<Chunk16>();
        var words = shared.Cast<uint>();      // what ldmatrix (and its CPU emulation) reads
        var quads = shared.Cast<Bf16Chunk4>();    // what the staging writes
        int warps = Group.DimX / 32, rowsPerGroup = 16 * warps;
        int tile = Grid.IdxX % tilesPerHead, bh = Grid.IdxX / tilesPerHead;
        int h = bh % heads, b = bh / heads, d = heads * hd;
        int tid = Group.IdxX, l = Warp.LaneIdx, g = l >> 2, m0 = 16 * (tid / 32);
        int q0 = tile * rowsPerGroup;
        long pitch4 = 3L * d / 4, rowStart = (long)b * t;
        int kBase = rowsPerGroup * qkStride * 2, vBase = kBase + KeysPerTile * qkStride * 2;

        Stage(quads, 0, rowsPerGroup, qkStride, qkv4, rowStart + q0, t - q0, pitch4, (long)h * hd / 4, hd, tid, Group.DimX);

        Acc4 o0 = default, o1 = default, o2 = default, o3 = default, o4 = default;
        Acc4 o5 = default, o6 = default, o7 = default, o8 = default, o9 = default;
        float mTop = float.NegativeInfinity, mBottom = float.NegativeInfinity, lTop = 0f, lBottom = 0f;

        for (int k0 = 0; k0 < t; k0 += KeysPerTile)
        {
            int valid = Math.Min(KeysPerTile, t - k0);
            Group.Barrier(); // the previous K/V tile is no longer read (and, the first time, Q is staged)
            Stage(quads, kBase, KeysPerTile, qkStride, qkv4, rowStart + k0, valid, pitch4, (d + (long)h * hd) / 4, hd, tid, Group.DimX);
            Stage(quads, vBase, KeysPerTile, vStride, qkv4, rowStart + k0, valid, pitch4, (2L * d + (long)h * hd) / 4, hd, tid, Group.DimX);
            Group.Barrier();

            // S (16 × 64) = Q · Kᵀ over kSteps k16 steps of the padded head dim
            Acc4 s0 = default, s1 = default, s2 = default, s3 = default, s4 = default, s5 = default, s6 = default, s7 = default;
            for (int kk = 0; kk < kSteps; kk++)
            {
                int kc = 16 * kk;
                LdMatrix.X4(words, ((m0 + (l & 15)) * qkStride + kc + 8 * (l >> 4)) * 2, out uint a0, out uint a1, out uint a2, out uint a3);
                QkPair(words, kBase, qkStride, kc, 0, a0, a1, a2, a3, ref s0, ref s1);
                QkPair(words, kBase, qkStride, kc, 1, a0, a1, a2, a3, ref s2, ref s3);
                QkPair(words, kBase, qkStride, kc, 2, a0, a1, a2, a3, ref s4, ref s5);
                QkPair(words, kBase, qkStride, kc, 3, a0, a1, a2, a3, ref s6, ref s7);
            }
            s0 = ScaleMask(s0, 0, valid, scale); s1 = ScaleMask(s1, 1, valid, scale); s2 = ScaleMask(s2, 2, valid, scale); s3 = ScaleMask(s3, 3, valid, scale);
            s4 = ScaleMask(s4, 4, valid, scale); s5 = ScaleMask(s5, 5, valid, scale); s6 = ScaleMask(s6, 6, valid, scale); s7 = ScaleMask(s7, 7, valid, scale);

            // online softmax: rows g (top) and g+8 (bottom); the quad of lanes 4g..4g+3 shares a row
            float xTop = Math.Max(Math.Max(Math.Max(MaxTop(s0), MaxTop(s1)), Math.Max(MaxTop(s2), MaxTop(s3))),
                                  Math.Max(Math.Max(MaxTop(s4), MaxTop(s5)), Math.Max(MaxTop(s6), MaxTop(s7))));
            float xBottom = Math.Max(Math.Max(Math.Max(MaxBottom(s0), MaxBottom(s1)), Math.Max(MaxBottom(s2), MaxBottom(s3))),
                                     Math.Max(Math.Max(MaxBottom(s4), MaxBottom(s5)), Math.Max(MaxBottom(s6), MaxBottom(s7))));
            xTop = Math.Max(xTop, Warp.ShuffleXor(xTop, 1)); xTop = Math.Max(xTop, Warp.ShuffleXor(xTop, 2));
            xBottom = Math.Max(xBottom, Warp.ShuffleXor(xBottom, 1)); xBottom = Math.Max(xBottom, Warp.ShuffleXor(xBottom, 2));
            float newTop = Math.Max(mTop, xTop), newBottom = Math.Max(mBottom, xBottom); // finite: key 0 of a tile is real
            float corrTop = MathF.Exp(mTop - newTop), corrBottom = MathF.Exp(mBottom - newBottom);
            mTop = newTop; mBottom = newBottom;
            s0 = Exp(s0, mTop, mBottom); s1 = Exp(s1, mTop, mBottom); s2 = Exp(s2, mTop, mBottom); s3 = Exp(s3, mTop, mBottom);
            s4 = Exp(s4, mTop, mBottom); s5 = Exp(s5, mTop, mBottom); s6 = Exp(s6, mTop, mBottom); s7 = Exp(s7, mTop, mBottom);
            lTop = lTop * corrTop + (((s0.C0 + s0.C1) + (s1.C0 + s1.C1)) + ((s2.C0 + s2.C1) + (s3.C0 + s3.C1)))
                                  + (((s4.C0 + s4.C1) + (s5.C0 + s5.C1)) + ((s6.C0 + s6.C1) + (s7.C0 + s7.C1)));
            lBottom = lBottom * corrBottom + (((s0.C2 + s0.C3) + (s1.C2 + s1.C3)) + ((s2.C2 + s2.C3) + (s3.C2 + s3.C3)))
                                           + (((s4.C2 + s4.C3) + (s5.C2 + s5.C3)) + ((s6.C2 + s6.C3) + (s7.C2 + s7.C3)));
            o0 = Rescale(o0, corrTop, corrBottom); o1 = Rescale(o1, corrTop, corrBottom); o2 = Rescale(o2, corrTop, corrBottom);
            o3 = Rescale(o3, corrTop, corrBottom); o4 = Rescale(o4, corrTop, corrBottom); o5 = Rescale(o5, corrTop, corrBottom);
            o6 = Rescale(o6, corrTop, corrBottom); o7 = Rescale(o7, corrTop, corrBottom); o8 = Rescale(o8, corrTop, corrBottom);
            o9 = Rescale(o9, corrTop, corrBottom);

            // O += P · V: the S tiles 2kk, 2kk+1 packed to bf16 are the A fragment of k16 step kk
            for (int kk = 0; kk < KeysPerTile / 16; kk++)
            {
                Acc4 pl = kk == 0 ? s0 : kk == 1 ? s2 : kk == 2 ? s4 : s6;
                Acc4 ph = kk == 0 ? s1 : kk == 1 ? s3 : kk == 2 ? s5 : s7;
                uint a0 = TensorCore.Mma.PackBf16(pl.C0, pl.C1), a1 = TensorCore.Mma.PackBf16(pl.C2, pl.C3);
                uint a2 = TensorCore.Mma.PackBf16(ph.C0, ph.C1), a3 = TensorCore.Mma.PackBf16(ph.C2, ph.C3);
                PvPair(words, vBase, vStride, kk, 0, nTiles, a0, a1, a2, a3, ref o0, ref o1);
                PvPair(words, vBase, vStride, kk, 1, nTiles, a0, a1, a2, a3, ref o2, ref o3);
                PvPair(words, vBase, vStride, kk, 2, nTiles, a0, a1, a2, a3, ref o4, ref o5);
                PvPair(words, vBase, vStride, kk, 3, nTiles, a0, a1, a2, a3, ref o6, ref o7);
                PvPair(words, vBase, vStride, kk, 4, nTiles, a0, a1, a2, a3, ref o8, ref o9);
            }
        }

        lTop += Warp.ShuffleXor(lTop, 1); lTop += Warp.ShuffleXor(lTop, 2);
        lBottom += Warp.ShuffleXor(lBottom, 1); lBottom += Warp.ShuffleXor(lBottom, 2);
        int rTop = q0 + m0 + g, rBottom = rTop + 8;
        long oTop = (rowStart + rTop) * d + (long)h * hd, oBottom = (rowStart + rBottom) * d + (long)h * hd;
        bool top = rTop < t, bottom = rBottom < t;
        float iTop = 1f / lTop, iBottom = 1f / lBottom;
        Store(o, o0, 0, oTop, oBottom, top, bottom, hd, iTop, iBottom); Store(o, o1, 1, oTop, oBottom, top, bottom, hd, iTop, iBottom);
        Store(o, o2, 2, oTop, oBottom, top, bottom, hd, iTop, iBottom); Store(o, o3, 3, oTop, oBottom, top, bottom, hd, iTop, iBottom);
        Store(o, o4, 4, oTop, oBottom, top, bottom, hd, iTop, iBottom); Store(o, o5, 5, oTop, oBottom, top, bottom, hd, iTop, iBottom);
        Store(o, o6, 6, oTop, oBottom, top, bottom, hd, iTop, iBottom); Store(o, o7, 7, oTop, oBottom, top, bottom, hd, iTop, iBottom);
        Store(o, o8, 8, oTop, oBottom, top, bottom, hd, iTop, iBottom); Store(o, o9, 9, oTop, oBottom, top, bottom, hd, iTop, iBottom);
    }

    /// <summary>Warps per group: 8 (128 query rows), or 4 when 8 would give fewer than two groups per SM;
    /// 1 on the CPU accelerator, whose groups are one warp wide.</summary>
    public static int WarpsFor(ComputeDevice dev, int n, int t, int heads)
    {
        if (dev.Accelerator.MaxNumThreadsPerGroup < 32 * WarpsPerGroup) return 1;
        long groups = (long)n * heads * ((t + 16 * WarpsPerGroup - 1) / (16 * WarpsPerGroup));
        return groups >= 2L * dev.Accelerator.NumMultiprocessors ? WarpsPerGroup : WarpsPerGroup / 2;
    }

    /// <summary>o (n, t, heads·hd) = attention(qkv (n, t, 3·heads·hd)) on bf16 tensor cores; hd % 8 == 0, hd ≤ 80.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> qkv, ArrayView<float> o, int n, int t, int heads, int hd, float scale)
    {
        Check.Size("attention qkv", qkv.Length, 3L * n * t * heads * hd);
        Check.Size("attention out", o.Length, (long)n * t * heads * hd);
        if (!Supports(hd)) throw new ArgumentException($"attention v3: expected a head dim that is a multiple of 8 and ≤ {MaxHeadDim}, found {hd}");
        if (!Chunks.Aligned16(qkv)) throw new ArgumentException("attention v3: expected a 16-byte aligned qkv view (float4 loads), found an unaligned one");
        int warps = WarpsFor(dev, n, t, heads);
        int rowsPerGroup = 16 * warps, tilesPerHead = (t + rowsPerGroup - 1) / rowsPerGroup;
        int kSteps = (hd + 15) / 16, nTiles = hd / 8;
        int qkStride = RowStride(16 * kSteps), vStride = RowStride(hd);
        int bytes = (rowsPerGroup + KeysPerTile) * qkStride * 2 + KeysPerTile * vStride * 2;
        var config = new KernelConfig(n * heads * tilesPerHead, 32 * warps, SharedMemoryConfig.RequestDynamic<Chunk16>(bytes / 16));
        // On CUDA: .maxntid 256, .minnctapersm 1. With 2 groups per SM ptxas is capped at 128 registers: no spills
        // for sm_90, but 336 spilled bytes for sm_80 (blockdance ptx); one group per SM lets it take what it needs.
        // Which is faster on an H100 (occupancy vs the sm_80-only spills) is for the next GPU run to measure.
        var spec = dev.IsCuda ? new KernelSpecialization(32 * WarpsPerGroup, 1) : KernelSpecialization.Empty;
        dev.Kernels.Get("attention_v3_bf16", a => a.LoadStreamKernel<ArrayView<Float4Chunk>, ArrayView<float>, int, int, int, float, int, int, int, int, int>(Kernel, spec))
            (config, qkv.SubView(0, 3L * n * t * heads * hd).Cast<Float4Chunk>(), o, t, heads, hd, scale, tilesPerHead, qkStride, vStride, kSteps, nTiles);
    }

    /// <summary>The host reference of what v3 computes: q, k, v rounded to bf16, P rounded to bf16 before P·V,
    /// the softmax denominator from the unrounded P (fp64 here). Tests compare v3 with this at a tight
    /// tolerance, and with Attention.Reference at the bf16 tolerance.</summary>
    public static void ReferenceBf16(float[] qkv, float[] o, int n, int t, int heads, int hd, float scale) =>
        AttentionReference.SelfAttention(qkv, o, n, t, heads, hd, scale, new AttentionOptions { RoundBf16 = true });
}
