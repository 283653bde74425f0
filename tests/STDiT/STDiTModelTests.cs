// Open-Sora 1.0's STDiT against the plain-PyTorch reference (tools/reference/stdit_reference.py, fixtures from
// make_stdit_fixtures.py): the tokens (patch embedding + spatial table), every block's output and the final output of
// one forward of 2 rows with different timesteps and caption masks, from each way the weights come (folder with
// config.json + safetensors, the bare .pth with its sin-cos buffers, the training checkpoint's "ema"); the sin-cos
// tables against the buffers torch stored; configuration from config.json and from the shapes; bad shapes refused.
// Tolerance: 1e-4 absolute (float32 vs float32 PyTorch, activations of O(1)), as for the DiT and PixArt-α.
using BlockDance.Kernels;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class STDiTModelTests(ITestOutputHelper output)
{
    const double Atol = 1e-4;
    static readonly STDiTConfig.VideoOptions Tiny = new(SpaceScale: 0.5, TimeScale: 2.0 / 3.0, Heads: 2);

    static SafeTensorsFile Ref() => SafeTensorsFile.Open(CliRunner.Fixture("stdit_tiny.ref.safetensors"));

    /// <summary>Runs the reference forward block by block; returns the output.</summary>
    float[] CheckForward(STDiT model, string what)
    {
        using var r = Ref();
        var dev = model.Device;
        var cfg = model.VideoConfig;
        var yInfo = r.Get("y");
        int rows = (int)yInfo.Shape[0], l = (int)yInfo.Shape[1];
        model.SetCaptions(r.ReadFloat32("y"), r.ReadFloat32("mask"), rows, l);
        using var x = Tensor.FromHost(dev, "x", r.ReadFloat32("x"), rows, cfg.InChannels, cfg.Frames, cfg.LatentSize, cfg.LatentSize);
        var tokens = model.Embed(x, r.ReadFloat32("t"), [0, 1])!;
        Tolerance.AssertClose(r.ReadFloat32("tokens"), tokens.ToHost(), Atol, 0, what + " tokens", output);
        Tensor h = tokens;
        for (int i = 0; i < cfg.Depth; i++)
        {
            h = model.RunBlocks(i, i + 1, h);
            Tolerance.AssertClose(r.ReadFloat32($"block{i}"), h.ToHost(), Atol, 0, $"{what} block {i}", output);
        }
        using var o = Tensor.Allocate(dev, "out", rows, cfg.OutChannels, cfg.Frames, cfg.LatentSize, cfg.LatentSize);
        model.Final(h, o);
        var got = o.ToHost();
        Tolerance.AssertClose(r.ReadFloat32("out"), got, Atol, 0, what + " output", output);
        return got;
    }

    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void Forward_MatchesPyTorch_EveryBlockAndOutput_FolderPthAndEmaAgree(string kind)
    {
        var dev = TestDevices.Get(kind);
        using var folder = STDiT.Load(dev, CliRunner.Fixture("stdit_tiny"));
        var a = CheckForward(folder, "folder");
        using var pth = STDiT.Load(dev, CliRunner.Fixture("stdit_tiny.pth"), Tiny);
        Assert.Equal(folder.VideoConfig, pth.VideoConfig);
        Assert.Equal(a, CheckForward(pth, ".pth"));
        using var ema = STDiT.Load(dev, CliRunner.Fixture("stdit_tiny_ema.pth"), Tiny);
        Assert.Equal(a, CheckForward(ema, "ema .pth"));
    }

    [Fact]
    public void Config_FromConfigJson_AndFromShapes_OptionsOverride()
    {
        var (src, path) = STDiTWeights.Open(CliRunner.Fixture("stdit_tiny"));
        using (src as IDisposable)
        {
            var c = STDiTWeights.Configure(src, path, new());
            Assert.Equal((3, 24, 2, 2, 4, 8, 16, 6, 3, 8, 0.5), (c.Depth, c.Hidden, c.Heads, c.Patch, c.InChannels, c.OutChannels,
                c.CaptionChannels, c.MaxTokens, c.Frames, c.LatentSize, c.SpaceScale));
            Assert.Equal(2.0 / 3.0, c.TimeScale, 12);
            Assert.Equal(48, c.Tokens);
            Assert.Equal(48, c.Shape.Tokens);
            Assert.Equal(48, c.Workspace.Tokens);
            var o = STDiTWeights.Configure(src, path, new(Frames: 5, ImageSize: 128));
            Assert.Equal((5, 16, 0.5), (o.Frames, o.LatentSize, o.SpaceScale));
        }
        // a .pth holds no config: frames and size from its buffers, heads given, scales by the 1.0 rule unless given
        var (pth, _) = STDiTWeights.Open(CliRunner.Fixture("stdit_tiny.pth"));
        using (pth as IDisposable)
        {
            var c = STDiTConfig.FromShapes(pth, new(Heads: 2));
            Assert.Equal((3, 3, 8, 8.0 / 64, 1.0), (c.Depth, c.Frames, c.LatentSize, c.SpaceScale, c.TimeScale));
            var ex = Assert.Throws<ModelException>(() => STDiTConfig.FromShapes(pth, new()));
            Assert.Contains("the head count must be given", ex.Message);   // the fact; the program reports it under --heads
            Assert.Equal("heads", ex.Field);
        }
        Assert.True(STDiTWeights.IsSTDiT(CliRunner.Fixture("stdit_tiny")));
        Assert.True(STDiTWeights.IsSTDiT(CliRunner.Fixture("stdit_tiny.pth")));
        Assert.False(STDiTWeights.IsSTDiT(CliRunner.Fixture("dit_p2.weights.safetensors")));
    }

    [Fact]
    public void SinCosTables_EqualTheBuffersTorchStored()
    {
        using var ck = TorchCheckpoint.Open(CliRunner.Fixture("stdit_tiny.pth"));
        Tolerance.AssertClose(ck.ReadFloat32("pos_embed"), STDiTPosition.Spatial(24, 4, 0.5), 1e-7, 0, "spatial table", output);
        Tolerance.AssertClose(ck.ReadFloat32("pos_embed_temporal"), STDiTPosition.Temporal(24, 3, 2.0 / 3.0), 1e-7, 0, "temporal table", output);
    }

    [Fact]
    public void WrongShape_IsRefusedBeforeAllocation_NamingKeyExpectedFound()
    {
        var dir = CliRunner.TempDir();
        using (var f = SafeTensorsFile.Open(CliRunner.Fixture("stdit_tiny/model.safetensors")))
        {
            var tensors = f.Tensors.Select(t => t.Name).ToDictionary(n => n, n => (f.Get(n).Shape, f.ReadFloat32(n)));
            var (shape, data) = tensors["blocks.1.attn_temp.proj.weight"];
            tensors["blocks.1.attn_temp.proj.weight"] = ([shape[0], shape[1] - 1], data[..(int)(shape[0] * (shape[1] - 1))]);
            SafeTensorsWriter.Write(Path.Combine(dir, "model.safetensors"), tensors.Select(kv => (kv.Key, kv.Value.Item1, kv.Value.Item2)));
        }
        File.Copy(CliRunner.Fixture("stdit_tiny/config.json"), Path.Combine(dir, "config.json"));
        var dev = TestDevices.Get("cpu");
        long before = dev.AllocatedBytes;
        var ex = Assert.Throws<ModelException>(() => STDiT.Load(dev, dir));
        Assert.Contains("blocks.1.attn_temp.proj.weight", ex.Message);
        Assert.Contains("[24, 24]", ex.Message);
        Assert.Contains("[24, 23]", ex.Message);
        Assert.Equal(before, dev.AllocatedBytes);
    }

    [Fact]
    public void SeamParts_BranchOutputsAndRowsGiveThePlainForwardsBits()
    {
        var dev = TestDevices.Get("cpu");
        using var r = Ref();
        using var model = STDiT.Load(dev, CliRunner.Fixture("stdit_tiny"));
        var c = model.VideoConfig;
        model.SetCaptions(r.ReadFloat32("y"), r.ReadFloat32("mask"), 2, 6);
        using var x = Tensor.FromHost(dev, "x", r.ReadFloat32("x"), 2, c.InChannels, c.Frames, c.LatentSize, c.LatentSize);
        using var tokens = Tensor.Allocate(dev, "tokens", 2, c.Tokens, c.Hidden);
        using var plain = Tensor.Allocate(dev, "plain", 2, c.Tokens, c.Hidden);
        using var other = Tensor.Allocate(dev, "other", 2, c.Tokens, c.Hidden);
        tokens.CopyFromHost(model.Embed(x, r.ReadFloat32("t"), [0, 1])!.ToHost());
        model.RunBlocks(0, c.Depth, tokens, plain);
        var slots = new Dictionary<string, Tensor>();
        Tensor Slot(int b, string part) => slots.TryGetValue($"{b}.{part}", out var s) ? s : slots[$"{b}.{part}"] = Tensor.Allocate(dev, part, 2, c.Tokens, c.Hidden);
        model.RunBlocks(0, c.Depth, tokens, other, new BlockOutputs(Slot, Reuse: false));
        Assert.Equal(plain.ToHost(), other.ToHost());
        Assert.Equal(4 * c.Depth, slots.Count);                         // attn, temporal, cross, mlp per block
        model.RunBlocks(0, c.Depth, tokens, other, new BlockOutputs(Slot, Reuse: true));  // same step: the stored branches give the same bits
        Assert.Equal(plain.ToHost(), other.ToHost());
        other.CopyFromHost(new float[other.Length]);
        model.RunRows(0, c.Depth, tokens, [1], other);
        int row = c.Tokens * c.Hidden;
        Assert.Equal(plain.ToHost()[row..], other.ToHost()[row..]);
        Assert.All(other.ToHost()[..row], v => Assert.Equal(0f, v));
        Assert.Same(model.ModulatedInput(0, tokens), model.ModulatedInput(1, tokens));
        foreach (var t in slots.Values) t.Dispose();
    }
}
