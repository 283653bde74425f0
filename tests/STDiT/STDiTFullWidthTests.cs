// A full-width STDiT (D 1152, 16 heads of 72, the XL/2 block) of depth 1 on 16 frames of an 8×8 latent (256 tokens)
// with random weights (opt-in: BLOCKDANCE_STDIT_FULLWIDTH=1, ≈ 80 s on the CPU accelerator): the real head dim and width through every kernel of the block; the output is finite, and
// each row of a 2-row batch equals the same row run alone bit for bit (same device, however samples are batched).
using BlockDance.Kernels;
using BlockDance.Transformer;
using Xunit;

namespace BlockDance.Tests;

public class STDiTFullWidthTests
{
    [SkippableFact]
    public void FullWidthDepth1_16Frames_FiniteAndBatchIndependent()
    {
        Skip.IfNot(Environment.GetEnvironmentVariable("BLOCKDANCE_STDIT_FULLWIDTH") == "1",
            "full-width STDiT depth 1 (≈ 80 s on 2 shared cores with the CPU accelerator): set BLOCKDANCE_STDIT_FULLWIDTH=1 to run it");
        var dev = TestDevices.Get("cpu");
        var cfg = new STDiTConfig(1, 1152, 16, 2, 4, 8, 4096, 120, 16, 8, 1.0 / 8, 1.0);
        using var model = new STDiT(dev, new RandomWeightSource(cfg.ExpectedShapes(), 16, seed: 7), cfg);
        int l = 4, per = 4 * 16 * 8 * 8;
        var captions = Tolerance.Random(1, 2L * l * 4096);
        var keep = new float[2 * l];
        Array.Fill(keep, 1f, 0, 3); Array.Fill(keep, 1f, l, 2);
        model.SetCaptions(captions, keep, 2, l);
        var x = Tolerance.Random(2, 2L * per);
        float[] Run(float[] input, float[] t, int[] rows)
        {
            using var xt = Tensor.FromHost(dev, "x", input, rows.Length, 4, 16, 8, 8);
            using var o = Tensor.Allocate(dev, "o", rows.Length, 8, 16, 8, 8);
            model.Forward(xt, t, rows, o);
            return o.ToHost();
        }
        var both = Run(x, [999f, 400f], [0, 1]);
        Assert.Equal(0, NonFinite.CountReference(both));
        var second = Run(x[per..], [400f], [1]);
        Assert.Equal(both[(2 * per)..], second);
        Assert.NotEqual(both[..(2 * per)], second);
    }
}
