// The step loop queues work and never waits for the device: no synchronization and no host ↔ device copy
// inside a sampling step (timesteps are a kernel argument, labels go up before the loop, the NaN/Inf check
// counts on the device and is read once after the last step). Counted on the CPU accelerator, where the
// same code runs as on CUDA; the counts are the device layer's (ComputeDevice.HostWaits).
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler;
using BlockDance.Transformer;
using Xunit;

namespace BlockDance.Tests;

public class StepLoopTests
{
    static DiT TinyModel(ComputeDevice dev)
    {
        var src = ModelLoader.OpenSource(CliRunner.Fixture("dit_p2.weights.safetensors"));
        try { return ModelLoader.Create(dev, src, ModelLoader.DetectConfig(src, null)); }
        finally { (src as IDisposable)?.Dispose(); }
    }

    [SkippableTheory]
    [InlineData("cpu", "none")]
    [InlineData("cpu", "blockdance")]
    [InlineData("cuda", "none")]
    [InlineData("cuda", "blockdance")]
    public void SamplingSteps_WaitForTheDeviceNever(string kind, string cache)
    {
        var dev = TestDevices.Get(kind);
        using var model = TinyModel(dev);
        Func<ICachePolicy> policy = cache == "none" ? () => new NoCache() : () => new BlockDancePolicy(new BlockDanceConfig(N: 2, Boundary: 0));
        var r = SamplingSession.Run(model, new SamplingOptions { Classes = [0, 1], Steps = 6, Policy = policy });
        Assert.Equal(0, r.HostWaitsPerStep);
        Assert.True(r.LaunchesPerStep > 0);
    }

    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void ProfiledSteps_SynchronizeTwicePerStep_AndSampleTheSameBits(string kind)
    {
        var dev = TestDevices.Get(kind);
        using var model = TinyModel(dev);
        var o = new SamplingOptions { Classes = [2, 3], Steps = 4 };
        var plain = SamplingSession.Run(model, o);
        var profiled = SamplingSession.Run(model, o with { ProfileSteps = true });
        Assert.Equal(2, profiled.HostWaitsPerStep);
        Assert.True(profiled.ModelSeconds > 0);
        Assert.Equal(plain.Samples, profiled.Samples);
    }
}
