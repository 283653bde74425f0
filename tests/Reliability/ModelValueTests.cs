// Well-formed checkpoints with impossible VALUES (the examples, on the shipped demo model): each is
// one typed error before any device work — before this check they crashed with a stack trace (division by
// zero, index out of range) or ran and exited 0 with garbage (negative heads, a missing block, integer
// bytes read as weights, NaN weights → a black image).
using BlockDance.Transformer.IO;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class ModelValueTests(ITestOutputHelper output)
{
    static readonly Lazy<(List<TensorEntry> Tensors, Dictionary<string, string> Metadata)> Demo = new(() => HostileFiles.Read(HostileFiles.DemoModel));

    static List<TensorEntry> With(string name, long[] shape, float[] data) =>
        Demo.Value.Tensors.Select(t => t.Name == name ? t with { Shape = shape, Data = data } : t).ToList();

    public static TheoryData<string, string> Cases => new()
    {
        { "heads0", "metadata num_heads: expected a positive divisor of the hidden size D = 96, found '0'" },
        { "headsNegative", "metadata num_heads: expected a positive divisor of the hidden size D = 96, found '-4'" },
        { "headsNotDivisor", "metadata num_heads: expected a positive divisor of the hidden size D = 96, found '5'" },
        { "xEmbedderZeroSize", "tensor 'x_embedder.proj.weight': expected shape [D, C_in, p, p] (4 dimensions, each ≥ 1), found [96, 1, 0, 0]" },
        { "xEmbedderRank0", "tensor 'x_embedder.proj.weight': expected shape [D, C_in, p, p] (4 dimensions, each ≥ 1), found []" },
        { "posEmbedRank0", "tensor 'pos_embed': expected shape [1, T, D] (3 dimensions, each ≥ 1), found []" },
        { "posEmbedNoTokens", "tensor 'pos_embed': expected shape [1, T, D] (3 dimensions, each ≥ 1), found [1, 0, 96]" },
        { "finalLayerTooShort", "tensor 'final_layer.linear.weight': expected shape [p²·C_out, D] (2 dimensions, each ≥ 1), found [8]" },
        { "yEmbedderRank1", "tensor 'y_embedder.embedding_table.weight': expected shape [classes + 1, D] (2 dimensions, each ≥ 1), found [1056]" },
        { "finalLayerWrongWidth", "tensor 'final_layer.linear.weight': expected shape [8, 96] for DiT(depth 6, D 96)/2 (depth 6, D 96), found [8, 48]" },
        { "missingBlock2", "blocks: expected contiguous indices 0..5, found a gap: block 2 missing (present: 0, 1, 3, 4, 5)" },
        { "incompleteBlock4", "missing tensor 'blocks.4.mlp.fc2.bias'" },
    };

    static string Build(string name, string dir)
    {
        var (tensors, meta) = Demo.Value;
        var m = new Dictionary<string, string>(meta);
        switch (name)
        {
            case "heads0": m["num_heads"] = "0"; break;
            case "headsNegative": m["num_heads"] = "-4"; break;
            case "headsNotDivisor": m["num_heads"] = "5"; break;
            case "xEmbedderZeroSize": tensors = With("x_embedder.proj.weight", [96, 1, 0, 0], []); break;
            case "xEmbedderRank0": tensors = With("x_embedder.proj.weight", [], [0.5f]); break;
            case "posEmbedRank0": tensors = With("pos_embed", [], [0.5f]); break;
            case "posEmbedNoTokens": tensors = With("pos_embed", [1, 0, 96], []); break;
            case "finalLayerTooShort": tensors = With("final_layer.linear.weight", [8], new float[8]); break;
            case "yEmbedderRank1": tensors = With("y_embedder.embedding_table.weight", [1056], new float[1056]); break;
            case "finalLayerWrongWidth": tensors = With("final_layer.linear.weight", [8, 48], new float[8 * 48]); break;
            case "missingBlock2": tensors = tensors.Where(t => !t.Name.StartsWith("blocks.2.")).ToList(); break;
            case "incompleteBlock4": tensors = tensors.Where(t => t.Name != "blocks.4.mlp.fc2.bias").ToList(); break;
            default: throw new ArgumentException(name);
        }
        return HostileFiles.Write(dir, name + ".safetensors", tensors, m);
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void ImpossibleHeaderValue_IsOneLineError_BeforeAnyDeviceWork(string name, string expected)
    {
        var dir = CliRunner.TempDir();
        var model = Build(name, dir);
        var png = Path.Combine(dir, "x.png");
        var (code, stdout, err) = CliRunner.Run("sample", "--model", model, "--steps", "1", "--out", png);
        output.WriteLine(err);
        HostileFiles.AssertOneLineError(code, err, expected);
        Assert.DoesNotContain("device:", stdout);          // rejected from the header alone
        Assert.False(File.Exists(png));
        // inspect reports the same error the same way (it printed "not a DiT checkpoint" and exited 0)
        var (icode, _, ierr) = CliRunner.Run("inspect", model);
        HostileFiles.AssertOneLineError(icode, ierr, expected);
    }

    [Fact]
    public void FloatTensorRelabelledI32_IsRejected_NotConvertedAsIntegers()
    {
        var dir = CliRunner.TempDir();
        var model = HostileFiles.EditHeader(HostileFiles.DemoModel, dir, "i32.safetensors",
            h => h["blocks.0.attn.qkv.weight"]!["dtype"] = "I32");
        var (code, _, err) = CliRunner.Run("sample", "--model", model, "--steps", "1", "--out", Path.Combine(dir, "x.png"));
        HostileFiles.AssertOneLineError(code, err, "tensor 'blocks.0.attn.qkv.weight': expected a float dtype (F32, F16, BF16), found I32");
        Assert.Single(Directory.GetFiles(dir));
    }

    [Fact]
    public void NonFiniteWeights_AreFoundAtLoad_WithTensorNamesAndCounts()
    {
        var dir = CliRunner.TempDir();
        var fc1 = Demo.Value.Tensors.Single(t => t.Name == "blocks.3.mlp.fc1.weight").Data.ToArray();
        foreach (var i in new[] { 0, 7, 100, 2000, 36863 }) fc1[i] = float.NaN;
        var bias = Demo.Value.Tensors.Single(t => t.Name == "final_layer.linear.bias").Data.ToArray();
        bias[3] = float.NegativeInfinity;
        var tensors = Demo.Value.Tensors.Select(t => t.Name switch
        {
            "blocks.3.mlp.fc1.weight" => t with { Data = fc1 },
            "final_layer.linear.bias" => t with { Data = bias },
            _ => t,
        });
        var model = HostileFiles.Write(dir, "nan.safetensors", tensors, Demo.Value.Metadata);
        var png = Path.Combine(dir, "x.png");
        var (code, _, err) = CliRunner.Run("sample", "--model", model, "--device", "cpu", "--class", "0", "--steps", "1", "--out", png);
        output.WriteLine(err);
        HostileFiles.AssertOneLineError(code, err,
            "weights: expected finite values, found 6 NaN/Inf in 2 tensor(s): 'blocks.3.mlp.fc1.weight' 5 of 36864, 'final_layer.linear.bias' 1 of 8");
        Assert.False(File.Exists(png));
    }

    [Fact]
    public void NonFiniteNoiseFile_IsRejected()
    {
        var dir = CliRunner.TempDir();
        var noise = new float[196];
        noise[17] = float.NaN;
        noise[18] = float.PositiveInfinity;
        var noisePath = Path.Combine(dir, "noise.safetensors");
        SafeTensorsWriter.Write(noisePath, [("noise", new long[] { 1, 1, 14, 14 }, noise)]);
        var png = Path.Combine(dir, "x.png");
        var (code, _, err) = CliRunner.Run("sample", "--model", HostileFiles.DemoModel, "--class", "3", "--noise", noisePath, "--out", png);
        HostileFiles.AssertOneLineError(code, err, "tensor 'noise': expected finite values, found 2 NaN/Inf of 196");
        Assert.False(File.Exists(png));
    }

    [Fact]
    public void DiffusersFolderWithBlockGap_IsRejected()
    {
        var dir = CliRunner.TempDir();
        var folder = Path.Combine(dir, "transformer");
        Directory.CreateDirectory(folder);
        var srcDir = Path.Combine(CliRunner.Fixtures, "dit_p2_diffusers", "transformer");
        File.Copy(Path.Combine(srcDir, "config.json"), Path.Combine(folder, "config.json"));
        var (tensors, meta) = HostileFiles.Read(Path.Combine(srcDir, "diffusion_pytorch_model.safetensors"));
        // The fixture has 2 blocks; renaming block 1 to block 2 leaves a gap at 1.
        HostileFiles.Write(folder, "diffusion_pytorch_model.safetensors",
            tensors.Select(t => t with { Name = t.Name.Replace("transformer_blocks.1.", "transformer_blocks.2.") }), meta);
        var (code, _, err) = CliRunner.Run("inspect", dir);
        HostileFiles.AssertOneLineError(code, err, "transformer_blocks: expected contiguous indices 0..0");
    }
}
