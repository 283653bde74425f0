// blockdance selftest: every reference-fixture comparison on the chosen device, one line each.
using BlockDance.Sampler.Cli;
using BlockDance.Sampler.SelfTest;

namespace BlockDance.Sampler.Commands;

public static class SelftestCommand
{
    public static int Run(string[] argv)
    {
        var a = Args.Parse("selftest", argv);
        var dir = FixtureChecks.FindFixtures(a.Get("fixtures"));
        // The fixtures are fp32 PyTorch tensors: selftest checks fp32 unless --precision asks for a 16-bit run,
        // which is then checked against the same fixtures with the 16-bit tolerance (FixtureChecks).
        using var dev = CommonOptions.Device(a, fp32Default: true);
        Console.WriteLine($"precision: {dev.Precision.ToString().ToLowerInvariant()}");
        Console.WriteLine($"fixtures: {Path.GetFullPath(dir)}");
        int failed = 0, total = 0;
        foreach (var r in FixtureChecks.All(dev, dir))
        {
            Console.WriteLine(r);
            total++;
            if (!r.Pass) failed++;
        }
        Console.WriteLine(failed == 0 ? $"selftest: all {total} checks passed on {dev.Describe()}" : $"selftest: {failed} of {total} checks FAILED");
        return failed == 0 ? 0 : 1;
    }
}
