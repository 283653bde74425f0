// The kernel-harness ops for attention and layernorm: every version they list validates on the small
// shapes (what `blockdance kernels --op attention|layernorm --shapes small` runs), and the ops are found
// by reflection under their names.
using BlockDance.Kernels.Harness;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class AttentionLayerNormOpTests(ITestOutputHelper output)
{
    [SkippableTheory]
    [InlineData("sim", "attention")]
    [InlineData("cpu", "attention")]
    [InlineData("sim", "layernorm")]
    [InlineData("cpu", "layernorm")]
    [InlineData("cuda", "attention")]
    [InlineData("cuda", "layernorm")]
    public void HarnessOp_EveryVersionValidates_OnSmallShapes(string kind, string name)
    {
        var dev = TestDevices.Get(kind);
        var op = Assert.Single(KernelOps.All, o => o.Name == name);
        foreach (var shape in op.Shapes("small"))
            foreach (var version in op.Versions.Where(v => op.Supports(dev, v)))
            {
                using var trial = op.Prepare(dev, version, shape);
                var v = trial.Validation;
                output.WriteLine($"{name} {version} {shape.Label}: max abs error {v.MaxAbsError:E2} (atol {v.Atol:E0}, rtol {v.Rtol:E0})");
                Assert.True(v.Passed, $"{name} {version} {shape.Label}: {string.Join("; ", v.FirstMismatches)}");
            }
    }
}
