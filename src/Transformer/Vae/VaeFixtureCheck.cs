// The C# VAE decoder against the PyTorch reference of tools/reference/make_fixtures.py (fixture_vae):
// a tiny decoder with the real structure (4 up blocks × 3 resnets, shortcuts, mid attention,
// 3 upsamplers; channels 4/8/16, 4 GroupNorm groups) decoding a (2, 4, 4, 4) latent to (2, 3, 32, 32).
// Used by the tests and by `blockdance selftest`.
using BlockDance.Kernels;
using BlockDance.Transformer.IO;

namespace BlockDance.Transformer.Vae;

public static class VaeFixtureCheck
{
    public const string WeightsFile = "vae_tiny.weights.safetensors";
    public const string RefFile = "vae_tiny.ref.safetensors";

    /// <summary>Max |C# − PyTorch| over the decoded image ([0, 255] scale) and its element count.</summary>
    public static (double maxAbsError, int elements) Compare(ComputeDevice dev, string fixturesDir)
    {
        var r = Run(dev, fixturesDir);
        return (r.ImageError, r.Elements);
    }

    /// <summary>The errors of every stored stage: mid block output, conv_out output ("raw"), image.</summary>
    public sealed record Result(double MidError, double RawError, double ImageError, int Elements);

    public static Result Run(ComputeDevice dev, string fixturesDir)
    {
        using var refs = SafeTensorsFile.Open(Path.Combine(fixturesDir, RefFile));
        using var vae = VaeDecoder.Load(dev, Path.Combine(fixturesDir, WeightsFile));
        var shape = refs.Get("latent").Shape.Select(x => (int)x).ToArray();
        using var latent = Tensor.FromHost(dev, "latent", refs.ReadFloat32("latent"), shape);
        double midErr = double.NaN, rawErr = double.NaN;
        vae.OnStage = (stage, t) =>
        {
            if (stage == "mid") midErr = Check.MaxAbsError(refs.ReadFloat32("mid"), t.ToHost());
            if (stage == "raw") rawErr = Check.MaxAbsError(refs.ReadFloat32("raw"), t.ToHost());
        };
        var image = vae.Decode(latent).ToHost();
        var expected = refs.ReadFloat32("image");
        return new Result(midErr, rawErr, Check.MaxAbsError(expected, image), expected.Length);
    }
}
