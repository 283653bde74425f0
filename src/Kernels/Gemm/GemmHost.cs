// GEMM on the host backend (`--device cpu`): y[M, N] = epilogue(x[M, K] · W[N, K]ᵀ + b[N]), the op and the
// five epilogues of Gemm.cs, computed by SIMD C# on the CPU accelerator's buffers (Host.Ptr).
//
// How (the BLIS recipe, sized for AVX2/FMA):
//   - W is packed once, when a layer is loaded (GemmWeights), into panels of 16 output columns: panel p holds
//     W[16p + j, kk] at (p·K + kk)·16 + j, so one k step of a panel is 16 contiguous floats (two Vector256),
//     zero-padded past N. Packing costs one pass over W; the GEMM never repacks.
//   - Micro-kernel (MicroKernel.cs): a 6 × 16 register tile (12 Vector256 accumulators, 2 loads of W and 6
//     broadcasts of x per k step, 12 FMAs); 12 independent accumulators hide the FMA latency on 2 FMA pipes.
//   - Cache blocking: K is walked in slices of Kc = 256 (a panel slice is 16 KB and stays in L1 while the
//     6-row strips of x pass by; the task's x block of 48 × 256 floats stays in L2). Partial sums go to a
//     per-task scratch tile, the epilogue is applied to each 6 × 16 tile right after its last K slice (while it
//     is in L1) — so y may alias the residual (mlp.fc2 adds into its own output).
//   - Work split: output tiles of Mc = 48 rows × Nc = 192 columns (fewer when the matrix is smaller), one
//     Host.For item each. The split depends only on the shape and each output element sums its K products
//     in order 0 … K−1 with one FMA each, in whichever tile it lands: bit-identical for any thread count and
//     for any batching (a row's result depends only on its own x row). Small M (adaLN, M = batch) is one row
//     block with the columns split; the demo's 980 × 384 × 96 is 21 × 2 tiles.
//   - Without FMA (or with Simd switched off, as a test does) a scalar micro-kernel of the same shape runs.
//
// Measured (2 cores AMD EPYC Zen 4, 2026-12-02, load average 30–110 from other jobs): `CPU_BENCH_PARTS=gemm
// tools/bench/side_by_side.sh cpu OUT` — DiT-XL/2 shapes 64–167 GFLOP/s on 2 threads (proj 4096×1152×1152:
// 167), 0.86–2.3× PyTorch's F.linear in the same minutes; demo shapes (K = 96) ~87 GFLOP/s on one thread
// (CpuBench gemm --shapes demo --threads 1). The inner loop is 2 loads + 6 broadcasts + 12 FMAs per k step
// with no spills (DOTNET_JitDisasm=Fma6x16). Table: docs/benchmarks.md.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class GemmHost
{
    public const int Mr = MicroKernel.Mr, Nr = MicroKernel.Nr;
    /// <summary>K slice of one pass over a panel (16 KB of packed W).</summary>
    public const int Kc = 256;
    /// <summary>Rows and columns of one work item (the larger tiles; smaller matrices get smaller ones).</summary>
    public const int Mc = 8 * Mr, Nc = 12 * Nr;

    /// <summary>True: the Vector256/FMA micro-kernel; false: the scalar one (no FMA on this CPU, or a test).</summary>
    /// <summary>This CPU has AVX2-width vectors and FMA (declared before Simd: static initializers run in order).</summary>
    public static readonly bool SimdSupported = Fma.IsSupported && Vector256.IsHardwareAccelerated;
    public static bool Simd { get; set; } = SimdSupported;

    // ---------------------------------------------------------------- packing (once per layer)
    /// <summary>Floats of the packed form of an (n, k) weight matrix.</summary>
    public static long PackedLength(int n, int k) => (long)((n + Nr - 1) / Nr) * Nr * k;

    /// <summary>dst = w (n, k) in 16-column panels, k-major inside a panel, zero past n.</summary>
    public static void Pack(ReadOnlySpan<float> w, Span<float> dst, int n, int k)
    {
        if (w.Length != (long)n * k) throw new ArgumentException($"gemm pack: expected {(long)n * k} weights for ({n}, {k}), found {w.Length}");
        if (dst.Length != PackedLength(n, k)) throw new ArgumentException($"gemm pack: expected {PackedLength(n, k)} floats of space, found {dst.Length}");
        int panels = (n + Nr - 1) / Nr;
        for (int p = 0; p < panels; p++)
            for (int j = 0; j < Nr; j++)
            {
                int col = p * Nr + j;
                long o = (long)p * k * Nr + j;
                if (col >= n) { for (int kk = 0; kk < k; kk++) dst[(int)(o + (long)kk * Nr)] = 0f; continue; }
                var row = w.Slice(col * k, k);
                for (int kk = 0; kk < k; kk++) dst[(int)(o + (long)kk * Nr)] = row[kk];
            }
    }

    /// <summary>The packed copy of w (n, k) in a new device buffer of the host backend.</summary>
    public static Tensor PackToDevice(ComputeDevice dev, string name, float[] w, int n, int k)
    {
        var t = Tensor.Allocate(dev, name + "(packed)", checked((int)PackedLength(n, k)));
        Pack(w, Host.Span(t.View), n, k);
        return t;
    }

    // ---------------------------------------------------------------- launcher
    /// <summary>y (m, n) = epilogue(x (m, k) · Wᵀ + b (n)) with W (n, k) given packed (Pack). y may be res.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float> packed, ArrayView<float> b, ArrayView<float> y,
        int m, int n, int k, Epilogue ep = Epilogue.None, ArrayView<float> res = default, GateSpec gate = default)
    {
        Check.Size("gemm x", x.Length, (long)m * k);
        Check.Size("gemm packed w", packed.Length, PackedLength(n, k));
        Check.Size("gemm b", b.Length, n);
        Check.Size("gemm y", y.Length, (long)m * n);
        if (ep == Epilogue.GatedResidual)
        {
            Check.Size("gemm residual", res.Length, (long)m * n);
            if (gate.RowsPerSample <= 0) throw new ArgumentException("gemm: gated residual needs RowsPerSample > 0");
        }
        var e = new EpilogueArgs(ep, Host.Ptr(b), res.IsValid ? Host.Ptr(res) : null, gate.Gate.IsValid ? Host.Ptr(gate.Gate) : null,
            Math.Max(1, gate.RowsPerSample), gate.GateStride, gate.GateOffset, n);
        var s = Split.For(m, n);
        float* xp = Host.Ptr(x), wp = Host.Ptr(packed), yp = Host.Ptr(y);
        bool simd = Simd;
        Host.For(dev, "gemm_host", s.Tiles, t => Tile(xp, wp, yp, m, n, k, s, t, e, simd));
    }

    /// <summary>As Run with W (n, k) unpacked: packs it into a temporary first (one pass over W per call; layers
    /// hold a packed copy instead — GemmWeights). For callers that keep raw weights (T5).</summary>
    public static void RunUnpacked(ComputeDevice dev, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y,
        int m, int n, int k, Epilogue ep = Epilogue.None, ArrayView<float> res = default, GateSpec gate = default)
    {
        Check.Size("gemm w", w.Length, (long)n * k);
        KernelChoice.Once(dev, "gemm (host): weights given unpacked, packed per call (a layer loaded through GemmWeights packs once)");
        Host.Begin(dev, "gemm_host_pack");
        using var tmp = Tensor.Allocate(dev, "gemm packed w (temporary)", checked((int)PackedLength(n, k)));
        Pack(Host.Span(w), Host.Span(tmp.View), n, k);
        Run(dev, x, tmp.View, b, y, m, n, k, ep, res, gate);
    }

    /// <summary>The fixed tiling of an (m, n) output: tile t covers rows [RowTile·Rows, +Rows) and columns
    /// [ColTile·Cols, +Cols). Depends only on the shape.</summary>
    internal readonly record struct Split(int Rows, int Cols, int RowTiles, int ColTiles)
    {
        public int Tiles => RowTiles * ColTiles;

        public static Split For(int m, int n)
        {
            int rows = Math.Min(Mc, (m + Mr - 1) / Mr * Mr);
            int cols = Math.Min(Nc, (n + Nr - 1) / Nr * Nr);
            // A small matrix (adaLN at M = batch, the classifier) still gets several column tiles when it has
            // the columns for them, so all threads have work: panels of at least 4 × 16 columns.
            int rowTiles = (m + rows - 1) / rows;
            if (rowTiles < 4 && n > 4 * Nr) cols = Math.Max(4 * Nr, Math.Min(cols, (n / 8 + Nr - 1) / Nr * Nr));
            return new Split(rows, cols, rowTiles, (n + cols - 1) / cols);
        }
    }

    /// <summary>Pointers and parameters of the epilogue (see Gemm.cs).</summary>
    internal readonly struct EpilogueArgs(Epilogue ep, float* bias, float* res, float* gate, int rowsPerSample,
        int gateStride, int gateOffset, int n)
    {
        public readonly Epilogue Ep = ep;
        public readonly float* Bias = bias, Res = res, Gate = gate;
        public readonly int RowsPerSample = rowsPerSample, GateStride = gateStride, GateOffset = gateOffset, N = n;
    }

    [SkipLocalsInit, MethodImpl(MethodImplOptions.AggressiveOptimization)]
    static void Tile(float* x, float* w, float* y, int m, int n, int k, Split s, int t, EpilogueArgs e, bool simd)
    {
        int r0 = t / s.ColTiles * s.Rows, c0 = t % s.ColTiles * s.Cols;
        int rows = Math.Min(s.Rows, m - r0), cols = Math.Min(s.Cols, n - c0);
        int strips = (rows + Mr - 1) / Mr, panels = (cols + Nr - 1) / Nr;
        // Partial sums of the tile: strips × panels micro-tiles of 6 × 16, each contiguous.
        float* c = stackalloc float[Mc * Nc];
        var rowsP = stackalloc float*[Mr];
        for (int k0 = 0; k0 < Math.Max(k, 1); k0 += Kc)
        {
            int kc = Math.Min(Kc, k - k0);
            bool first = k0 == 0, last = k0 + Kc >= k;
            for (int jp = 0; jp < panels; jp++)
            {
                float* panel = w + ((long)(c0 / Nr + jp) * k + k0) * Nr;
                for (int i = 0; i < strips; i++)
                {
                    int ri = r0 + i * Mr, mr = Math.Min(Mr, m - ri);
                    // Rows past M read the strip's last row again; their results are never stored.
                    for (int r = 0; r < Mr; r++) rowsP[r] = x + (long)(ri + Math.Min(r, mr - 1)) * k + k0;
                    float* ct = c + (i * panels + jp) * (Mr * Nr);
                    if (simd) MicroKernel.Fma6x16(rowsP, panel, kc, ct, !first);
                    else MicroKernel.Scalar6x16(rowsP, panel, kc, ct, !first);
                    if (last) GemmEpilogue.Apply(ct, y, ri, mr, c0 + jp * Nr, Math.Min(Nr, n - c0 - jp * Nr), e, simd);
                }
            }
        }
    }

    /// <summary>Ragged-shape tiles: how many work items an (m, n) GEMM is split into (for tests and benchmarks).</summary>
    public static int TileCount(int m, int n) => Split.For(m, n).Tiles;
}
