// Host versions of the attention ops (host backend, `--device cpu`): the DiT's self-attention (Attention.Run),
// and the core that PixArt's cross-attention (CrossAttentionHost) and T5's relative-bias attention
// (RelativeBiasAttentionHost) share: ForEachBlock (the work items) and Block (one of them). Flash-style: the T×T
// score matrix never exists.
//
//   work item = (n, h, block of QB = 32 query rows); the keys are visited in blocks of KB = 64:
//     S (QB, KB) = Q_blk · K_blkᵀ · scale (+ bias)        Q copied (head dim padded to 8), K block transposed
//     m_new = max(m, rowmax S);  O, l ×= exp(m − m_new)   once per key block, not per key
//     P = exp(S − m_new) (Vector256.Exp);  l += Σ P;  O (QB, hd) += P · V_blk
//     out = O / l
//   A masked key gets P = 0 exactly (never exp(−∞ − −∞)); a query row with no kept key gets 0.
// The work items are fixed by the shape and each computes its outputs in one fixed order, so the output is
// the same for any thread count and any batching (a sample's rows never depend on other samples).
//
// Speed: n1 t19 h1 hd72, 196 µs per launch vs 13.7 ms for v1 on the CPU accelerator (70×), on the shared 2-core
// dev box under heavy load (load average ~260: absolute numbers are pessimistic, the ratio is what holds):
//   dotnet run -c Release --project src/Sampler -- kernels --device cpu --op attention --shapes small --iters 3
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class AttentionHost
{
    /// <summary>Query rows per work item.</summary>
    public const int QueryBlock = 32;
    /// <summary>Keys per block of the online softmax (a multiple of 16, the score tile's width).</summary>
    public const int KeyBlock = 64;

    /// <summary>One (n, h) pair's operands: row r of Q at Q + r·QStride, key j at K/V + j·KvStride, output row r at
    /// O + r·OStride. Keep (null: none) masks key j when Keep[j] == 0; BiasByOffset (null: none) adds
    /// BiasByOffset[j − i + keys − 1] to the score of query i and key j (T5's relative position bias).</summary>
    public readonly struct Slice(float* q, long qStride, float* k, float* v, long kvStride, float* o, long oStride,
        float* keep = null, float* biasByOffset = null)
    {
        public readonly float* Q = q, K = k, V = v, O = o, Keep = keep, BiasByOffset = biasByOffset;
        public readonly long QStride = qStride, KvStride = kvStride, OStride = oStride;
    }

    /// <summary>Runs one block of query rows on the slice it is given.</summary>
    public delegate void BlockRun(in Slice slice);
    /// <summary>Builds the slice of (row b, head h) and hands it to run (inside whatever fixed scope its pointers need).</summary>
    public delegate void SliceOf(int b, int h, BlockRun run);

    /// <summary>The host kernel of every attention op here: one work item per (row b of n, head h, block of QueryBlock of
    /// the t query rows), each running Block over `keys` keys on the slice that `slice` builds for (b, h).</summary>
    public static void ForEachBlock(ComputeDevice dev, string kernel, int n, int t, int heads, int keys, int hd, float scale, SliceOf slice)
    {
        int blocks = (t + QueryBlock - 1) / QueryBlock;
        Host.For(dev, kernel, n * heads * blocks, item =>
        {
            int qb = item % blocks, h = item / blocks % heads, b = item / blocks / heads;
            int q0 = qb * QueryBlock;
            slice(b, h, (in Slice s) => Block(s, q0, Math.Min(QueryBlock, t - q0), keys, hd, scale));
        });
    }

    /// <summary>o (n, t, heads·hd) = self-attention of qkv (n, t, 3·heads·hd) (same contract as Attention.RunV1).</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> qkv, ArrayView<float> o, int n, int t, int heads, int hd, float scale)
    {
        Check.Size("attention qkv", qkv.Length, 3L * n * t * heads * hd);
        Check.Size("attention out", o.Length, (long)n * t * heads * hd);
        long d = (long)heads * hd;
        ForEachBlock(dev, Attention.HostKernel, n, t, heads, t, hd, scale, (b, h, run) =>
        {
            float* q = Host.Ptr(qkv) + (long)b * t * 3 * d + h * hd;
            run(new Slice(q, 3 * d, q + d, q + 2 * d, 3 * d, Host.Ptr(o) + (long)b * t * d + h * hd, d));
        });
    }

    /// <summary>Output rows q0 … q0 + rows − 1 of one (n, h) slice attending to `keys` keys.</summary>
    public static void Block(in Slice s, int q0, int rows, int keys, int hd, float scale)
    {
        int hp = (hd + 7) & ~7, rp = (rows + 3) & ~3;
        fixed (float* qs = HostSimd.Scratch(0, QueryBlock * hp), kt = HostSimd.Scratch(1, hd * KeyBlock),
               vs = HostSimd.Scratch(2, KeyBlock * hp), sc = HostSimd.Scratch(3, QueryBlock * KeyBlock),
               oa = HostSimd.Scratch(4, QueryBlock * hp), ml = HostSimd.Scratch(5, 2 * QueryBlock))
        {
            float* m = ml, l = ml + QueryBlock;
            new Span<float>(qs, rp * hp).Clear();
            new Span<float>(oa, rows * hp).Clear();
            for (int r = 0; r < rows; r++)
            {
                new ReadOnlySpan<float>(s.Q + (q0 + r) * s.QStride, hd).CopyTo(new Span<float>(qs + r * hp, hd));
                m[r] = float.NegativeInfinity;
                l[r] = 0f;
            }
            for (int j0 = 0; j0 < keys; j0 += KeyBlock)
            {
                int kb = Math.Min(KeyBlock, keys - j0), kbp = (kb + 15) & ~15;
                LoadKeys(s, j0, kb, kbp, hd, hp, kt, vs);
                Scores(qs, kt, sc, rp, kbp, hd, hp);
                for (int r = 0; r < rows; r++)
                    if (Softmax(s, sc + r * KeyBlock, j0, q0 + r, kb, kbp, keys, scale, ref m[r], ref l[r], oa + r * hp, hp))
                        Accumulate(sc + r * KeyBlock, vs, oa + r * hp, kbp, hp);
            }
            for (int r = 0; r < rows; r++)
            {
                float inv = l[r] > 0f ? 1f / l[r] : 0f; // no kept key: the row is 0
                float* dst = s.O + (q0 + r) * s.OStride, src = oa + r * hp;
                for (int e = 0; e < hd; e++) dst[e] = src[e] * inv;
            }
        }
    }

    // kt (hd, KeyBlock) = K_blkᵀ, vs (KeyBlock, hp) = V_blk; the padding (keys kb…kbp, dims hd…hp) is zero.
    static void LoadKeys(in Slice s, int j0, int kb, int kbp, int hd, int hp, float* kt, float* vs)
    {
        for (int jj = 0; jj < kbp; jj++)
        {
            float* v = vs + jj * hp;
            if (jj < kb)
            {
                float* k = s.K + (j0 + jj) * s.KvStride;
                for (int e = 0; e < hd; e++) kt[e * KeyBlock + jj] = k[e];
                new ReadOnlySpan<float>(s.V + (j0 + jj) * s.KvStride, hd).CopyTo(new Span<float>(v, hd));
                for (int e = hd; e < hp; e++) v[e] = 0f;
            }
            else
            {
                for (int e = 0; e < hd; e++) kt[e * KeyBlock + jj] = 0f;
                new Span<float>(v, hp).Clear();
            }
        }
    }

    // sc (rp, KeyBlock) = qs (rp, hp) · kt (hd, KeyBlock), in 4-row × 16-key register tiles.
    static void Scores(float* qs, float* kt, float* sc, int rp, int kbp, int hd, int hp)
    {
        for (int r = 0; r < rp; r += 4)
            for (int j = 0; j < kbp; j += 16)
            {
                Vector256<float> a0 = default, a1 = default, b0 = default, b1 = default,
                                 c0 = default, c1 = default, d0 = default, d1 = default;
                float* q = qs + r * hp;
                for (int e = 0; e < hd; e++)
                {
                    var k0 = Vector256.Load(kt + e * KeyBlock + j);
                    var k1 = Vector256.Load(kt + e * KeyBlock + j + 8);
                    var qa = Vector256.Create(q[e]); a0 = HostSimd.MulAdd(qa, k0, a0); a1 = HostSimd.MulAdd(qa, k1, a1);
                    var qb = Vector256.Create(q[hp + e]); b0 = HostSimd.MulAdd(qb, k0, b0); b1 = HostSimd.MulAdd(qb, k1, b1);
                    var qc = Vector256.Create(q[2 * hp + e]); c0 = HostSimd.MulAdd(qc, k0, c0); c1 = HostSimd.MulAdd(qc, k1, c1);
                    var qd = Vector256.Create(q[3 * hp + e]); d0 = HostSimd.MulAdd(qd, k0, d0); d1 = HostSimd.MulAdd(qd, k1, d1);
                }
                float* o = sc + r * KeyBlock + j;
                a0.Store(o); a1.Store(o + 8);
                b0.Store(o + KeyBlock); b1.Store(o + KeyBlock + 8);
                c0.Store(o + 2 * KeyBlock); c1.Store(o + 2 * KeyBlock + 8);
                d0.Store(o + 3 * KeyBlock); d1.Store(o + 3 * KeyBlock + 8);
            }
    }

    // One query row's online-softmax update for a key block: srow (dot products) → P in place; rescales the
    // row's O and l when the max grows. False when the block has no kept key for this row (nothing to add).
    static bool Softmax(in Slice s, float* srow, int j0, int i, int kb, int kbp, int keys, float scale,
        ref float m, ref float l, float* orow, int hp)
    {
        float bm = float.NegativeInfinity;
        for (int jj = 0; jj < kb; jj++)
        {
            float v = srow[jj] * scale;
            if (s.BiasByOffset != null) v += s.BiasByOffset[j0 + jj - i + keys - 1];
            if (s.Keep != null && s.Keep[j0 + jj] == 0f) v = float.NegativeInfinity;
            srow[jj] = v;
            bm = MathF.Max(bm, v);
        }
        if (bm == float.NegativeInfinity) return false;
        for (int jj = kb; jj < kbp; jj++) srow[jj] = float.NegativeInfinity;
        float mNew = MathF.Max(m, bm);
        if (mNew > m)
        {
            float corr = MathF.Exp(m - mNew); // 0 on the first block with a kept key (m = −∞)
            l *= corr;
            var vc = Vector256.Create(corr);
            for (int e = 0; e < hp; e += 8) (Vector256.Load(orow + e) * vc).Store(orow + e);
            m = mNew;
        }
        var vm = Vector256.Create(mNew);
        var ninf = Vector256.Create(float.NegativeInfinity);
        var sum = Vector256<float>.Zero;
        for (int jj = 0; jj < kbp; jj += 8)
        {
            var x = Vector256.Load(srow + jj);
            var p = Vector256.ConditionalSelect(Vector256.Equals(x, ninf), Vector256<float>.Zero, Vector256.Exp(x - vm));
            p.Store(srow + jj);
            sum += p;
        }
        l += HostSimd.Sum(sum);
        return true;
    }

    // orow (hp) += Σ_j p[j] · vs[j, :], four 8-lane accumulators at a time.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Accumulate(float* p, float* vs, float* orow, int kbp, int hp)
    {
        int e = 0;
        for (; e + 32 <= hp; e += 32)
        {
            var a0 = Vector256.Load(orow + e); var a1 = Vector256.Load(orow + e + 8);
            var a2 = Vector256.Load(orow + e + 16); var a3 = Vector256.Load(orow + e + 24);
            for (int j = 0; j < kbp; j++)
            {
                var pj = Vector256.Create(p[j]);
                float* v = vs + j * hp + e;
                a0 = HostSimd.MulAdd(pj, Vector256.Load(v), a0); a1 = HostSimd.MulAdd(pj, Vector256.Load(v + 8), a1);
                a2 = HostSimd.MulAdd(pj, Vector256.Load(v + 16), a2); a3 = HostSimd.MulAdd(pj, Vector256.Load(v + 24), a3);
            }
            a0.Store(orow + e); a1.Store(orow + e + 8); a2.Store(orow + e + 16); a3.Store(orow + e + 24);
        }
        for (; e < hp; e += 8)
        {
            var a = Vector256.Load(orow + e);
            for (int j = 0; j < kbp; j++) a = HostSimd.MulAdd(Vector256.Create(p[j]), Vector256.Load(vs + j * hp + e), a);
            a.Store(orow + e);
        }
    }
}
