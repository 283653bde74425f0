// The DiT against the PyTorch fixtures (tools/reference/make_fixtures.py): the condition c, every
// block's output, the final output, the resume-from-block path and both CFG rules, plus the DDIM /
// DDPM trajectories. Same checks as `blockdance selftest`; tolerances are stated in FixtureChecks.
using BlockDance.Sampler.SelfTest;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class FixtureTests(ITestOutputHelper output)
{
    static string Dir => FixtureChecks.FindFixtures(Path.Combine(AppContext.BaseDirectory, "fixtures"));

    void AssertAll(IEnumerable<CheckResult> results)
    {
        var list = results.ToList();
        foreach (var r in list) output.WriteLine(r.ToString());
        Assert.NotEmpty(list);
        Assert.All(list, r => Assert.True(r.Pass, r.ToString()));
    }

    [SkippableTheory]
    [InlineData("cpu", "dit_p2")]
    [InlineData("cpu", "dit_p4")]
    [InlineData("cuda", "dit_p2")]
    [InlineData("cuda", "dit_p4")]
    public void DiT_MatchesPyTorch_EveryBlockAndCfg(string kind, string fixture) =>
        AssertAll(FixtureChecks.Model(TestDevices.Get(kind), Dir, fixture));

    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void Trajectories_MatchPyTorch_DdimDdpmStride(string kind) =>
        AssertAll(FixtureChecks.Trajectories(TestDevices.Get(kind), Dir));
}
