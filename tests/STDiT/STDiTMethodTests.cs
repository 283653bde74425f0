// Every cache method of the harness (MethodMatrixTests.Methods) on the tiny STDiT through the same seam and runner:
// the reuse setting reuses on the steps its rule says, the samples stay finite and differ from the uncached ones
// (the matrix's per-step block counts assume its 2-block models; the tiny STDiT has 3 blocks, so they are not asserted
// here). Ada is left out: its decision network reads image samples (C × H × W), not videos.
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampling;
using BlockDance.Transformer;
using Xunit;

namespace BlockDance.Tests;

public class STDiTMethodTests
{
    public static IEnumerable<object[]> Names => MethodMatrixTests.Methods.Where(m => m.Name is not ("none" or "ada")).Select(m => new object[] { m.Name });

    static SamplingResult Run(ComputeDevice dev, Func<BlockShape, ICachePolicy> policy)
    {
        using var model = STDiT.Load(dev, CliRunner.Fixture("stdit_tiny"));
        var p = PromptEmbeds.Load(CliRunner.Fixture("stdit_traj.safetensors"), null, model.VideoConfig.CaptionChannels).Prompts;
        var prompts = new PromptEmbeds(p, STDiTPipeline.NullCaptions(p, model.NullCaption, model.VideoConfig));
        var shape = model.Shape;
        return SamplingSession.Run(model, new Captions(prompts), STDiTPipeline.DefaultOptions with { Steps = 8, Seed = 5, Policy = () => policy(shape) });
    }

    static float[]? none;
    static readonly object gate = new();

    [Theory]
    [MemberData(nameof(Names))]
    public void ReuseSetting_OnSTDiT_ReusesOnTheRulesSteps(string method)
    {
        var dev = TestDevices.Get("cpu");
        var m = MethodMatrixTests.Methods.Single(x => x.Name == method);
        lock (gate) none ??= Run(dev, _ => new NoCache()).Samples;
        var r = Run(dev, m.Reuse);
        Assert.Equal(m.Reused, r.ReusedStepsPerBatch[0]);
        Assert.True(r.BlocksComputed < 8 * 3);
        Assert.All(r.Samples, v => Assert.True(float.IsFinite(v)));
        Assert.NotEqual(none, r.Samples);
    }
}
