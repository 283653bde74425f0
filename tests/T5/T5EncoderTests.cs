// The T5 encoder against the plain-PyTorch encoder of tools/reference/t5_reference.py (tiny config,
// HF key names, random weights, padding masks). Tolerance: 1e-4 absolute (the model-fixture tolerance of
// FixtureChecks; fp32 vs the fp32 reference, outputs are O(1) after the final RMS norm).
using BlockDance.Kernels;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;
using BlockDance.Transformer.T5;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests.T5;

public class T5EncoderTests(ITestOutputHelper output)
{
    static readonly string Folder = CliRunner.Fixture("t5_tiny");

    static (int[] Ids, int[] Mask, float[] Expected, int B, int L) Ref(string prefix = "", string outName = "last_hidden_state")
    {
        using var f = SafeTensorsFile.Open(Path.Combine(Folder, "t5_ref.safetensors"));
        var shape = f.Get(prefix + "ids").Shape;
        var ids = Array.ConvertAll(f.ReadFloat32(prefix + "ids"), v => (int)v);
        var mask = Array.ConvertAll(f.ReadFloat32(prefix + "mask"), v => (int)v);
        return (ids, mask, f.ReadFloat32(outName), (int)shape[0], (int)shape[1]);
    }

    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void ShardedF32Encoder_MatchesPyTorch_WithPaddingMasks(string kind)
    {
        var dev = TestDevices.Get(kind);
        var (ids, mask, expected, b, l) = Ref();
        using var enc = T5Encoder.Load(dev, Folder);           // the PixArt-layout folder: text_encoder/ inside
        Assert.Equal(2, enc.Config.Layers);
        using var o = enc.Encode(ids, mask, b, l);
        Assert.Equal([b, l, 32], o.Embeddings.Shape);
        Tolerance.AssertClose(expected, o.Embeddings.ToHost(), 1e-4, 0, "t5 last_hidden_state", output);
        Assert.Equal(Array.ConvertAll(mask, m => (float)m), o.Mask.ToHost());
    }

    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void SelftestCheck_IsWithinModelTolerance(string kind) =>
        Assert.InRange(T5FixtureCheck.Compare(TestDevices.Get(kind), CliRunner.Fixtures), 0, BlockDance.Sampler.SelfTest.FixtureChecks.ModelTolerance);

    [SkippableTheory]
    [InlineData("cpu")]
    public void Bf16Weights_LoadAsStored_MatchPyTorchOnBf16Values(string kind)
    {
        var dev = TestDevices.Get(kind);
        var (ids, mask, expected, b, l) = Ref(outName: "bf16.last_hidden_state");
        using var enc = T5Encoder.Load(dev, Path.Combine(Folder, "text_encoder_bf16"));
        using var o = enc.Encode(ids, mask, b, l);
        Tolerance.AssertClose(expected, o.Embeddings.ToHost(), 1e-4, 0, "t5 bf16 last_hidden_state", output);
    }

    [SkippableTheory]
    [InlineData("cpu")]
    public void RealPositions_IgnoreWhatSitsInPaddedSlots(string kind)
    {
        var dev = TestDevices.Get(kind);
        var (ids, mask, _, b, l) = Ref();
        using var enc = T5Encoder.Load(dev, Path.Combine(Folder, "text_encoder"));
        using var o1 = enc.Encode(ids, mask, b, l);
        var ids2 = ids.Select((v, i) => mask[i] == 0 ? 7 : v).ToArray();
        using var o2 = enc.Encode(ids2, mask, b, l);
        float[] a = o1.Embeddings.ToHost(), c = o2.Embeddings.ToHost();
        int changedPadded = 0;
        for (int r = 0; r < ids.Length; r++)
            for (int k = 0; k < 32; k++)
            {
                if (mask[r] == 1) Assert.Equal(a[r * 32 + k], c[r * 32 + k]);
                else if (a[r * 32 + k] != c[r * 32 + k]) changedPadded++;
            }
        Assert.True(changedPadded > 0, "padded slots should change with their ids (they still get hidden states)");
    }

    [Fact]
    public void HostReference_MatchesPyTorch()
    {
        // Validates the host reference that checks the full-width synthetic encoder (T5FullWidthTests).
        var (ids, mask, expected, b, l) = Ref();
        var dir = Path.Combine(Folder, "text_encoder");
        using var src = ShardedSafeTensors.Open(dir);
        var got = T5HostReference.Encode(src, T5Config.FromJson(Path.Combine(dir, "config.json")), ids, mask, b, l);
        Tolerance.AssertClose(expected, got, 1e-4, 0, "t5 host reference", output);
    }

    [Fact]
    public void IndexNamingAMissingShard_IsRejectedWithItsName()
    {
        var dir = CopyEncoder();
        File.Delete(Path.Combine(dir, "model-00002-of-00002.safetensors"));
        var e = Assert.Throws<InvalidValueException>(() => T5Encoder.Probe(dir));
        Assert.Contains("model-00002-of-00002.safetensors", e.Message);
        Assert.Contains("no such file", e.Message);
    }

    [Fact]
    public void IndexMappingATensorTheShardLacks_IsRejected()
    {
        var dir = CopyEncoder();
        var index = Path.Combine(dir, ShardedSafeTensors.IndexName);
        File.WriteAllText(index, File.ReadAllText(index).Replace("\"encoder.final_layer_norm.weight\": \"model-00002", "\"encoder.final_layer_norm.weight\": \"model-00001"));
        var e = Assert.Throws<InvalidValueException>(() => T5Encoder.Probe(dir));
        Assert.Contains("encoder.final_layer_norm.weight", e.Message);
    }

