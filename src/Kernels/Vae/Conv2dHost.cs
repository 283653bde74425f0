// 2-D convolution on the host backend (`--device cpu`): the op of Conv2d.cs (NCHW, stride 1, 3×3 with
// padding 1 or 1×1, bias, optional fused residual) as an implicit GEMM on the GEMM's micro-kernel
// (Host/MicroKernel.cs): M = C_out (rows of the weight [C_out, C_in·k·k], read in place), N = output pixels,
// K = C_in·k·k.
//
// The (K, N) im2col matrix is never built whole: a work item owns 64 neighbouring output pixels of one image
// and packs, per K slice of 256, just its 256 × 64 block of it (four 16-pixel panels in the micro-kernel's
// layout; a panel inside one image row copies 16 contiguous input pixels per (ci, ky, kx)), then runs the
// 6 × 16 micro-kernel over all C_out rows. Packing costs K·64 loads per item against C_out·K·64 FMAs.
// Sums of a work item live in a per-thread scratch tile (C_out × 64) until the last K slice, so y may be the
// residual buffer (the decoder adds conv2's output into its shortcut). Work items depend only on the shape
// and each output sums its K products in k order with one FMA each: any thread count gives the same bits.
// Measured: docs/benchmarks.md (SD-VAE decode, `tools/bench/side_by_side.sh cpu`).
using System.Runtime.Intrinsics;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class Conv2dHost
{
    const int Mr = MicroKernel.Mr, Nr = MicroKernel.Nr;
    /// <summary>Output pixels of one work item (four 16-pixel panels) and the K slice.</summary>
    public const int Pixels = 4 * Nr, Kc = 256;

    [ThreadStatic] static float[]? scratch;

    /// <summary>y (batch, cout, h, wd) = (res +) conv(x (batch, cin, h, wd)) + bias; arguments as Conv2d.Run.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y,
        int batch, int cin, int cout, int h, int wd, int ksize, ArrayView<float> res = default)
    {
        var g = new Geometry(batch, cin, cout, h, wd, ksize);
        int itemsPerImage = (int)((g.Hw + Pixels - 1) / Pixels);
        float* xp = Host.Ptr(x), wp = Host.Ptr(w), bp = Host.Ptr(bias), yp = Host.Ptr(y), rp = res.IsValid ? Host.Ptr(res) : null;
        bool simd = GemmHost.Simd;
        Host.For(dev, "conv2d_host", batch * itemsPerImage, t =>
        {
            int stripRows = (cout + Mr - 1) / Mr * Mr;
            int need = stripRows * Pixels + Kc * Pixels;
            if (scratch is null || scratch.Length < need) scratch = GC.AllocateUninitializedArray<float>(need, pinned: true);
            fixed (float* s = scratch)
                Item(g, xp, wp, bp, yp, rp, t / itemsPerImage, (long)(t % itemsPerImage) * Pixels, s, s + stripRows * Pixels, simd);
        });
    }

    readonly record struct Geometry(int Batch, int Cin, int Cout, int H, int Wd, int Ksize)
    {
        public int K => Cin * Ksize * Ksize;
        public long Hw => (long)H * Wd;
        public int Pad => Ksize / 2;
    }

    /// <summary>Output pixels [p0, p0 + 64) of image b, every output channel.</summary>
    static void Item(in Geometry g, float* x, float* w, float* bias, float* y, float* res, int b, long p0, float* c, float* panel, bool simd)
    {
        int k = g.K, strips = (g.Cout + Mr - 1) / Mr;
        var rows = stackalloc float*[Mr];
        for (int k0 = 0; k0 < Math.Max(k, 1); k0 += Kc)
        {
            int kc = Math.Min(Kc, k - k0);
            bool first = k0 == 0;
            for (int jp = 0; jp < Pixels / Nr; jp++) PackPanel(g, x, b, p0 + jp * Nr, k0, kc, panel + jp * Kc * Nr);
            for (int i = 0; i < strips; i++)
            {
                int co = i * Mr;
                // Rows past C_out read the last channel's weights again; their sums are never stored.
                for (int r = 0; r < Mr; r++) rows[r] = w + (long)Math.Min(co + r, g.Cout - 1) * k + k0;
                for (int jp = 0; jp < Pixels / Nr; jp++)
                {
                    float* ct = c + (i * (Pixels / Nr) + jp) * (Mr * Nr);
                    if (simd) MicroKernel.Fma6x16(rows, panel + jp * Kc * Nr, kc, ct, !first);
                    else MicroKernel.Scalar6x16(rows, panel + jp * Kc * Nr, kc, ct, !first);
                }
            }
        }
        Store(g, c, bias, y, res, b, p0);
    }

    /// <summary>The im2col block of pixels [p, p + 16) × K rows [k0, k0 + kc) in panel layout (row kk at 16·kk).</summary>
    static void PackPanel(in Geometry g, float* x, int b, long p, int k0, int kc, float* dst)
    {
        int kk2 = g.Ksize * g.Ksize, pad = g.Pad;
        int oy = (int)(p / g.Wd), ox = (int)(p % g.Wd);
        bool oneRow = ox + Nr <= g.Wd;   // all 16 pixels in output row oy (always when W is a multiple of 16)
        for (int q = 0; q < kc; q++, dst += Nr)
        {
            int kk = k0 + q, ci = kk / kk2, tap = kk % kk2, ky = tap / g.Ksize, kx = tap % g.Ksize;
            float* plane = x + ((long)b * g.Cin + ci) * g.Hw;
            if (oneRow)
            {
                int iy = oy + ky - pad, ix = ox + kx - pad;
                if (iy < 0 || iy >= g.H) { Vector256.Store(Vector256<float>.Zero, dst); Vector256.Store(Vector256<float>.Zero, dst + 8); continue; }
                float* src = plane + (long)iy * g.Wd;
                if (ix >= 0 && ix + Nr <= g.Wd)
                {
                    Vector256.Store(Vector256.Load(src + ix), dst);
                    Vector256.Store(Vector256.Load(src + ix + 8), dst + 8);
                }
                else
                    for (int j = 0; j < Nr; j++) dst[j] = ix + j >= 0 && ix + j < g.Wd ? src[ix + j] : 0f;
                continue;
            }
            for (int j = 0; j < Nr; j++)
            {
                long pj = p + j;
                if (pj >= g.Hw) { dst[j] = 0f; continue; }
                int iy = (int)(pj / g.Wd) + ky - pad, ix = (int)(pj % g.Wd) + kx - pad;
                dst[j] = iy >= 0 && iy < g.H && ix >= 0 && ix < g.Wd ? plane[(long)iy * g.Wd + ix] : 0f;
            }
        }
    }

    /// <summary>y = (res +) sums + bias for the item's valid pixels and channels.</summary>
    static void Store(in Geometry g, float* c, float* bias, float* y, float* res, int b, long p0)
    {
        int valid = (int)Math.Min(Pixels, g.Hw - p0);
        for (int co = 0; co < g.Cout; co++)
        {
            long o = ((long)b * g.Cout + co) * g.Hw + p0;
            float bc = bias[co];
            float* sums = c + (co / Mr * (Pixels / Nr)) * (Mr * Nr) + co % Mr * Nr;
            for (int j = 0; j < valid; j++)
            {
                float acc = sums[j / Nr * (Mr * Nr) + j % Nr];
                y[o + j] = (res != null ? res[o + j] : 0f) + acc + bc;
            }
        }
    }
}
