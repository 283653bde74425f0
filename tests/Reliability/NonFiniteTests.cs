// NaN/Inf: the device-side count against its host reference, and the sampling guard that stops a run at
// the first step whose sample is non-finite (finite weights whose activations overflow float32).
using BlockDance.Kernels;
using BlockDance.Sampler;
using BlockDance.Transformer;
using ILGPU.Runtime;
using Xunit;

namespace BlockDance.Tests;

public class NonFiniteTests
{
    [SkippableTheory]
    [InlineData("sim", 0, 10_007)]
    [InlineData("cpu", 0, 10_007)]
    [InlineData("sim", 1, 3)]
    [InlineData("cpu", 1, 3)]
    [InlineData("cuda", 0, 1_000_003)]
    public void NonFiniteCount_MatchesReference(string kind, int seed, int n)
    {
        var dev = TestDevices.Get(kind);
        var rng = new Random(seed);
        var x = Tolerance.Random(seed, n);
        // the edge cases of the bit test: finite extremes stay uncounted, every NaN/Inf is counted
        float[] finite = [float.MaxValue, float.MinValue, float.Epsilon, -0f, 1e-40f];
        float[] bad = [float.NaN, float.PositiveInfinity, float.NegativeInfinity, BitConverter.Int32BitsToSingle(unchecked((int)0xFFC00001))];
        for (int i = 0; i < Math.Max(1, n / 50); i++)
        {
            x[rng.Next(n)] = finite[rng.Next(finite.Length)];
            x[rng.Next(n)] = bad[rng.Next(bad.Length)];
        }
        using var t = Tensor.FromHost(dev, "x", x, n);
        using var counts = dev.Accelerator.Allocate1D<int>(2);
        counts.MemSetToZero();
        NonFinite.Count(dev, t.View, counts.View, 1);
        NonFinite.Count(dev, t.View, counts.View, 1);   // accumulates
        var got = counts.GetAsArray1D();
        long expected = NonFinite.CountReference(x);
        Assert.True(expected > 0);
        Assert.Equal(0, got[0]);
        Assert.Equal(2 * expected, got[1]);
    }

    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void OverflowDuringSampling_StopsAtTheFirstNonFiniteStep(string kind)
    {
        var dev = TestDevices.Get(kind);
        var (tensors, meta) = HostileFiles.Read(CliRunner.Fixture("dit_p4.weights.safetensors"));
        // Finite weights (the load check passes) whose eps prediction is 3e38: the DDIM update multiplies it by
        // √(1/ᾱ − 1) ≈ 156 at the first step, which overflows float32 to −Inf.
        var src = new MemorySource(tensors.Select(t => t.Name == "final_layer.linear.bias" ? t with { Data = Enumerable.Repeat(3e38f, t.Data.Length).ToArray() } : t), meta);
        var cfg = ModelLoader.DetectConfig(src);
        using var model = ModelLoader.Create(dev, src, cfg);
        var e = Assert.Throws<NonFiniteException>(() => SamplingSession.Run(model, new SamplingOptions { Classes = [0, 1], Steps = 3, Cfg = 1 }));
        Assert.Contains("expected finite samples, found", e.Message);
        Assert.Contains("after step 1 of 3", e.Message);
        Assert.False(BlockDance.Sampler.Program.IsBadInput(e));   // finite weights and noise: the engine's fault, exit 70

        // --verbose (ExplainNonFinite): the batch runs again with every kernel checked, naming the one that overflowed.
        // On the ILGPU simulator every op is an ILGPU kernel the trace sees (host-backend kernels are not traced).
        SamplingGuard.ExplainNonFinite = true;
        try
        {
            var sim = TestDevices.Get("sim");
            using var simModel = ModelLoader.Create(sim, src, cfg);
            var explained = Assert.Throws<NonFiniteException>(() => SamplingSession.Run(simModel, new SamplingOptions { Classes = [0, 1], Steps = 3, Cfg = 1 }));
            Assert.Contains("after step 1 of 3", explained.Message);
            Assert.Contains("kernel 'ddim_step' (step 1 of 3", explained.Message);
        }
        finally { SamplingGuard.ExplainNonFinite = false; }

        // the same model with the original bias samples normally: the guard does not fire on finite samples
        var ok = new MemorySource(tensors, meta);
        using var good = ModelLoader.Create(dev, ok, cfg);
        var r = SamplingSession.Run(good, new SamplingOptions { Classes = [0, 1], Steps = 3, Cfg = 1 });
        Assert.All(r.Samples, v => Assert.True(float.IsFinite(v)));
    }

    /// <summary>Weights held in memory (tests only).</summary>
    sealed class MemorySource(IEnumerable<TensorEntry> tensors, IReadOnlyDictionary<string, string> meta) : IWeightSource
    {
        readonly Dictionary<string, TensorEntry> byName = tensors.ToDictionary(t => t.Name);
        public string Origin => "memory";
        public IReadOnlyDictionary<string, string> Metadata => meta;
        public bool Has(string key) => byName.ContainsKey(key);
        public long[] ShapeOf(string key) => byName.TryGetValue(key, out var t) ? t.Shape : throw new ModelException($"memory: no '{key}'");
        public float[] Read(string key, params long[] expectedShape) => byName[key].Data;
        public IEnumerable<string> Keys => byName.Keys;
    }
}