    [SkippableFact]
    public void Variant_ReadsTheVariantFile_AndItsAbsenceIsExplained()
    {
        var dir = CopyEncoder();
        File.Copy(Path.Combine(Folder, "text_encoder_bf16", "model.safetensors"), Path.Combine(dir, "model.bf16.safetensors"));
        using (var src = ShardedSafeTensors.Open(dir, "bf16")) Assert.Equal("BF16", src.DTypes);
        using (var src = ShardedSafeTensors.Open(dir)) Assert.Equal("F32", src.DTypes);
        var e = Assert.Throws<InvalidValueException>(() => ShardedSafeTensors.Open(dir, "fp16"));
        Assert.Contains("model.safetensors.index.fp16.json", e.Message);
        Assert.Contains("another weight variant?", e.Message);
    }

    [SkippableFact]
    public void NanInAWeight_IsNamedAtLoad()
    {
        var dev = TestDevices.Get("cpu");
        var dir = CopyEncoder();
        string shard = Path.Combine(dir, "model-00002-of-00002.safetensors");
        List<(string, long[], float[])> tensors;
        using (var f = SafeTensorsFile.Open(shard))
            tensors = f.Tensors.Select(t => (t.Name, t.Shape, f.ReadFloat32(t.Name))).ToList();
        tensors.Single(t => t.Item1 == "encoder.final_layer_norm.weight").Item3[3] = float.NaN;
        SafeTensorsWriter.Write(shard, tensors);
        var e = Assert.Throws<ModelException>(() => T5Encoder.Load(dev, dir));
        Assert.Contains("'encoder.final_layer_norm.weight' 1 of 32", e.Message);
    }

    [Fact]
    public void IntegerTensorLabelledAsAWeight_IsRefused()
    {
        var dir = CopyEncoder();
        string shard = Path.Combine(dir, "model-00001-of-00002.safetensors");
        var bytes = File.ReadAllBytes(shard);
        var text = System.Text.Encoding.Latin1.GetString(bytes);
        int at = text.IndexOf("\"dtype\":\"F32\"", StringComparison.Ordinal);   // the first tensor: shared.weight
        Assert.True(at > 0);
        System.Text.Encoding.ASCII.GetBytes("I32").CopyTo(bytes, at + 9);
        File.WriteAllBytes(shard, bytes);
        using var src = ShardedSafeTensors.Open(dir);
        var e = Assert.Throws<InvalidValueException>(() => src.Read("shared.weight", 416, 32));
        Assert.Contains("expected F32, BF16 or F16", e.Message);
    }

    [Theory]
    [InlineData("\"feed_forward_proj\": \"gated-gelu\"", "\"feed_forward_proj\": \"relu\"", "gated-gelu")]
    [InlineData("\"d_model\": 32", "\"d_model\": -3", "d_model")]
    [InlineData("{", "[", "JSON object")]
    public void BadConfig_IsRejectedWithExpectedAndFound(string from, string to, string named)
    {
        var dir = CopyEncoder();
        var cfg = Path.Combine(dir, "config.json");
        var text = File.ReadAllText(cfg);
        Assert.Contains(from, text);
        File.WriteAllText(cfg, text.Replace(from, to));
        var e = Assert.ThrowsAny<InputException>(() => T5Encoder.Probe(dir));
        Assert.Contains(named, e.Message);
        Assert.Contains("expected", e.Message);
    }

    [SkippableFact]
    public void TokenIdOutsideTheVocabulary_IsRejected()
    {
        var dev = TestDevices.Get("cpu");
        using var enc = T5Encoder.Load(dev, Folder);
        var e = Assert.Throws<InvalidValueException>(() => enc.Encode([5, 416], [1, 1], 1, 2));
        Assert.Contains("0..415", e.Message);
        Assert.Throws<InvalidValueException>(() => enc.Encode([5, 1], [0, 0], 1, 2)); // no real token at all
    }

    [SkippableFact]
    public void TooLittleMemory_IsRefusedBeforeAnyWeightIsRead()
    {
        var dev = TestDevices.Get("cpu");
        var cfg = T5Config.Xxl with { Layers = 1000 };             // 772 GB of fp32 weights: more than this machine
        var e = Assert.Throws<InvalidValueException>(() => new T5Encoder(dev, new CountingSource(new T5RandomWeights(cfg)), cfg));
        Assert.Contains("T5 encoder memory", e.Message);
        Assert.Contains("GiB free on", e.Message);
    }

    /// <summary>Fails the test if the encoder reads a weight (the memory check must come first).</summary>
    sealed class CountingSource(IWeightSource inner) : IWeightSource
    {
        public string Origin => inner.Origin;
        public IReadOnlyDictionary<string, string> Metadata => inner.Metadata;
        public bool Has(string key) => inner.Has(key);
        public long[] ShapeOf(string key) => inner.ShapeOf(key);
        public IEnumerable<string> Keys => inner.Keys;
        public float[] Read(string key, params long[] shape) => throw new Xunit.Sdk.XunitException($"read '{key}' before the memory check");
    }

    [Fact]
    public void XxlConfig_HasTheSpecParameterCount() =>
        Assert.Equal(4.76, T5Config.Xxl.Parameters / 1e9, 2);    // 4.76 B (shared/spec: fp32 ≈ 19 GB)

    static string CopyEncoder()
    {
        var dir = CliRunner.TempDir();
        foreach (var f in Directory.GetFiles(Path.Combine(Folder, "text_encoder"))) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)));
        return dir;
    }
}
