// The two checkpoint layouts (official safetensors, diffusers folder) must load into the same DiT:
// same detected config, bit-identical outputs (tolerance 0: same numbers through the same kernels).
// Plus FindVae's lookup rules and the error for a folder that is neither layout.
using BlockDance.Transformer;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class LayoutTests(ITestOutputHelper output)
{
    static string Fixtures => Path.Combine(AppContext.BaseDirectory, "fixtures");

    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void DiffusersAndOfficialLayouts_GiveIdenticalOutputs(string kind)
    {
        var dev = TestDevices.Get(kind);
        var (official, diffusers) = LayoutFixtureCheck.Outputs(dev, Path.Combine(Fixtures, LayoutFixtureCheck.OfficialFile),
            Path.Combine(Fixtures, LayoutFixtureCheck.DiffusersFolder), Fixtures);
        Tolerance.AssertClose(official, diffusers, 0, 0, "dit_p2 official vs diffusers", output);
        var (err, n) = LayoutFixtureCheck.Compare(dev, Fixtures);
        Assert.Equal(0.0, err);
        Assert.Equal(official.Length, n);
    }

    [Fact]
    public void DiffusersSource_DetectsTheSameConfig_AndMapsKeys()
    {
        using var off = (OfficialSafeTensorsSource)ModelLoader.OpenSource(Path.Combine(Fixtures, LayoutFixtureCheck.OfficialFile));
        using var dif = (DiffusersSource)ModelLoader.OpenSource(Path.Combine(Fixtures, LayoutFixtureCheck.DiffusersFolder));
        var a = ModelLoader.DetectConfig(off);
        var b = ModelLoader.DetectConfig(dif);
        output.WriteLine($"official:  {a}\ndiffusers: {b}");
        Assert.Equal(a, b);
        Assert.False(dif.Has("pos_embed"));
        // The computed 2-D sin-cos embedding equals the stored one bit for bit (why the outputs can be identical).
        Assert.Equal(off.Read("pos_embed", 1, a.Tokens, a.Hidden), PositionEmbedding.SinCos2D(a.Hidden, a.GridSize));
        Assert.Equal(new long[] { 3 * 64, 64 }, dif.ShapeOf("blocks.1.attn.qkv.weight"));
        Assert.Equal(off.Keys.Where(k => k != "pos_embed").OrderBy(k => k), dif.Keys.OrderBy(k => k));
        foreach (var key in dif.Keys)
        {
            var shape = off.ShapeOf(key);
            Assert.Equal(off.Read(key, shape), dif.Read(key, shape));
        }
        // The transformer/ folder itself works too.
        using var inner = (DiffusersSource)ModelLoader.OpenSource(Path.Combine(Fixtures, LayoutFixtureCheck.DiffusersFolder, "transformer"));
        Assert.Equal(a, ModelLoader.DetectConfig(inner));
    }

    [Fact]
    public void OpenSource_FolderWithoutTransformer_SaysWhatItExpected()
    {
        var dir = Directory.CreateTempSubdirectory("bd_empty_model_");
        try
        {
            var e = Assert.Throws<ModelException>(() => ModelLoader.OpenSource(dir.FullName));
            output.WriteLine(e.Message);
            Assert.Contains("transformer/", e.Message);
        }
        finally { dir.Delete(true); }
    }

    [Fact]
    public void FindVae_OverrideThenVaeFolder_ElseNull()
    {
        var root = Directory.CreateTempSubdirectory("bd_findvae_");
        try
        {
            var model = Path.Combine(root.FullName, "DiT-XL-2-256");
            Directory.CreateDirectory(Path.Combine(model, "transformer"));
            Assert.Null(ModelLoader.FindVae(model, null));
            var vaeDir = Path.Combine(model, "vae");
            Directory.CreateDirectory(vaeDir);
            var vaeFile = Path.Combine(vaeDir, "diffusion_pytorch_model.safetensors");
            File.WriteAllBytes(vaeFile, []);
            Assert.Equal(vaeFile, ModelLoader.FindVae(model, null));                                 // model folder
            Assert.Equal(vaeFile, ModelLoader.FindVae(Path.Combine(model, "transformer"), null));    // its transformer/ folder
            var file = Path.Combine(model, "dit.safetensors");
            Assert.Equal(vaeFile, ModelLoader.FindVae(file, null));                                  // a file next to vae/
            var other = Path.Combine(root.FullName, "ema.safetensors");
            File.WriteAllBytes(other, []);
            Assert.Equal(other, ModelLoader.FindVae(model, other));                                  // --vae FILE wins
            Assert.Equal(vaeFile, ModelLoader.FindVae(file, vaeDir));                                // --vae FOLDER
            Assert.Throws<ModelException>(() => ModelLoader.FindVae(model, Path.Combine(root.FullName, "missing")));
        }
        finally { root.Delete(true); }
    }
}
