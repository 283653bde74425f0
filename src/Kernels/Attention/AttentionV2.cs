// Attention v2 (fp32, CUDA): FlashAttention-2 style tiling of the same computation as Attention v1
// (Dao, "FlashAttention-2", 2023: queries split across groups, K/V tiles staged in shared memory, the
// running max, the running denominator and the output accumulator of every query row in registers).
//
//   qkv (N, T, 3D) = [q | k | v], out (N, T, D), D = heads·hd;   reference: Attention.Reference
//
// v2 layout (one group of 256 threads per (n, head, tile of Q queries); 32 on the CPU accelerator):
//   - tpq threads share one query row (tpq = 4 for hd ≤ 96, 8 for ≤ 192, 16 for ≤ 384, 32 for ≤ 768 — the
//     VAE's single 512-wide head), so a group holds Q = 256/tpq query rows (64 … 8). Thread `part` of a row owns the head dims
//     e = part + tpq·k, k = 0 … 6·chunks−1, kept as up to four 6-float register chunks (V6 below; ILGPU
//     does not unroll loops, so register tiles are struct fields). XL's hd 72 = 4 threads × 3 chunks × 6,
//     no padding waste.
//   - K and V tiles of Bc = Q keys × hdS floats sit in dynamic shared memory (hdS = tpq·6·chunks ≥ hd,
//     the padding columns zero-filled): 2·64·72·4 = 36,864 B for XL, never more than 49,152 B (ILGPU's
//     48 KB cap: Bc·hdS ≤ (256/tpq)·(24·tpq) = 6,144 floats per tile). All lanes of a warp read the same key row at once (a broadcast), the tpq parts read
//     consecutive words — no bank conflicts.
//   - per key: 6·chunks FMA, then log2(tpq) ShuffleXor give every part the full score; the online
//     softmax runs per 8 keys (one max, one rescale of l and o per 8 keys instead of per key).
//   - ragged T: keys past the end score −∞ and get p = 0 (their tile rows are zero-filled); queries
//     past the end compute but do not store. No mask otherwise (DiT attention is unmasked).
// Dispatch (which version runs where) lives in Attention.Run.
using BlockDance.Kernels.Harness;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class AttentionV2
{
    public const int GroupSize = 256;
    const int ChunkWidth = 6, MaxChunks = 4;

    /// <summary>Largest head dim v2 handles (32 threads per row × 4 chunks × 6 floats).</summary>
    public const int MaxHeadDim = 32 * MaxChunks * ChunkWidth;

    /// <summary>256 threads where the device allows it; one warp on this project's CPU accelerator (its
    /// groups are one warp wide), which runs the same code with fewer query rows per group.</summary>
    public static int GroupSizeFor(ComputeDevice dev) => dev.Accelerator.MaxNumThreadsPerGroup >= GroupSize ? GroupSize : 32;

    /// <summary>Threads per query row (the fewest of 4, 8, 16, 32 that hold hd in ≤ 24 registers each),
    /// register chunks per thread and the padded shared row length.</summary>
    public static (int Tpq, int Chunks, int RowStride) Plan(int hd)
    {
        if (hd < 1 || hd > MaxHeadDim) throw new ArgumentOutOfRangeException(nameof(hd), $"attention v2: expected head dim 1..{MaxHeadDim}, found {hd}");
        int tpq = 4;
        while (tpq * MaxChunks * ChunkWidth < hd) tpq *= 2;
        int chunks = (hd + tpq * ChunkWidth - 1) / (tpq * ChunkWidth);
        return (tpq, chunks, tpq * ChunkWidth * chunks);
    }

    /// <summary>Six floats of one thread's head dims (struct fields stay in registers).</summary>
    struct V6
    {
        public float A, B, C, D, E, F;

        /// <summary>Elements base, base+stride, … base+5·stride of a view, zero where the dim is ≥ limit.</summary>
        public static V6 Load(ArrayView<float> src, long start, int e0, int stride, int limit, float mul)
        {
            V6 v = default;
            if (e0 < limit) v.A = src[start + e0] * mul;
            if (e0 + stride < limit) v.B = src[start + e0 + stride] * mul;
            if (e0 + 2 * stride < limit) v.C = src[start + e0 + 2 * stride] * mul;
            if (e0 + 3 * stride < limit) v.D = src[start + e0 + 3 * stride] * mul;
            if (e0 + 4 * stride < limit) v.E = src[start + e0 + 4 * stride] * mul;
            if (e0 + 5 * stride < limit) v.F = src[start + e0 + 5 * stride] * mul;
            return v;
        }

        /// <summary>Σ this · shared[at + stride·m], m = 0..5.</summary>
        public readonly float Dot(ArrayView<float> s, int at, int stride) =>
            A * s[at] + B * s[at + stride] + C * s[at + 2 * stride] + D * s[at + 3 * stride] + E * s[at + 4 * stride] + F * s[at + 5 * stride];

        /// <summary>this = this·corr + p·shared[at + stride·m].</summary>
        public void Scale(float corr) { A *= corr; B *= corr; C *= corr; D *= corr; E *= corr; F *= corr; }

        public void Fma(float p, ArrayView<float> s, int at, int stride)
        {
            A += p * s[at]; B += p * s[at + stride]; C += p * s[at + 2 * stride];
            D += p * s[at + 3 * stride]; E += p * s[at + 4 * stride]; F += p * s[at + 5 * stride];
        }

        public readonly void Store(ArrayView<float> dst, long start, int e0, int stride, int limit, float mul)
        {
            if (e0 < limit) dst[start + e0] = A * mul;
            if (e0 + stride < limit) dst[start + e0 + stride] = B * mul;
            if (e0 + 2 * stride < limit) dst[start + e0 + 2 * stride] = C * mul;
            if (e0 + 3 * stride < limit) dst[start + e0 + 3 * stride] = D * mul;
            if (e0 + 4 * stride < limit) dst[start + e0 + 4 * stride] = E * mul;
            if (e0 + 5 * stride < limit) dst[start + e0 + 5 * stride] = F * mul;
        }
    }

    /// <summary>The score of key row `j` of the staged tile: partial dots over this thread's chunks,
    /// summed over the tpq threads of the row; −∞ for keys past the end of the sequence.</summary>
    static float Score(ArrayView<float> ks, int j, int valid, int rowStride, int part, int tpq, int chunks,
        in V6 q0, in V6 q1, in V6 q2, in V6 q3)
    {
        int at = (j < valid ? j : 0) * rowStride + part, step = tpq * ChunkWidth; // past the end: any real row, masked below
        float s = q0.Dot(ks, at, tpq);
        if (chunks > 1) s += q1.Dot(ks, at + step, tpq);
        if (chunks > 2) s += q2.Dot(ks, at + 2 * step, tpq);
        if (chunks > 3) s += q3.Dot(ks, at + 3 * step, tpq);
        s += Warp.ShuffleXor(s, 1);
        s += Warp.ShuffleXor(s, 2);
        if (tpq > 4) s += Warp.ShuffleXor(s, 4);
        if (tpq > 8) s += Warp.ShuffleXor(s, 8);
        if (tpq > 16) s += Warp.ShuffleXor(s, 16);
        return j < valid ? s : float.NegativeInfinity;
    }

    static void Accumulate(ArrayView<float> vs, int j, int valid, float p, int rowStride, int part, int tpq, int chunks,
        ref V6 o0, ref V6 o1, ref V6 o2, ref V6 o3)
    {
        int at = (j < valid ? j : 0) * rowStride + part, step = tpq * ChunkWidth; // past the end p = 0
        o0.Fma(p, vs, at, tpq);
        if (chunks > 1) o1.Fma(p, vs, at + step, tpq);
        if (chunks > 2) o2.Fma(p, vs, at + 2 * step, tpq);
        if (chunks > 3) o3.Fma(p, vs, at + 3 * step, tpq);
    }

    [GpuKernel("attention_v2", Grouped = true, GroupSize = GroupSize, Claims = "FFMA,SHFL.BFLY,LDS,BAR.SYNC,MUFU.EX2")]
    static void Kernel(ArrayView<float> qkv, ArrayView<float> o, int t, int heads, int hd, float scale,
        int tpq, int chunks, int rowStride, int tilesPerHead)
    {
        var shared = SharedMemory.GetDynamic<float>();
        int groupSize = Group.DimX;                    // 256 on CUDA (GroupSizeFor)
        int rowsPerGroup = groupSize / tpq;            // queries per group = keys per tile (Bc)
        var ks = shared.SubView(0, rowsPerGroup * rowStride);
        var vs = shared.SubView(rowsPerGroup * rowStride, rowsPerGroup * rowStride);

        int tile = Grid.IdxX % tilesPerHead, bh = Grid.IdxX / tilesPerHead;
        int h = bh % heads, b = bh / heads;
        int d = heads * hd;
        int tid = Group.IdxX, part = tid % tpq;
        int i = tile * rowsPerGroup + tid / tpq;       // this thread's query row
        bool rowValid = i < t;
        long qRow = ((long)b * t + (rowValid ? i : 0)) * 3 * d + h * hd;
        int step = tpq * ChunkWidth;
        // q pre-multiplied by the softmax scale; dims past hd load as 0
        V6 q0 = V6.Load(qkv, qRow, part, tpq, hd, scale);
        V6 q1 = chunks > 1 ? V6.Load(qkv, qRow, part + step, tpq, hd, scale) : default;
        V6 q2 = chunks > 2 ? V6.Load(qkv, qRow, part + 2 * step, tpq, hd, scale) : default;
        V6 q3 = chunks > 3 ? V6.Load(qkv, qRow, part + 3 * step, tpq, hd, scale) : default;
        V6 o0 = default, o1 = default, o2 = default, o3 = default;
        float m = float.NegativeInfinity, l = 0f;

        for (int k0 = 0; k0 < t; k0 += rowsPerGroup)
        {
            int valid = Math.Min(rowsPerGroup, t - k0);
            Group.Barrier(); // the previous tile is no longer read
            for (int idx = tid; idx < rowsPerGroup * rowStride; idx += groupSize)
            {
                int j = idx / rowStride, e = idx % rowStride;
                bool inside = j < valid && e < hd;
                long kv = ((long)b * t + k0 + (inside ? j : 0)) * 3 * d + d + h * hd + (inside ? e : 0);
                ks[idx] = inside ? qkv[kv] : 0f;
                vs[idx] = inside ? qkv[kv + d] : 0f;
            }
            Group.Barrier();

            for (int j = 0; j < valid; j += 8)
            {
                float s0 = Score(ks, j, valid, rowStride, part, tpq, chunks, q0, q1, q2, q3);
                float s1 = Score(ks, j + 1, valid, rowStride, part, tpq, chunks, q0, q1, q2, q3);
                float s2 = Score(ks, j + 2, valid, rowStride, part, tpq, chunks, q0, q1, q2, q3);
                float s3 = Score(ks, j + 3, valid, rowStride, part, tpq, chunks, q0, q1, q2, q3);
                float s4 = Score(ks, j + 4, valid, rowStride, part, tpq, chunks, q0, q1, q2, q3);
                float s5 = Score(ks, j + 5, valid, rowStride, part, tpq, chunks, q0, q1, q2, q3);
                float s6 = Score(ks, j + 6, valid, rowStride, part, tpq, chunks, q0, q1, q2, q3);
                float s7 = Score(ks, j + 7, valid, rowStride, part, tpq, chunks, q0, q1, q2, q3);
                float mx = Math.Max(Math.Max(Math.Max(m, s0), Math.Max(s1, s2)), Math.Max(Math.Max(s3, s4), Math.Max(Math.Max(s5, s6), s7)));
                float corr = MathF.Exp(m - mx); // 0 on the first block (m = −∞); s0 is always a real key
                float p0 = MathF.Exp(s0 - mx), p1 = MathF.Exp(s1 - mx), p2 = MathF.Exp(s2 - mx), p3 = MathF.Exp(s3 - mx);
                float p4 = MathF.Exp(s4 - mx), p5 = MathF.Exp(s5 - mx), p6 = MathF.Exp(s6 - mx), p7 = MathF.Exp(s7 - mx);
                l = l * corr + (((p0 + p1) + (p2 + p3)) + ((p4 + p5) + (p6 + p7)));
                o0.Scale(corr); o1.Scale(corr); o2.Scale(corr); o3.Scale(corr);
                m = mx;
                // keys j+1..j+7 past `valid` have p = 0 (a tile can hold fewer than 8 keys)
                Accumulate(vs, j, valid, p0, rowStride, part, tpq, chunks, ref o0, ref o1, ref o2, ref o3);
                Accumulate(vs, j + 1, valid, p1, rowStride, part, tpq, chunks, ref o0, ref o1, ref o2, ref o3);
                Accumulate(vs, j + 2, valid, p2, rowStride, part, tpq, chunks, ref o0, ref o1, ref o2, ref o3);
                Accumulate(vs, j + 3, valid, p3, rowStride, part, tpq, chunks, ref o0, ref o1, ref o2, ref o3);
                Accumulate(vs, j + 4, valid, p4, rowStride, part, tpq, chunks, ref o0, ref o1, ref o2, ref o3);
                Accumulate(vs, j + 5, valid, p5, rowStride, part, tpq, chunks, ref o0, ref o1, ref o2, ref o3);
                Accumulate(vs, j + 6, valid, p6, rowStride, part, tpq, chunks, ref o0, ref o1, ref o2, ref o3);
                Accumulate(vs, j + 7, valid, p7, rowStride, part, tpq, chunks, ref o0, ref o1, ref o2, ref o3);
            }
        }

        if (!rowValid) return;
        float inv = 1f / l;
        long oRow = ((long)b * t + i) * d + h * hd;
        o0.Store(o, oRow, part, tpq, hd, inv);
        if (chunks > 1) o1.Store(o, oRow, part + step, tpq, hd, inv);
        if (chunks > 2) o2.Store(o, oRow, part + 2 * step, tpq, hd, inv);
        if (chunks > 3) o3.Store(o, oRow, part + 3 * step, tpq, hd, inv);
    }

    /// <summary>o (n, t, heads·hd) = attention(qkv (n, t, 3·heads·hd)) with the v2 kernel; hd ≤ MaxHeadDim.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> qkv, ArrayView<float> o, int n, int t, int heads, int hd, float scale)
    {
        Check.Size("attention qkv", qkv.Length, 3L * n * t * heads * hd);
        Check.Size("attention out", o.Length, (long)n * t * heads * hd);
        var (tpq, chunks, rowStride) = Plan(hd);
        int groupSize = GroupSizeFor(dev), rowsPerGroup = groupSize / tpq, tilesPerHead = (t + rowsPerGroup - 1) / rowsPerGroup;
        var config = new KernelConfig(n * heads * tilesPerHead, groupSize, SharedMemoryConfig.RequestDynamic<float>(2 * rowsPerGroup * rowStride));
        var spec = dev.IsCuda ? new KernelSpecialization(GroupSize, null) : KernelSpecialization.Empty; // .maxntid 256
        dev.Kernels.Get("attention_v2", a => a.LoadStreamKernel<ArrayView<float>, ArrayView<float>, int, int, int, float, int, int, int, int>(Kernel, spec))
            (config, qkv, o, t, heads, hd, scale, tpq, chunks, rowStride, tilesPerHead);
    }
}
