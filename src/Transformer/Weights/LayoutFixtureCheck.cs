// The diffusers layout against the official one (tools/reference/make_fixtures.py, fixture_diffusers):
// dit_p2's weights as an official safetensors file and as a diffusers folder must give IDENTICAL
// outputs through the C# DiT (same numbers, same kernels; only the key mapping differs — the diffusers
// side computes pos_embed instead of reading it, and PositionEmbedding reproduces the stored float32
// values exactly). Used by the tests and by `blockdance selftest`.
using BlockDance.Kernels;
using BlockDance.Transformer.IO;

namespace BlockDance.Transformer;

public static class LayoutFixtureCheck
{
    public const string OfficialFile = "dit_p2.weights.safetensors";
    public const string DiffusersFolder = "dit_p2_diffusers";
    public const string RefFile = "dit_p2.ref.safetensors";

    /// <summary>Max |official − diffusers| over the DiT output on the fixture's inputs (expected 0), and its element count.</summary>
    public static (double maxAbsError, int elements) Compare(ComputeDevice dev, string fixturesDir)
    {
        var (a, b) = Outputs(dev, Path.Combine(fixturesDir, OfficialFile), Path.Combine(fixturesDir, DiffusersFolder), fixturesDir);
        double max = Check.MaxAbsError(a, b);
        return (max, a.Length);
    }

    /// <summary>The DiT outputs for the two model paths on dit_p2.ref's x, t, y.</summary>
    public static (float[] first, float[] second) Outputs(ComputeDevice dev, string pathA, string pathB, string fixturesDir)
    {
        using var refs = SafeTensorsFile.Open(Path.Combine(fixturesDir, RefFile));
        var x = refs.ReadFloat32("x");
        var shape = refs.Get("x").Shape.Select(s => (int)s).ToArray();
        var t = refs.ReadFloat32("t");
        var y = refs.ReadFloat32("y").Select(v => (int)v).ToArray();
        return (Forward(dev, pathA, x, shape, t, y), Forward(dev, pathB, x, shape, t, y));
    }

    static float[] Forward(ComputeDevice dev, string path, float[] x, int[] shape, float[] t, int[] y)
    {
        using var model = ModelLoader.Load(dev, path);
        var c = model.Config;
        using var input = Tensor.FromHost(dev, "x", x, shape);
        using var output = Tensor.Allocate(dev, "out", shape[0], c.OutChannels, c.InputSize, c.InputSize);
        model.Forward(input, t, y, output);
        return output.ToHost();
    }
}
