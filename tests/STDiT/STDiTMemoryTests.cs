// The STDiT memory plan's numbers for STDiT-XL/2 at 16 × 512²: 760,112,288 weight values (3.04 GB fp32, the GEMM
// weights in 16 bits under bf16 on CUDA: ≈ 1.52 GB), and per model row the (16384 × 1152) buffers of 72 MiB and the
// MLP hidden of 288 MiB; the check refuses with the need and the budget.
using BlockDance.Kernels;
using BlockDance.Sampling;
using BlockDance.Transformer;
using Xunit;

namespace BlockDance.Tests;

public class STDiTMemoryTests
{
    static readonly STDiTConfig Xl = new(28, 1152, 16, 2, 4, 8, 4096, 120, 16, 64, 1.0, 1.0);

    [Fact]
    public void Need_XL2_16x512_MatchesTheFacts()
    {
        Assert.Equal(16384, Xl.Tokens);
        var fp32 = MemoryPlan.Need(ModelFootprint.Of(Xl, 120, halfWeights: false), 1, guided: true, stepNoise: true, cached: true);
        Assert.Equal(4L * 760_112_288 + 4L * (1024 + 16) * 1152, fp32.WeightBytes);
        var bf16 = MemoryPlan.Need(ModelFootprint.Of(Xl, 120, halfWeights: true), 1, true, true, true);
        Assert.InRange(bf16.WeightBytes / 1e9, 1.52, 1.54);
        const long MiB = 1 << 20;
        Assert.Equal(72 * MiB, 4L * Xl.Tokens * Xl.Hidden);
        long perRow = (4 + 3) * 72 * MiB + 288 * MiB + 72 * MiB;      // x0 x1 norm attn, qkv, hidden, cache feature
        long captionKv = 4L * 28 * 2 * 120 * 2 * 1152;                 // 62 MiB: per block the (2, 120, 2D) caption keys/values
        Assert.InRange(fp32.BufferBytes, 2 * perRow + captionKv, 2 * perRow + captionKv + 32 * MiB);
        Assert.Equal(2, fp32.ModelBatch);
    }
}
