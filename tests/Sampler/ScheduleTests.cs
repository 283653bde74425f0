// Respacing and schedule constants against the reference fixtures and the spec's examples.
using BlockDance.Kernels;
using BlockDance.Sampler;
using BlockDance.Transformer.IO;
using Xunit;

namespace BlockDance.Tests;

public class ScheduleTests
{
    static float[] Ref(string name)
    {
        using var f = SafeTensorsFile.Open(Path.Combine(AppContext.BaseDirectory, "fixtures", "traj.safetensors"));
        return f.ReadFloat32(name);
    }

    [Theory]
    [InlineData(50, "even50.timesteps")]
    [InlineData(250, "even250.timesteps")]
    [InlineData(10, "ddim.timesteps")]
    public void EvenSpacing_MatchesReference(int steps, string key) =>
        Assert.Equal(Ref(key).Select(v => (int)v), new Schedule(steps, Spacing.Even).Timesteps);

    [Fact]
    public void Even250_IsZeroFourEight_To999()
    {
        var t = Schedule.SpaceEven(250);
        Assert.Equal([0, 4, 8], t[..3]);
        Assert.Equal([995, 999], t[^2..]);
    }

    [Fact]
    public void StrideSpacing_Ddim50_IsMultiplesOf20()
    {
        Assert.Equal(Enumerable.Range(0, 50).Select(i => 20 * i), Schedule.SpaceStride(50));
        Assert.Equal(Enumerable.Range(0, 250).Select(i => 4 * i), Schedule.SpaceStride(250));
        Assert.Throws<InvalidValueException>(() => Schedule.SpaceStride(999)); // no integer stride gives 999 steps
    }

    [Fact]
    public void FullSchedule_HasOriginalBetas()
    {
        var s = new Schedule(1000, Spacing.Even);
        Assert.Equal(Enumerable.Range(0, 1000), s.Timesteps);
        Assert.Equal(1e-4, s.Betas[0], 15);
        Assert.Equal(0.02, s.Betas[999], 12);
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1001)]
    public void Steps_OutOfRange_Throw(int steps) =>
        Assert.Throws<InvalidValueException>(() => new Schedule(steps, Spacing.Even));
}
