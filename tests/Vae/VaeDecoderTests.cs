// The VAE decoder end to end against the PyTorch fixture (tools/reference/make_fixtures.py,
// fixture_vae), plus the loader's contracts: older attention key names, buffer reuse, clear errors.
// Tolerances: the fixture's float32-vs-float64 error is 3e-6 on the mid block and conv_out output
// and 3e-4 on the image (×127.5); the C# float32 kernels sum in a different order than PyTorch, so a
// few times that is allowed: 5e-5 / 5e-5 / 1e-2 (of 255) absolute.
using BlockDance.Kernels;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;
using BlockDance.Transformer.Vae;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class VaeDecoderTests(ITestOutputHelper output)
{
    static string Fixtures => Path.Combine(AppContext.BaseDirectory, "fixtures");
    static string WeightsPath => Path.Combine(Fixtures, VaeFixtureCheck.WeightsFile);

    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void VaeDecoder_MatchesPyTorchFixture(string kind)
    {
        var dev = TestDevices.Get(kind);
        var r = VaeFixtureCheck.Run(dev, Fixtures);
        output.WriteLine($"vae_tiny: max abs error mid {r.MidError:E2}, raw {r.RawError:E2}, image {r.ImageError:E2} (of 255) over {r.Elements} pixels");
        Assert.True(r.MidError <= 5e-5, $"mid block: max abs error {r.MidError:E2}");
        Assert.True(r.RawError <= 5e-5, $"conv_out: max abs error {r.RawError:E2}");
        Assert.True(r.ImageError <= 1e-2, $"image: max abs error {r.ImageError:E2}");
        var (err, n) = VaeFixtureCheck.Compare(dev, Fixtures);
        Assert.Equal(r.ImageError, err);
        Assert.Equal(2 * 3 * 32 * 32, n);
    }

    [SkippableTheory]
    [InlineData("cpu")]
    public void VaeDecoder_ReadsStructureAndGroupsFromTheFile(string kind)
    {
        var dev = TestDevices.Get(kind);
        using var vae = VaeDecoder.Load(dev, WeightsPath);
        output.WriteLine(vae.Describe());
        Assert.Equal(4, vae.Groups);                                   // __metadata__ norm_num_groups
        Assert.Equal(4, vae.LatentChannels);
        Assert.Equal(3, vae.OutChannels);
        Assert.Equal(8, vae.UpscaleFactor);
        Assert.Equal([16, 16, 8, 4], vae.UpBlocks.Select(b => b.Out));
        Assert.All(vae.UpBlocks, b => Assert.Equal(3, b.Resnets.Count));
        Assert.Null(vae.UpBlocks[1].Resnets[0].ConvShortcut);
        Assert.NotNull(vae.UpBlocks[2].Resnets[0].ConvShortcut);     // 16 → 8
        Assert.NotNull(vae.UpBlocks[3].Resnets[0].ConvShortcut);     // 8 → 4
        Assert.Null(vae.UpBlocks[3].Upsampler);
    }

    [SkippableTheory]
    [InlineData("cpu")]
    public void VaeDecoder_OlderAttentionNamesAndConvShapedLinears_GiveIdenticalImages(string kind)
    {
        // Older diffusers conversions name the mid-block attention query/key/value/proj_attn; some store
        // the Linears as 1×1 convs [C, C, 1, 1]. Same numbers → bit-identical output.
        var dev = TestDevices.Get(kind);
        var renamed = new Dictionary<string, string> { ["to_q"] = "query", ["to_k"] = "key", ["to_v"] = "value", ["to_out.0"] = "proj_attn" };
        var tmp = Path.Combine(Path.GetTempPath(), $"vae_old_names_{Guid.NewGuid():N}.safetensors");
        try
        {
            using (var f = SafeTensorsFile.Open(WeightsPath))
            {
                var tensors = f.Tensors.Select(t =>
                {
                    string name = t.Name, prefix = "decoder.mid_block.attentions.0.";
                    long[] shape = t.Shape;
                    foreach (var (from, to) in renamed)
                        if (name.StartsWith(prefix + from + "."))
                        {
                            name = prefix + to + name[(prefix.Length + from.Length)..];
                            if (shape.Length == 2 && to == "key") shape = [shape[0], shape[1], 1, 1];
                        }
                    return (name, shape, f.ReadFloat32(t.Name));
                }).ToList();
                Assert.Contains(tensors, t => t.name.EndsWith("attentions.0.proj_attn.weight"));
                SafeTensorsWriter.Write(tmp, tensors, f.Metadata.ToDictionary());
            }
            using var latent = LoadLatent(dev);
            using var a = VaeDecoder.Load(dev, WeightsPath);
            using var b = VaeDecoder.Load(dev, tmp);
            var ia = a.Decode(latent).ToHost();
            var ib = b.Decode(latent).ToHost();
            Tolerance.AssertClose(ia, ib, 0, 0, "old vs new attention names", output);
        }
        finally { File.Delete(tmp); }
    }

    [SkippableTheory]
    [InlineData("cpu")]
    public void VaeDecoder_ReusesBuffersForTheSameShape_AndReallocatesForAnother(string kind)
    {
        var dev = TestDevices.Get(kind);
        using var vae = VaeDecoder.Load(dev, WeightsPath);
        using var latent = LoadLatent(dev);
        var first = vae.Decode(latent).ToHost();
        var ws = vae.Prepare(2, 4, 4);
        long bytes = dev.AllocatedBytes;
        var again = vae.Decode(latent);
        Assert.Same(ws, vae.Prepare(2, 4, 4));
        Assert.Equal(bytes, dev.AllocatedBytes);
        Tolerance.AssertClose(first, again.ToHost(), 0, 0, "second decode", output);
        // One sample through a decoder prepared for two: realloc for batch 1, same pixels as sample 0.
        using var one = Tensor.FromHost(dev, "latent1", latent.ToHost()[..(4 * 4 * 4)], 1, 4, 4, 4);
        var single = vae.Decode(one).ToHost();
        Assert.Equal([1, 3, 32, 32], vae.Decode(one).Shape);
        Tolerance.AssertClose(first[..single.Length], single, 1e-4, 0, "batch 1 vs sample 0 of batch 2", output);
    }

    [SkippableTheory]
    [InlineData("cpu")]
    public void VaeDecoder_MissingTensorOrWrongLatent_GiveClearErrors(string kind)
    {
        var dev = TestDevices.Get(kind);
        var tmp = Path.Combine(Path.GetTempPath(), $"vae_missing_{Guid.NewGuid():N}.safetensors");
        try
        {
            using (var f = SafeTensorsFile.Open(WeightsPath))
                SafeTensorsWriter.Write(tmp, f.Tensors.Where(t => t.Name != "decoder.up_blocks.2.resnets.0.conv_shortcut.weight")
                    .Select(t => (t.Name, t.Shape, f.ReadFloat32(t.Name))).ToList(), f.Metadata.ToDictionary());
            var e = Assert.Throws<ModelException>(() => VaeDecoder.Load(dev, tmp));
            output.WriteLine(e.Message);
            Assert.Contains("decoder.up_blocks.2.resnets.0", e.Message);
        }
        finally { File.Delete(tmp); }
        var dir = Assert.Throws<ModelException>(() => VaeDecoder.Load(dev, Path.GetTempPath()));
        Assert.Contains(VaeWeights.FileName, dir.Message);
        using var vae = VaeDecoder.Load(dev, WeightsPath);
        using var bad = Tensor.Allocate(dev, "latent", 1, 3, 4, 4);
        var shape = Assert.Throws<ArgumentException>(() => vae.Decode(bad));
        Assert.Contains("(N, 4, h, w)", shape.Message);
    }

    static Tensor LoadLatent(ComputeDevice dev)
    {
        using var refs = SafeTensorsFile.Open(Path.Combine(Fixtures, VaeFixtureCheck.RefFile));
        return Tensor.FromHost(dev, "latent", refs.ReadFloat32("latent"), 2, 4, 4, 4);
    }
}
