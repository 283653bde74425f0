// GEMM: y[M, N] = x[M, K] · W[N, K]ᵀ + b[N], with a fused epilogue.
//
// Every Linear layer of the DiT is this op (PyTorch stores Linear weights [out, in], so the
// dot products run along contiguous rows of both x and W). Epilogues save a separate pass:
//   None          y = acc + b
//   Gelu          y = GELU_tanh(acc + b)                          (mlp.fc1)
//   Silu          y = SiLU(acc + b)                               (t_embedder.mlp.0)
//   GatedResidual y = res + gate[sample, n] · (acc + b)           (attn.proj, mlp.fc2)
//                 sample = row / rowsPerSample, gate read at gate[sample·gateStride + gateOffset + n]
//   Relu          y = max(0, acc + b)                             (the eval digit classifier's MLP)
//
// Versions
//   v1 (this file): grid-stride over 4×4 output tiles, each work item keeps its 16 accumulators in
//      scalar locals (ILGPU does not unroll; a local array would live in slow local memory).
//      No shared memory, no barriers: the version that runs acceptably on the CPU accelerator
//      (~2.4 GFLOP/s there) and the one every later version is checked against.
//   v2 (GemmV2.cs): fp32 SIMT tiled — 128×128 block, 8×8 register tile per thread, 16-byte loads into
//      transposed shared tiles, register prefetch of the next K slice.
//   small-M (GemmSmallM.cs): for M ≤ 32 rows (adaLN at M = batch): one warp per output column, weight
//      rows read once with 16-byte loads, warp-shuffle reduction — fills the GPU where a 128-row tile cannot.
//   v3 (GemmV3.cs): bf16/fp16 tensor cores (mma.sync m16n8k16, ldmatrix, swizzled double-buffered shared
//      tiles), fp32 accumulation; weights stored in 16 bits (GemmWeights.cs), with --precision bf16|fp16.
//   host (GemmHost.cs): the host backend (`--device cpu`): packed weights, 6×16 Vector256/FMA micro-kernel,
//      K/N cache blocking, a deterministic Host.For over output tiles.
// Dispatch: Run(GemmWeights) for layers (the weights' form picks v3 / emulated 16-bit / host / fp32), and
// Run(fp32 view): CUDA → small-M for m ≤ 32, else v2; host backend → host; simulator → v1. Logged once per device.
// Static checks of every version: `blockdance ptx`; timings: `blockdance kernels` (docs/gpu-kernels.md).
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public enum Epilogue { None = 0, Gelu = 1, Silu = 2, GatedResidual = 3, Relu = 4 }

/// <summary>Where the gate of a GatedResidual epilogue lives (a slice of the adaLN output).</summary>
public readonly record struct GateSpec(ArrayView<float> Gate, int RowsPerSample, int GateStride, int GateOffset);

