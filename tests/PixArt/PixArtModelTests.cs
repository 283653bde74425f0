// PixArt-α against the plain-PyTorch reference (tools/reference/pixart_reference.py, fixtures from
// make_pixart_fixtures.py): the patch tokens with the position table, every block's output and the final
// output of one forward over a [prompt; negative] batch with key-padding masks, for the 512-style model and the
// 1024-MS-style model (micro-conditions, position scale 2). Tolerance: 1e-4 absolute (float32 vs float32
// PyTorch, activations of O(1)), as for the DiT fixtures.
using BlockDance.Kernels;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class PixArtModelTests(ITestOutputHelper output)
{
    const double Atol = 1e-4;

    static SafeTensorsFile Ref() => SafeTensorsFile.Open(CliRunner.Fixture("pixart_tiny.ref.safetensors"));

    [SkippableTheory]
    [InlineData("cpu", "pixart_tiny", "")]
    [InlineData("cpu", "pixart_tiny_ms", "ms_")]
    [InlineData("cuda", "pixart_tiny", "")]
    [InlineData("cuda", "pixart_tiny_ms", "ms_")]
    public void Forward_MatchesPyTorch_TokensEveryBlockAndOutput(string kind, string folder, string prefix)
    {
        var dev = TestDevices.Get(kind);
        using var r = Ref();
        using var model = PixArt.Load(dev, CliRunner.Fixture(folder));
        var cfg = model.PixArtConfig;
        var yInfo = r.Get(prefix + "y");
        int rows = (int)yInfo.Shape[0], l = (int)yInfo.Shape[1];
        model.SetCaptions(r.ReadFloat32(prefix + "y"), r.ReadFloat32(prefix + "mask"), rows, l);
        using var x = Tensor.FromHost(dev, "x", r.ReadFloat32(prefix + "x"), rows, cfg.InChannels, cfg.SampleSize, cfg.SampleSize);
        var tokens = model.Embed(x, r.ReadFloat32(prefix + "t"), [0, 1])!;
        Tolerance.AssertClose(r.ReadFloat32(prefix + "tokens"), tokens.ToHost(), Atol, 0, folder + " tokens", output);
        Tensor h = tokens;
        for (int i = 0; i < cfg.Depth; i++)
        {
            h = model.RunBlocks(i, i + 1, h);
            Tolerance.AssertClose(r.ReadFloat32(prefix + $"block{i}"), h.ToHost(), Atol, 0, $"{folder} block {i}", output);
        }
        using var o = Tensor.Allocate(dev, "out", rows, cfg.OutChannels, cfg.SampleSize, cfg.SampleSize);
        model.Final(h, o);
        Tolerance.AssertClose(r.ReadFloat32(prefix + "out"), o.ToHost(), Atol, 0, folder + " output", output);
    }

    [Fact]
    public void Config_ComesFromConfigJson_512StyleAndMs()
    {
        var a = PixArtConfig.Read(CliRunner.Fixture("pixart_tiny"));
        Assert.Equal((2, 2, 24, 48, 32, 1.0, false), (a.Depth, a.Heads, a.HeadDim, a.Hidden, a.CaptionChannels, a.InterpolationScale, a.MicroConditions));
        var b = PixArtConfig.Read(CliRunner.Fixture("pixart_tiny_ms"));
        Assert.Equal((2.0, true), (b.InterpolationScale, b.MicroConditions));
        Assert.True(PixArtConfig.IsPixArtFolder(CliRunner.Fixture("pixart_tiny")));
        Assert.False(PixArtConfig.IsPixArtFolder(CliRunner.Fixture("dit_p2_diffusers")));
    }
}
