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
//      row; each work item keeps its 16 accumulators in scalar locals (ILGPU does not unroll loops, and
//      a local array would live in slow local memory). Edge tiles (C_out or W not a multiple of 4) read
//      through clamped indices and discard the extra results, so there is one code path. Reads outside
//      the image use a clamped address and select 0, never a branch around the load. No shared memory,
//      no barriers: the readable version, the one that runs on the CPU accelerator, and the one every
//      later (tiled / tensor-core) version is to be checked against.
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
    /// <summary>x[row + ix] if 0 ≤ ix &lt; wd, else 0; the load always hits a valid address.</summary>
    static float Pixel(ArrayView<float> x, long row, int ix, int wd)
    {
        float v = x[row + IntrinsicMath.Clamp(ix, 0, wd - 1)];
        return ix >= 0 && ix < wd ? v : 0f;
    }

    static void Store(ArrayView<float> y, ArrayView<float> bias, ArrayView<float> res, int addRes, float acc,
        long plane, int co, int cout, long pix, int ox, int wd, long hw)
    {
        if (co >= cout || ox >= wd) return; // an edge tile's clamped extra lane
        long o = plane + co * hw + pix;
        float v = acc + bias[co];
        y[o] = addRes != 0 ? res[o] + v : v;
    }

    static void KernelV1(Index1D index, ArrayView<float> x, ArrayView<float> w, ArrayView<float> bias, ArrayView<float> y,
        ArrayView<float> res, int batch, int cin, int cout, int h, int wd, int ksize, int addRes, int width)
    {
        int pad = ksize / 2, kk = ksize * ksize;
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
            // Weight rows of the 4 output channels (clamped on an edge tile).
            long w0 = (long)c0 * kdim;
            long w1 = (long)IntrinsicMath.Min(c0 + 1, cout - 1) * kdim;
            long w2 = (long)IntrinsicMath.Min(c0 + 2, cout - 1) * kdim;
            long w3 = (long)IntrinsicMath.Min(c0 + 3, cout - 1) * kdim;
            float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;   // a[channel][pixel]
            float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
            long xb = (long)b * cin * hw;
            for (int ci = 0; ci < cin; ci++)
            {
                long xc = xb + ci * hw;
                for (int ky = 0; ky < ksize; ky++)
                {
                    int iy = oy + ky - pad;
                    if (iy < 0 || iy >= h) continue; // the whole input row is padding
                    long row = xc + (long)iy * wd;
                    long wk = (long)ci * kk + ky * ksize;
                    for (int kx = 0; kx < ksize; kx++)
                    {
                        int ix = ox + kx - pad;
                        float p0 = Pixel(x, row, ix, wd), p1 = Pixel(x, row, ix + 1, wd);
                        float p2 = Pixel(x, row, ix + 2, wd), p3 = Pixel(x, row, ix + 3, wd);
                        float wa = w[w0 + wk + kx], wb = w[w1 + wk + kx], wc = w[w2 + wk + kx], wd3 = w[w3 + wk + kx];
                        a00 += wa * p0; a01 += wa * p1; a02 += wa * p2; a03 += wa * p3;
                        a10 += wb * p0; a11 += wb * p1; a12 += wb * p2; a13 += wb * p3;
                        a20 += wc * p0; a21 += wc * p1; a22 += wc * p2; a23 += wc * p3;
                        a30 += wd3 * p0; a31 += wd3 * p1; a32 += wd3 * p2; a33 += wd3 * p3;
                    }
                }
            }
            long plane = (long)b * cout * hw, pix = (long)oy * wd + ox;
            Store(y, bias, res, addRes, a00, plane, c0, cout, pix, ox, wd, hw);
            Store(y, bias, res, addRes, a01, plane, c0, cout, pix + 1, ox + 1, wd, hw);
            Store(y, bias, res, addRes, a02, plane, c0, cout, pix + 2, ox + 2, wd, hw);
            Store(y, bias, res, addRes, a03, plane, c0, cout, pix + 3, ox + 3, wd, hw);
            Store(y, bias, res, addRes, a10, plane, c0 + 1, cout, pix, ox, wd, hw);
            Store(y, bias, res, addRes, a11, plane, c0 + 1, cout, pix + 1, ox + 1, wd, hw);
            Store(y, bias, res, addRes, a12, plane, c0 + 1, cout, pix + 2, ox + 2, wd, hw);
            Store(y, bias, res, addRes, a13, plane, c0 + 1, cout, pix + 3, ox + 3, wd, hw);
            Store(y, bias, res, addRes, a20, plane, c0 + 2, cout, pix, ox, wd, hw);
            Store(y, bias, res, addRes, a21, plane, c0 + 2, cout, pix + 1, ox + 1, wd, hw);
            Store(y, bias, res, addRes, a22, plane, c0 + 2, cout, pix + 2, ox + 2, wd, hw);
            Store(y, bias, res, addRes, a23, plane, c0 + 2, cout, pix + 3, ox + 3, wd, hw);
            Store(y, bias, res, addRes, a30, plane, c0 + 3, cout, pix, ox, wd, hw);
            Store(y, bias, res, addRes, a31, plane, c0 + 3, cout, pix + 1, ox + 1, wd, hw);
            Store(y, bias, res, addRes, a32, plane, c0 + 3, cout, pix + 2, ox + 2, wd, hw);
            Store(y, bias, res, addRes, a33, plane, c0 + 3, cout, pix + 3, ox + 3, wd, hw);
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
        long tiles = (long)batch * ((cout + 3) / 4) * h * ((wd + 3) / 4);
        int width = dev.LaunchWidth(tiles);
        dev.Kernels.Get("conv2d_v1", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int, int>(KernelV1))
            (width, x, w, bias, y, res.IsValid ? res : y, batch, cin, cout, h, wd, ksize, res.IsValid ? 1 : 0, width);
    }

    /// <summary>Floating-point operations (multiply + add) of one convolution.</summary>
    public static long Flops(long batch, long cin, long cout, long h, long wd, long ksize) => 2 * batch * cout * h * wd * cin * ksize * ksize;
}
