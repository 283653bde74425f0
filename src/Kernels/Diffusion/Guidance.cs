// Classifier-free guidance on a doubled batch (DiT's forward_with_cfg):
//   out (2B, C_out, H, W) holds [conditional; unconditional] model outputs.
//   For channels ch < guided:  eps = u + s·(c − u), written into BOTH halves.
//   Other channels (the rest of eps when only some are guided, and the v channels) keep each
//   half's own value.
// The official code guides the first 3 channels only (a reproducibility choice of the reference;
// all 4 is the commented-out alternative and what diffusers does). Callers pass min(3, C_in) for
// the official rule so that a model with fewer than 3 input channels never has its v guided.
// host: the host backend's version (`--device cpu`): the same scalar formula per element, so the same bytes
//     as the ILGPU kernel; chunks of HostSimd.ElementChunk elements over the threads.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

public static unsafe class Guidance
{
    public const int OfficialChannels = 3;

    public static void Reference(float[] o, int b, int cOut, int hw, int guided, float scale)
    {
        for (int s = 0; s < b; s++)
            for (int ch = 0; ch < guided; ch++)
                for (int i = 0; i < hw; i++)
                {
                    int ci = (s * cOut + ch) * hw + i, ui = ((b + s) * cOut + ch) * hw + i;
                    float g = o[ui] + scale * (o[ci] - o[ui]);
                    o[ci] = g;
                    o[ui] = g;
                }
    }

    static void Kernel(Index1D index, ArrayView<float> o, int b, int cOut, int hw, int guided, float scale, int width)
    {
        long total = (long)b * guided * hw;
        for (long idx = index; idx < total; idx += width)
        {
            int i = (int)(idx % hw), ch = (int)(idx / hw % guided), s = (int)(idx / hw / guided);
            long ci = ((long)s * cOut + ch) * hw + i, ui = ((long)(b + s) * cOut + ch) * hw + i;
            float g = o[ui] + scale * (o[ci] - o[ui]);
            o[ci] = g;
            o[ui] = g;
        }
    }

    /// <summary>In place on o (2b, cOut, hw): guide channels [0, guided) with the given scale.</summary>
    public static void Run(ComputeDevice dev, ArrayView<float> o, int b, int cOut, int hw, int guided, float scale)
    {
        Check.Size("guidance output", o.Length, 2L * b * cOut * hw);
        if (dev.IsHost)
        {
            HostSimd.Elementwise(dev, "cfg_guidance_host", (long)b * guided * hw, (start, end) =>
            {
                float* op = Host.Ptr(o);
                for (long idx = start; idx < end; idx++)
                {
                    int i = (int)(idx % hw), ch = (int)(idx / hw % guided), s = (int)(idx / hw / guided);
                    long ci = ((long)s * cOut + ch) * hw + i, ui = ((long)(b + s) * cOut + ch) * hw + i;
                    float g = op[ui] + scale * (op[ci] - op[ui]);
                    op[ci] = g;
                    op[ui] = g;
                }
            });
            return;
        }
        int width = dev.LaunchWidth((long)b * guided * hw);
        dev.Kernels.Get("cfg_guidance", a => a.LoadAutoGroupedStreamKernel<Index1D, ArrayView<float>, int, int, int, int, float, int>(Kernel))
            (width, o, b, cOut, hw, guided, scale, width);
    }
}
