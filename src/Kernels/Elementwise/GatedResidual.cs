// The gated residual add of adaLN-Zero as a standalone op, for FORA's reuse of cached attention/MLP outputs:
//
//   out[s, t, j] = res[s, t, j] + gate[s, offset + j] · x[s, t, j]        (N, T, D); gate rows of stride `gateStride`
//
// The same arithmetic as Gemm's GatedResidual epilogue (res + gate · v), so storing a projection's output and
// adding it here gives the bits of the fused GEMM. out may be res (in place).
// v1 (the only version): one thread per element.
// host: the host backend's version (`--device cpu`): the same scalar formula per element, so the same bytes
//     as the ILGPU kernel; chunks of HostSimd.ElementChunk elements over the threads.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class GatedResidual
{
    public static void Reference(float[] res, float[] x, float[] gate, float[] output, int n, int tokens, int d, int gateStride, int gateOffset)
    {
        for (long i = 0; i < (long)n * tokens * d; i++)
        {
            long row = i / d;
            int j = (int)(i % d), s = (int)(row / tokens);
            output[i] = res[i] + gate[s * gateStride + gateOffset + j] * x[i];
        }
    }

    static void Kernel(Index1D index, ArrayView<float> res, ArrayView<float> x, ArrayView<float> gate, ArrayView<float> output,
        int tokens, int d, int gateStride, int gateOffset, long total, int width)
    {
        for (long i = index; i < total; i += width)
        {
            long row = i / d;
            int j = (int)(i % d), s = (int)(row / tokens);
            output[i] = res[i] + gate[s * gateStride + gateOffset + j] * x[i];
        }
    }

    /// <summary>The name Run's launches count under on `dev` (KernelCache; tests that count launches ask it).</summary>
    public static string KernelName(ComputeDevice dev) => dev.IsHost ? "gated_residual_host" : "gated_residual";

    public static void Run(ComputeDevice dev, ArrayView<float> res, ArrayView<float> x, ArrayView<float> gate, ArrayView<float> output,
        int n, int tokens, int d, int gateStride, int gateOffset)
    {
        long total = (long)n * tokens * d;
        Check.Size("gated residual input", x.Length, total);
        Check.Size("gated residual residual", res.Length, total);
        Check.Size("gated residual output", output.Length, total);
        if (gate.Length < (long)n * gateStride) throw new ArgumentException($"gated residual: gate holds {gate.Length} values, expected {(long)n * gateStride}");
        if (dev.IsHost)
        {
            HostSimd.Elementwise(dev, KernelName(dev), total, (start, end) =>
            {
                float* rp = Host.Ptr(res), xp = Host.Ptr(x), gp = Host.Ptr(gate), op = Host.Ptr(output);
                for (long i = start; i < end; i++)
                {
                    long row = i / d;
                    int j = (int)(i % d), s = (int)(row / tokens);
                    op[i] = rp[i] + gp[s * gateStride + gateOffset + j] * xp[i];
                }
            });
            return;
        }
        int width = dev.LaunchWidth(total);
        dev.Kernels.Get("gated_residual", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>, ArrayView<float>, ArrayView<float>,
                int, int, int, int, long, int>(Kernel))
            (width, res, x, gate, output, tokens, d, gateStride, gateOffset, total, width);
    }
}
