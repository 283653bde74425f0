// FeatureSimilarity (the STSS analysis kernel) against its float64 reference on random inputs, on
// every backend. Both sides sum float32 inputs in float64, so only the summation order differs:
// rtol 1e-10 is ~10⁵× the expected rounding error for these sizes.
using BlockDance.Kernels;
using ILGPU.Runtime;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class FeatureSimilarityTests(ITestOutputHelper output)
{
    [SkippableTheory]
    [InlineData("sim", 0, 1, 0)]           // one element
    [InlineData("cpu", 0, 1, 0)]           // one element
    [InlineData("sim", 1, 2 * 49 * 96, 0)] // the demo model's (N, T, D) with CFG, default width
    [InlineData("cpu", 1, 2 * 49 * 96, 0)] // the demo model's (N, T, D) with CFG, default width
    [InlineData("sim", 2, 1000, 1)]        // one work item does everything
    [InlineData("sim", 3, 5003, 1000)]     // 1000 partials → 16 → accumulate: two passes
    [InlineData("sim", 4, 9001, 4097)]     // 4097 → 65 → 2 → accumulate: three passes
    [InlineData("sim", 5, 7, 64)]          // more work items than elements
    [InlineData("cpu", 6, 40_003, 0)]      // host: 3 chunks of 16384, the last partial (width is the simulator's)
    [InlineData("cuda", 0, 2 * 256 * 1152, 0)]
    [InlineData("cuda", 1, 5003, 1000)]
    public void FeatureSimilarity_MatchesReference(string kind, int seed, int numel, int width)
    {
        var dev = TestDevices.Get(kind);
        var a = Tolerance.Random(seed, numel, 3f);
        var noise = Tolerance.Random(seed + 1, numel, 0.01f);
        var near = a.Select((x, i) => x + noise[i]).ToArray();       // cosine ≈ 1: the case float32 sums would lose
        var other = Tolerance.Random(seed + 2, numel);
        const int slots = 3;
        var expected = new double[slots * FeatureSimilarity.Stats];
        // slot 0: a vs near; slot 2: a vs other, accumulated twice (as two batches would be); slot 1 untouched
        FeatureSimilarity.Reference(a, near, expected, 0);
        FeatureSimilarity.Reference(a, other, expected, 2);
        FeatureSimilarity.Reference(other, a, expected, 2);

        using var ta = Tensor.FromHost(dev, "a", a, numel);
        using var tn = Tensor.FromHost(dev, "near", near, numel);
        using var to = Tensor.FromHost(dev, "other", other, numel);
        using var results = dev.Accelerator.Allocate1D<double>(slots * FeatureSimilarity.Stats);
        using var scratch = new FeatureSimilarity.Scratch(dev);
        results.MemSetToZero();
        FeatureSimilarity.Run(dev, ta.View, tn.View, numel, results.View, 0, scratch, width);
        FeatureSimilarity.Run(dev, ta.View, to.View, numel, results.View, 2, scratch, width);
        FeatureSimilarity.Run(dev, to.View, ta.View, numel, results.View, 2, scratch, width);
        var got = results.GetAsArray1D();

        for (int i = 0; i < got.Length; i++)
        {
            double err = Math.Abs(got[i] - expected[i]);
            Assert.True(err <= 1e-10 * Math.Abs(expected[i]) + 1e-12, $"results[{i}] (slot {i / 4}, sum {i % 4}): expected {expected[i]:R}, got {got[i]:R}");
        }
        var (mse, cos) = FeatureSimilarity.Finish(got, 0, numel);
        var (mseRef, cosRef) = FeatureSimilarity.Finish(expected, 0, numel);
        output.WriteLine($"{kind} numel {numel} width {width}: mse {mse:E6} (ref {mseRef:E6}), 1 − cos {1 - cos:E6} (ref {1 - cosRef:E6})");
        Assert.InRange(cos, -1, 1);
        Assert.True(Math.Abs((1 - cos) - (1 - cosRef)) <= 1e-6 * (1 - cosRef) + 1e-14, "1 − cosine resolved to 1e-6 relative");
    }

    [Fact]
    public void Finish_ZeroVectors_AreIdentical_AndCosineIsClamped()
    {
        Assert.Equal((0.0, 1.0), FeatureSimilarity.Finish(new double[4], 0, 10));
        Assert.Equal(1.0, FeatureSimilarity.Finish(new double[] { 0, 2 + 1e-15, 1, 4 }, 0, 1).Cosine);
    }
}
