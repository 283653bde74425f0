// 2-D convolution, NCHW, stride 1, "same" padding (3×3 with padding 1, or 1×1), with bias and an
// optional fused residual add:
//   y[b, co, oy, ox] = (res[b, co, oy, ox] +) bias[co]
//                      + Σ_{ci, ky, kx} w[co, ci, ky, kx] · x[b, ci, oy + ky − pad, ox + kx − pad]
// (out-of-range input pixels are zero). Every conv of the VAE decoder is this op; the residual add
// saves a pass at the end of each ResnetBlock2D (out = shortcut(x) + conv2(h)).
//
// Written as an implicit GEMM: M = C_out, N = output pixels, K = C_in·k·k. The weight [C_out, C_in, k, k]
// is already the (M, K) row-major matrix; the (K, N) "im2col" matrix is never built: column n, row
// (ci, ky, kx) is read straight from x through the index mapping above.
//
// Versions
//   v1 (this file): grid-stride over tiles of 4 output channels × 4 neighbouring pixels of one output
//      row; each work item keeps its 16 accumulators in struct fields (ILGPU does not unroll loops, and
//      a local array would live in slow local memory). For 3×3, the 6 input pixels of one kernel row
//      are loaded once and reused by its 3 taps. Edge tiles (C_out or W not a multiple of 4) read
//      through clamped indices and drop the extra results, so there is one code path. Reads outside
//      the image use a clamped address and select 0, never a branch around the load. No shared memory,
//      no barriers: the readable version, the one that runs on the CPU accelerator (3×3 at ≈ 0.7× the
//      rate of Gemm v1 there, measured side by side; 1×1 slower, but it is < 1% of the VAE's FLOPs),
//      and the one every later (tiled / tensor-core) version is to be checked against.
//   host (Conv2dHost.cs): the host backend's implicit GEMM on the GEMM micro-kernel (Run picks it on `cpu`).
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class Conv2d
{
    // ---------------------------------------------------------------- reference
    /// <summary>y (b, cout, h, w) = conv(x (b, cin, h, w)) with a k×k kernel (k = 1 or 3), padding k/2, stride 1.</summary>
    public static void Reference(float[] x, float[] w, float[] bias, float[] y, int batch, int cin, int cout, int h, int wd,
        int ksize, float[]? res = null)
    {
        int pad = ksize / 2;
        for (int b = 0; b < batch; b++)
            for (int co = 0; co < cout; co++)
                for (int oy = 0; oy < h; oy++)
                    for (int ox = 0; ox < wd; ox++)
                    {
                        double acc = bias[co];
                        for (int ci = 0; ci < cin; ci++)
                            for (int ky = 0; ky < ksize; ky++)
                                for (int kx = 0; kx < ksize; kx++)
                                {
                                    int iy = oy + ky - pad, ix = ox + kx - pad;
                                    if (iy < 0 || iy >= h || ix < 0 || ix >= wd) continue;
                                    acc += (double)w[((co * cin + ci) * ksize + ky) * ksize + kx] * x[((b * cin + ci) * h + iy) * wd + ix];
                                }
                        long o = ((long)(b * cout + co) * h + oy) * wd + ox;
                        y[o] = (float)acc + (res is null ? 0f : res[o]);
                    }
    }

    // ---------------------------------------------------------------- kernel v1
    /// <summary>Accumulators of one output channel for the tile's 4 pixels (struct fields stay in registers).</summary>
    struct Acc4
    {
        public float P0, P1, P2, P3;

        /// <summary>3 taps of one kernel row over the 6 input pixels xm … x4 the 4 outputs need.</summary>
        public Acc4 Taps3(float w0, float w1, float w2, float xm, float x0, float x1, float x2, float x3, float x4) => new()
        {
            P0 = P0 + w0 * xm + w1 * x0 + w2 * x1,
            P1 = P1 + w0 * x0 + w1 * x1 + w2 * x2,
            P2 = P2 + w0 * x1 + w1 * x2 + w2 * x3,
            P3 = P3 + w0 * x2 + w1 * x3 + w2 * x4,
        };

        /// <summary>One tap (1×1 kernel) over the 4 input pixels.</summary>
        public Acc4 Tap1(float w, float x0, float x1, float x2, float x3) => new()
        {
            P0 = P0 + w * x0, P1 = P1 + w * x1, P2 = P2 + w * x2, P3 = P3 + w * x3,
        };
    }

    /// <summary>x[row + ix] if 0 ≤ ix &lt; wd, else 0 (padding); the load always hits a valid address.</summary>
    static float Pixel(ArrayView<float> x, long row, int ix, int wd)
    {
        float v = x[row + IntrinsicMath.Clamp(ix, 0, wd - 1)];
        return ix >= 0 && ix < wd ? v : 0f;
    }

    static void Store(ArrayView<float> y, ArrayView<float> bias, ArrayView<float> res, int addRes, Acc4 a,
        long plane, int co, int cout, long pix, int ox, int wd, long hw)
    {
        if (co >= cout) return; // an edge tile's clamped extra channel
        long o = plane + co * hw + pix;
        float b = bias[co];
        // An edge tile's pixels past the row end are computed from clamped reads and dropped here.
        if (ox < wd) y[o] = (addRes != 0 ? res[o] : 0f) + a.P0 + b;
        if (ox + 1 < wd) y[o + 1] = (addRes != 0 ? res[o + 1] : 0f) + a.P1 + b;
        if (ox + 2 < wd) y[o + 2] = (addRes != 0 ? res[o + 2] : 0f) + a.P2 + b;
        if (ox + 3 < wd) y[o + 3] = (addRes != 0 ? res[o + 3] : 0f) + a.P3 + b;
    }

    static void KernelV1(Index1D index, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y,
        ArrayView<float> res, int batch, int cin, int cout, int h, int wd, int ksize, int addRes, int width)
    {
        int kk = ksize * ksize;
        long kdim = (long)cin * kk, hw = (long)h * wd;
        int tilesX = (wd + 3) / 4, tilesC = (cout + 3) / 4;
        long tiles = (long)batch * tilesC * h * tilesX;
        for (long t = index; t < tiles; t += width)
        {
            // Tile order (b, channel tile, row, pixel tile), pixel tile fastest: neighbouring work items
            // read neighbouring pixels and the same weights.
            int tx = (int)(t % tilesX);
            long r = t / tilesX;
            int oy = (int)(r % h);
            r /= h;
            int tc = (int)(r % tilesC), b = (int)(r / tilesC);
            int ox = tx * 4, c0 = tc * 4;
            // Weight rows (M dimension) of the 4 output channels, clamped on an edge tile.
            long w0 = (long)c0 * kdim;
            long w1 = (long)IntrinsicMath.Min(c0 + 1, cout - 1) * kdim;
            long w2 = (long)IntrinsicMath.Min(c0 + 2, cout - 1) * kdim;
            long w3 = (long)IntrinsicMath.Min(c0 + 3, cout - 1) * kdim;
            Acc4 a0 = default, a1 = default, a2 = default, a3 = default;
            long xb = (long)b * cin * hw;
            if (ksize == 3)
            {
                // K runs over (ci, ky, kx). For one (ci, ky) the 4 outputs need input pixels ox−1 … ox+4 of
                // row oy+ky−1: load those 6 once and apply the 3 kx taps to them (48 FMAs per 6 + 12 loads).
                for (int ci = 0; ci < cin; ci++)
                {
                    long xc = xb + ci * hw;
                    for (int ky = 0; ky < 3; ky++)
                    {
                        int iy = oy + ky - 1;
                        if (iy < 0 || iy >= h) continue; // the whole input row is padding
                        long row = xc + (long)iy * wd;
                        float xm = Pixel(x, row, ox - 1, wd), x0 = Pixel(x, row, ox, wd), x1 = Pixel(x, row, ox + 1, wd);
                        float x2 = Pixel(x, row, ox + 2, wd), x3 = Pixel(x, row, ox + 3, wd), x4 = Pixel(x, row, ox + 4, wd);
                        long k = (long)ci * 9 + ky * 3;
                        a0 = a0.Taps3(w[w0 + k], w[w0 + k + 1], w[w0 + k + 2], xm, x0, x1, x2, x3, x4);
                        a1 = a1.Taps3(w[w1 + k], w[w1 + k + 1], w[w1 + k + 2], xm, x0, x1, x2, x3, x4);
                        a2 = a2.Taps3(w[w2 + k], w[w2 + k + 1], w[w2 + k + 2], xm, x0, x1, x2, x3, x4);
                        a3 = a3.Taps3(w[w3 + k], w[w3 + k + 1], w[w3 + k + 2], xm, x0, x1, x2, x3, x4);
                    }
                }
            }
            else
            {
                // 1×1: a plain GEMM over ci; the im2col matrix is x itself.
                long row = xb + (long)oy * wd;
                for (int ci = 0; ci < cin; ci++)
                {
                    long xr = row + ci * hw;
                    float x0 = Pixel(x, xr, ox, wd), x1 = Pixel(x, xr, ox + 1, wd);
                    float x2 = Pixel(x, xr, ox + 2, wd), x3 = Pixel(x, xr, ox + 3, wd);
                    a0 = a0.Tap1(w[w0 + ci], x0, x1, x2, x3);
                    a1 = a1.Tap1(w[w1 + ci], x0, x1, x2, x3);
                    a2 = a2.Tap1(w[w2 + ci], x0, x1, x2, x3);
                    a3 = a3.Tap1(w[w3 + ci], x0, x1, x2, x3);
                }
            }
            long plane = (long)b * cout * hw, pix = (long)oy * wd + ox;
            Store(y, bias, res, addRes, a0, plane, c0, cout, pix, ox, wd, hw);
            Store(y, bias, res, addRes, a1, plane, c0 + 1, cout, pix, ox, wd, hw);
            Store(y, bias, res, addRes, a2, plane, c0 + 2, cout, pix, ox, wd, hw);
            Store(y, bias, res, addRes, a3, plane, c0 + 3, cout, pix, ox, wd, hw);
        }
    }

    // ---------------------------------------------------------------- launcher
    /// <summary>y (batch, cout, h, w) = (res +) conv_k×k(x (batch, cin, h, w)) + bias; w is [cout, cin, k, k], k ∈ {1, 3}.
    /// y may be the same buffer as res (each output element reads only its own residual element), never as x.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y,
        int batch, int cin, int cout, int h, int wd, int ksize, ArrayView<float> res = default)
    {
        if (ksize != 1 && ksize != 3) throw new ArgumentException($"conv2d: kernel size {ksize}; expected 1 or 3");
        long hw = (long)h * wd;
        Check.Size("conv2d x", x.Length, batch * cin * hw);
        Check.Size("conv2d w", w.Length, (long)cout * cin * ksize * ksize);
        Check.Size("conv2d bias", bias.Length, cout);
        Check.Size("conv2d y", y.Length, batch * cout * hw);
        if (res.IsValid) Check.Size("conv2d residual", res.Length, batch * cout * hw);
        if (dev.IsHost) { Conv2dHost.Run(dev, x, w, bias, y, batch, cin, cout, h, wd, ksize, res); return; }
        long tiles = (long)batch * ((cout + 3) / 4) * h * ((wd + 3) / 4);
        int width = dev.LaunchWidth(tiles);
        dev.Kernels.Get("conv2d_v1", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int, int>(KernelV1))
            (width, x, w, bias, y, res.IsValid ? res : y, batch, cin, cout, h, wd, ksize, res.IsValid ? 1 : 0, width);
    }

    /// <summary>Floating-point operations (multiply + add) of one convolution.</summary>
    public static long Flops(long batch, long cin, long cout, long h, long wd, long ksize) => 2 * batch * cout * h * wd * cin * ksize * ksize;
}
