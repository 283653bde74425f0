// Gated GELU, the elementwise half of T5 v1.1's feed-forward ("gated-gelu"):
//   y[i] = gelu_new(gate[i]) · up[i]
// gate = x·wi_0ᵀ and up = x·wi_1ᵀ come from two GEMMs; gelu_new is the tanh approximation
// (Activations.GeluTanh, the same formula as HF's NewGELUActivation). y may alias gate or up.
//
// v1: grid-stride over elements, no shared memory.
// host: the host backend's version, the same scalar formula per element (the same bytes as v1), chunks of
//     HostSimd.ElementChunk elements over the threads.
using BlockDance.Kernels.Harness;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static class GatedGelu
{
    public static void Reference(float[] gate, float[] up, float[] y)
    {
        for (int i = 0; i < y.Length; i++) y[i] = Activations.GeluTanh(gate[i]) * up[i];
    }

    [GpuKernel("gated_gelu_v1")]
    static void KernelV1(Index1D index, ArrayView<float> gate, ArrayView<float> up, ArrayView<float> y, long n, int width)
    {
        for (long i = index; i < n; i += width) y[i] = Activations.GeluTanh(gate[i]) * up[i];
    }

    /// <summary>y (n) = gelu_new(gate) ⊙ up.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> gate, ArrayView<float> up, ArrayView<float> y, long n)
    {
        Check.Size("gated gelu gate", gate.Length, n);
        Check.Size("gated gelu up", up.Length, n);
        Check.Size("gated gelu y", y.Length, n);
        if (dev.IsHost)
        {
            HostSimd.Elementwise(dev, "gated_gelu_host", n, (start, end) =>
            {
                var g = Host.Span(gate.SubView(start, end - start)); var u = Host.Span(up.SubView(start, end - start));
                var o = Host.Span(y.SubView(start, end - start));
                for (int i = 0; i < o.Length; i++) o[i] = Activations.GeluTanh(g[i]) * u[i];
            });
            return;
        }
        int width = dev.LaunchWidth(n);
        dev.Kernels.Get("gated_gelu_v1", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, ArrayView<float>,
                ArrayView<float>, long, int>(KernelV1))
            (width, gate, up, y, n, width);
    }
}