public static class Gemm
{
    // ---------------------------------------------------------------- reference
    public static void Reference(float[] x, float[] w, float[] b, float[] y, int m, int n, int k,
        Epilogue ep = Epilogue.None, float[]? res = null, float[]? gate = null, int rowsPerSample = 1,
        int gateStride = 0, int gateOffset = 0)
    {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++)
            {
                double acc = 0;
                for (int p = 0; p < k; p++) acc += (double)x[i * k + p] * w[j * k + p];
                float v = (float)acc + b[j];
                y[i * n + j] = ep switch
                {
                    Epilogue.Gelu => Activations.GeluTanh(v),
                    Epilogue.Silu => Activations.Silu(v),
                    Epilogue.GatedResidual => res![i * n + j] + gate![i / rowsPerSample * gateStride + gateOffset + j] * v,
                    Epilogue.Relu => Math.Max(0f, v),
                    _ => v,
                };
            }
    }

    // ---------------------------------------------------------------- kernel v1
    internal static float Apply(float v, int ep, ArrayView<float> res, ArrayView<float> gate, long row, int col, int n,
        int rowsPerSample, int gateStride, int gateOffset)
    {
        if (ep == 1) return Activations.GeluTanh(v);
        if (ep == 2) return Activations.Silu(v);
        if (ep == 3) return res[row * n + col] + gate[row / rowsPerSample * gateStride + gateOffset + col] * v;
        if (ep == 4) return v > 0f ? v : 0f;
        return v;
    }

    static void Store(ArrayView<float> y, float acc, ArrayView<float> b, int ep, ArrayView<float> res, ArrayView<float> gate,
        long row, int col, int n, int rowsPerSample, int gateStride, int gateOffset)
    {
        y[row * n + col] = Apply(acc + b[col], ep, res, gate, row, col, n, rowsPerSample, gateStride, gateOffset);
    }

    static void KernelV1(Index1D index, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y,
        ArrayView<float> res, ArrayView<float> gate, int m, int n, int k, int ep, int rowsPerSample, int gateStride,
        int gateOffset, int width)
    {
        int tilesN = (n + 3) / 4;
        long tiles = (long)((m + 3) / 4) * tilesN;
        for (long t = index; t < tiles; t += width)
        {
            int r0 = (int)(t / tilesN) * 4, c0 = (int)(t % tilesN) * 4;
            if (r0 + 4 <= m && c0 + 4 <= n)
            {
                float a00 = 0, a01 = 0, a02 = 0, a03 = 0, a10 = 0, a11 = 0, a12 = 0, a13 = 0;
                float a20 = 0, a21 = 0, a22 = 0, a23 = 0, a30 = 0, a31 = 0, a32 = 0, a33 = 0;
                long x0 = (long)r0 * k, x1 = x0 + k, x2 = x1 + k, x3 = x2 + k;
                long w0 = (long)c0 * k, w1 = w0 + k, w2 = w1 + k, w3 = w2 + k;
                for (int p = 0; p < k; p++)
                {
                    float xa = x[x0 + p], xb = x[x1 + p], xc = x[x2 + p], xd = x[x3 + p];
                    float wa = w[w0 + p], wb = w[w1 + p], wc = w[w2 + p], wd = w[w3 + p];
                    a00 += xa * wa; a01 += xa * wb; a02 += xa * wc; a03 += xa * wd;
                    a10 += xb * wa; a11 += xb * wb; a12 += xb * wc; a13 += xb * wd;
                    a20 += xc * wa; a21 += xc * wb; a22 += xc * wc; a23 += xc * wd;
                    a30 += xd * wa; a31 += xd * wb; a32 += xd * wc; a33 += xd * wd;
                }
                Store(y, a00, b, ep, res, gate, r0, c0, n, rowsPerSample, gateStride, gateOffset);
                Store(y, a01, b, ep, res, gate, r0, c0 + 1, n, rowsPerSample, gateStride, gateOffset);
                Store(y, a02, b, ep, res, gate, r0, c0 + 2, n, rowsPerSample, gateStride, gateOffset);
                Store(y, a03, b, ep, res, gate, r0, c0 + 3, n, rowsPerSample, gateStride, gateOffset);
                Store(y, a10, b, ep, res, gate, r0 + 1, c0, n, rowsPerSample, gateStride, gateOffset);
                Store(y, a11, b, ep, res, gate, r0 + 1, c0 + 1, n, rowsPerSample, gateStride, gateOffset);
                Store(y, a12, b, ep, res, gate, r0 + 1, c0 + 2, n, rowsPerSample, gateStride, gateOffset);
                Store(y, a13, b, ep, res, gate, r0 + 1, c0 + 3, n, rowsPerSample, gateStride, gateOffset);
                Store(y, a20, b, ep, res, gate, r0 + 2, c0, n, rowsPerSample, gateStride, gateOffset);
                Store(y, a21, b, ep, res, gate, r0 + 2, c0 + 1, n, rowsPerSample, gateStride, gateOffset);
                Store(y, a22, b, ep, res, gate, r0 + 2, c0 + 2, n, rowsPerSample, gateStride, gateOffset);
                Store(y, a23, b, ep, res, gate, r0 + 2, c0 + 3, n, rowsPerSample, gateStride, gateOffset);
                Store(y, a30, b, ep, res, gate, r0 + 3, c0, n, rowsPerSample, gateStride, gateOffset);
                Store(y, a31, b, ep, res, gate, r0 + 3, c0 + 1, n, rowsPerSample, gateStride, gateOffset);
                Store(y, a32, b, ep, res, gate, r0 + 3, c0 + 2, n, rowsPerSample, gateStride, gateOffset);
                Store(y, a33, b, ep, res, gate, r0 + 3, c0 + 3, n, rowsPerSample, gateStride, gateOffset);
            }
            else
            {
                // Edge tile: one dot product per output element.
                for (int r = r0; r < m && r < r0 + 4; r++)
                    for (int c = c0; c < n && c < c0 + 4; c++)
                    {
                        float acc = 0;
                        for (int p = 0; p < k; p++) acc += x[(long)r * k + p] * w[(long)c * k + p];
                        Store(y, acc, b, ep, res, gate, r, c, n, rowsPerSample, gateStride, gateOffset);
                    }
            }
        }
    }

    // ---------------------------------------------------------------- launcher
    /// <summary>A layer's GEMM, y (m, w.N) = epilogue(x (m, w.K) · Wᵀ + b): the one dispatch point for the form
    /// its weights were loaded in (GemmWeights.ForLayer): 16-bit bits → v3 on tensor cores; emulated 16-bit →
    /// x rounded to the weights' format first, then the fp32 path; host-packed → the host GEMM; plain fp32 → Run.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, GemmWeights w, ArrayView<float> b, ArrayView<float> y,
        int m, Epilogue ep = Epilogue.None, ArrayView<float> res = default, GateSpec gate = default)
    {
        if (w.Bits != null) { GemmV3.Run(dev, x, w, b, y, m, w.K, ep, res, gate); return; }
        if (w.Precision != Precision.Fp32)
            x = GemmWeights.RoundedCopy(dev, x, (long)m * w.K, w.Precision);   // x as a 16-bit operand carries it
        if (w.HostPacked) GemmHost.Run(dev, x, w.Values!.View, b, y, m, w.N, w.K, ep, res, gate);
        else Run(dev, x, w.Values!.View, b, y, m, w.N, w.K, ep, res, gate);
    }

    /// <summary>y (m, n) = epilogue(x (m, k) · w (n, k)ᵀ + b (n)) with fp32 weights, by the best fp32 version
    /// for the device: CUDA → small-M for m ≤ SmallM rows, else v2; host backend → the host GEMM (packing w
    /// per call: layers pack once through GemmWeights); simulator → v1 (the tiled versions are for GPUs:
    /// barriers cost milliseconds there). The choice is logged once per device.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y,
        int m, int n, int k, Epilogue ep = Epilogue.None, ArrayView<float> res = default, GateSpec gate = default)
    {
        if (dev.IsCuda && m <= SmallM) { KernelChoice.Once(dev, "gemm: small-M version (one warp per output column) for m <= 32 on CUDA"); GemmSmallM.Run(dev, x, w, b, y, m, n, k, ep, res, gate); }
        else if (dev.IsCuda) { KernelChoice.Once(dev, "gemm: fp32 v2 (SIMT tiled) on CUDA"); GemmV2.Run(dev, x, w, b, y, m, n, k, ep, res, gate); }
        else if (dev.IsHost) GemmHost.RunUnpacked(dev, x, w, b, y, m, n, k, ep, res, gate);
        else RunV1(dev, x, w, b, y, m, n, k, ep, res, gate);
    }

    /// <summary>Rows up to which the small-M (GEMV-shaped) version beats a 128-row tile on a GPU.</summary>
    public const int SmallM = 32;

    /// <summary>v1 explicitly (the CPU path; the reference version on every device).</summary>
    public static void RunV1(ComputeDevice dev, ArrayView<float> x, ArrayView<float> w, ArrayView<float> b, ArrayView<float> y,
        int m, int n, int k, Epilogue ep = Epilogue.None, ArrayView<float> res = default, GateSpec gate = default)
    {
        var (resV, gateV) = CheckArgs(x, w, b, y, m, n, k, ep, res, gate);
        long tiles = (long)((m + 3) / 4) * ((n + 3) / 4);
        int width = dev.LaunchWidth(tiles);
        var kernel = dev.Kernels.Get("gemm_v1", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
            ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>, int, int, int, int, int, int, int, int>(KernelV1));
        kernel(width, x, w, b, y, resV, gateV, m, n, k, (int)ep, Math.Max(1, gate.RowsPerSample), gate.GateStride, gate.GateOffset, width);
    }

    /// <summary>Size checks shared by every version; returns the residual and gate views to pass (y as a
    /// placeholder where an epilogue has none: ILGPU does not accept empty views as kernel arguments everywhere).</summary>
    internal static (ArrayView<float> Res, ArrayView<float> Gate) CheckArgs(ArrayView<float> x, ArrayView<float> w,
        ArrayView<float> b, ArrayView<float> y, int m, int n, int k, Epilogue ep, ArrayView<float> res, GateSpec gate)
    {
        Check.Size("gemm x", x.Length, (long)m * k);
        Check.Size("gemm w", w.Length, (long)n * k);
        Check.Size("gemm b", b.Length, n);
        Check.Size("gemm y", y.Length, (long)m * n);
        if (ep == Epilogue.GatedResidual)
        {
            Check.Size("gemm residual", res.Length, (long)m * n);
            if (gate.RowsPerSample <= 0) throw new ArgumentException("gemm: gated residual needs RowsPerSample > 0");
        }
        return (res.IsValid ? res : y, gate.Gate.IsValid ? gate.Gate : y);
    }

    /// <summary>Floating-point operations of one GEMM (multiply + add), for FLOP accounting.</summary>
    public static long Flops(long m, long n, long k) => 2 * m * n * k;
}
