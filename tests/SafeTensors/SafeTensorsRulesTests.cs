// One test per rule of docs/formats.md: each builds a bad file by hand and checks that
// SafeTensorsFile.Open rejects it with a SafeTensorsException whose one-line message names the file,
// the tensor (when there is one) and what was expected vs found. Then round trips: writer → reader,
// hand-encoded F16/BF16/F64/I64/I32, scalars, zero-size tensors, metadata, unaligned old-style headers.

using System.Buffers.Binary;
using System.Text;
using BlockDance.Transformer.IO;
using Xunit;

namespace BlockDance.Tests.SafeTensors;

/// <summary>Builds safetensors files byte by byte, so tests can break any rule on purpose.</summary>
internal static class SafeTensorsBytes
{
    /// <summary>8-byte length + header (space-padded to a multiple of 8 unless pad is false) + data.</summary>
    public static byte[] Build(string headerJson, byte[] data, bool pad = true, ulong? lengthField = null) =>
        Build(Encoding.UTF8.GetBytes(headerJson), data, pad, lengthField);

    public static byte[] Build(byte[] header, byte[] data, bool pad = true, ulong? lengthField = null)
    {
        int headerLength = pad ? (header.Length + 7) / 8 * 8 : header.Length;
        var file = new byte[8 + headerLength + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(file, lengthField ?? (ulong)headerLength);
        header.CopyTo(file, 8);
        file.AsSpan(8 + header.Length, headerLength - header.Length).Fill((byte)' ');
        data.CopyTo(file, 8 + headerLength);
        return file;
    }

    public static byte[] F32(params float[] values)
    {
        var bytes = new byte[4 * values.Length];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(bytes.AsSpan(4 * i), values[i]);
        return bytes;
    }

    public static byte[] U16(params ushort[] values)
    {
        var bytes = new byte[2 * values.Length];
        for (int i = 0; i < values.Length; i++) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(2 * i), values[i]);
        return bytes;
    }

    /// <summary>One tensor entry: "name":{"dtype":..,"shape":[..],"data_offsets":[b,e]}.</summary>
    public static string Entry(string name, string dtype, string shape, long begin, long end) =>
        $"\"{name}\":{{\"dtype\":\"{dtype}\",\"shape\":{shape},\"data_offsets\":[{begin},{end}]}}";
}

/// <summary>A temporary folder per test class for hand-built files.</summary>
public abstract class SafeTensorsTempFiles : IDisposable
{
    protected readonly string _dir = Directory.CreateTempSubdirectory("blockdance-safetensors-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    protected string WriteFile(string fileName, byte[] bytes)
    {
        string path = Path.Combine(_dir, fileName);
        File.WriteAllBytes(path, bytes);
        return path;
    }
}

public sealed class SafeTensorsRulesTests : SafeTensorsTempFiles
{

    /// <summary>Open must throw SafeTensorsException, one line, naming the file and every keyword.</summary>
    private SafeTensorsException AssertRejected(string fileName, byte[] bytes, params string[] keywords)
    {
        string path = WriteFile(fileName, bytes);
        var ex = Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(path).Dispose());
        AssertMessage(ex, fileName, keywords);
        return ex;
    }

    private static void AssertMessage(SafeTensorsException ex, string fileName, params string[] keywords)
    {
        Assert.Contains(fileName, ex.Message);
        foreach (string k in keywords) Assert.Contains(k, ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    private static string Header(params string[] entries) => "{" + string.Join(",", entries) + "}";

    private static readonly string ValidEntry = SafeTensorsBytes.Entry("w", "F32", "[2]", 0, 8);
    private static readonly byte[] TwoFloats = SafeTensorsBytes.F32(1f, 2f);

    // ---- rule: file shorter than 8 bytes → header too small ----

    [Theory]
    [InlineData(0)]
    [InlineData(7)]
    public void FileShorterThan8Bytes_IsHeaderTooSmall(int length) =>
        AssertRejected("short.safetensors", new byte[length], "header too small", $"{length} bytes", "expected at least 8");

    // ---- rule: N > 100,000,000 → header too large ----

    [Theory]
    [InlineData(100_000_001UL)]
    [InlineData(ulong.MaxValue)]
    [InlineData(1UL << 63)]
    public void HeaderLengthAbove100MB_IsHeaderTooLarge(ulong n) =>
        AssertRejected("big-header.safetensors", SafeTensorsBytes.Build(Header(ValidEntry), TwoFloats, lengthField: n),
            "header too large", n.ToString(), "expected at most 100000000");

    // ---- rule: 8 + N beyond the end of the file → invalid header length ----

    [Fact]
    public void HeaderLengthPastFileEnd_IsInvalidHeaderLength()
    {
        byte[] valid = SafeTensorsBytes.Build(Header(ValidEntry), TwoFloats);
        ulong n = (ulong)(valid.Length - 8 + 1);
        BinaryPrimitives.WriteUInt64LittleEndian(valid, n);
        AssertRejected("long-header.safetensors", valid, "invalid header length", $"{valid.Length} bytes");
    }

    // ---- rule: header not valid UTF-8 → invalid header ----

    [Fact]
    public void HeaderNotUtf8_IsInvalidHeader()
    {
        byte[] header = Encoding.UTF8.GetBytes(Header(ValidEntry));
        header[2] = 0xFF; // inside the name "w"
        AssertRejected("latin1.safetensors", SafeTensorsBytes.Build(header, TwoFloats), "invalid header", "UTF-8");
    }

    [Fact]
    public void HeaderWithLoneSurrogateEscape_IsInvalidHeader() =>
        AssertRejected("surrogate.safetensors",
            SafeTensorsBytes.Build(Header(SafeTensorsBytes.Entry("w\\ud800", "F32", "[2]", 0, 8)), TwoFloats), "invalid header");

    // ---- rule: header must start with '{' and be one JSON object ----

    [Theory]
    [InlineData(" {}")]          // leading space: the padding goes after, never before
    [InlineData("[1, 2]")]
    [InlineData("\"w\"")]
    [InlineData("")]             // N = 0
    public void HeaderNotStartingWithBrace_IsInvalidHeader(string header) =>
        AssertRejected("not-object.safetensors", SafeTensorsBytes.Build(header, [], pad: false), "invalid header", "'{'", "found");

    [Theory]
    [InlineData("{\"w\":")]                                  // cut short
    [InlineData("{} trailing")]                              // a second value after the object
    [InlineData("{\"__metadata__\":{\"a\":\"b\",}}")]      // trailing comma
    [InlineData("{/* comment */}")]
    [InlineData("{'w': 1}")]                                 // single quotes
    [InlineData("{}\0\0\0\0")]                               // NUL padding instead of spaces
    public void HeaderNotValidJson_IsInvalidHeader(string header) =>
        AssertRejected("bad-json.safetensors", SafeTensorsBytes.Build(header, [], pad: false), "invalid header", "expected");

    // ---- rule: each entry is exactly {dtype: string, shape: [ints ≥ 0], data_offsets: [2 ints ≥ 0]} ----

    [Theory]
    [InlineData("{\"shape\":[2],\"data_offsets\":[0,8]}", "no 'dtype'")]
    [InlineData("{\"dtype\":\"F32\",\"data_offsets\":[0,8]}", "no 'shape'")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[2]}", "no 'data_offsets'")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8],\"extra\":1}", "found field 'extra'")]
    [InlineData("{\"dtype\":\"F32\",\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}", "'dtype' appears twice")]
    [InlineData("{\"dtype\":32,\"shape\":[2],\"data_offsets\":[0,8]}", "found a number")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[-2],\"data_offsets\":[0,8]}", "found a number '-2'")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[2.0],\"data_offsets\":[0,8]}", "found a number '2.0'")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[\"2\"],\"data_offsets\":[0,8]}", "found a string")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[18446744073709551616],\"data_offsets\":[0,8]}", "non-negative 64-bit")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":2,\"data_offsets\":[0,8]}", "found a number")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4,8]}", "expected 2 integers")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[8]}", "expected 2 integers")]
    [InlineData("{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[-1,8]}", "found a number '-1'")]
    [InlineData("[\"F32\",[2],[0,8]]", "found an array")]
    [InlineData("null", "found null")]
    public void EntryOfWrongShape_IsInvalid(string entry, string found) =>
        AssertRejected("bad-entry.safetensors", SafeTensorsBytes.Build($"{{\"w\":{entry}}}", TwoFloats),
            "tensor 'w'", "expected", found);

    [Theory]
    [InlineData("F31")]
    [InlineData("f32")]   // dtype names are case-sensitive
    [InlineData("")]
    public void UnknownDtype_IsInvalid(string dtype) =>
        AssertRejected("dtype.safetensors", SafeTensorsBytes.Build(Header(SafeTensorsBytes.Entry("w", dtype, "[2]", 0, 8)), TwoFloats),
            "tensor 'w'", "unknown dtype", $"'{dtype}'", "expected one of");

    // ---- rule: no duplicate tensor names ----

    [Fact]
    public void DuplicateTensorName_IsInvalid() =>
        AssertRejected("dup.safetensors",
            SafeTensorsBytes.Build(Header(SafeTensorsBytes.Entry("w", "F32", "[1]", 0, 4), SafeTensorsBytes.Entry("w", "F32", "[1]", 4, 8)), TwoFloats),
            "tensor 'w'", "duplicate", "found it twice");

    [Fact]
    public void DuplicateNameSpelledWithEscape_IsInvalid() =>
        AssertRejected("dup-escaped.safetensors",
            SafeTensorsBytes.Build(Header(SafeTensorsBytes.Entry("w", "F32", "[1]", 0, 4), SafeTensorsBytes.Entry("\\u0077", "F32", "[1]", 4, 8)), TwoFloats),
            "tensor 'w'", "duplicate");

    // ---- rule: __metadata__ maps strings to strings ----

    [Theory]
    [InlineData("{\"k\":1}", "a string value for key 'k'")]
    [InlineData("{\"k\":{\"x\":\"y\"}}", "a string value for key 'k'")]
    [InlineData("{\"k\":null}", "found null")]
    [InlineData("{\"k\":\"a\",\"k\":\"b\"}", "duplicate key 'k'")]
    [InlineData("[\"k\"]", "an object mapping strings to strings")]
    [InlineData("\"k\"", "an object mapping strings to strings")]
    public void MetadataNotStringToString_IsInvalid(string metadata, string detail) =>
        AssertRejected("meta.safetensors", SafeTensorsBytes.Build($"{{\"__metadata__\":{metadata},{ValidEntry}}}", TwoFloats),
            "__metadata__", detail);

    [Fact]
    public void DuplicateMetadataEntry_IsInvalid() =>
        AssertRejected("meta-twice.safetensors",
            SafeTensorsBytes.Build($"{{\"__metadata__\":{{}},\"__metadata__\":{{}},{ValidEntry}}}", TwoFloats), "__metadata__", "duplicate");

    // ---- rule: sorted by offsets, tensors tile the buffer exactly → invalid offset ----

    [Fact]
    public void FirstTensorNotAtZero_IsInvalidOffset() =>
        AssertRejected("gap-start.safetensors",
            SafeTensorsBytes.Build(Header(SafeTensorsBytes.Entry("w", "F32", "[1]", 4, 8)), TwoFloats),
            "tensor 'w'", "invalid offset", "begin at 4, expected 0");

    [Fact]
    public void HoleBetweenTensors_IsInvalidOffset() =>
        AssertRejected("hole.safetensors",
            SafeTensorsBytes.Build(Header(SafeTensorsBytes.Entry("a", "F32", "[1]", 0, 4), SafeTensorsBytes.Entry("b", "F32", "[1]", 8, 12)), new byte[12]),
            "tensor 'b'", "invalid offset", "begin at 8, expected 4");

    [Fact]
    public void OverlappingTensors_AreInvalidOffset() =>
        AssertRejected("overlap.safetensors",
            SafeTensorsBytes.Build(Header(SafeTensorsBytes.Entry("a", "F32", "[2]", 0, 8), SafeTensorsBytes.Entry("b", "F32", "[2]", 4, 12)), new byte[12]),
            "tensor 'b'", "invalid offset", "begin at 4, expected 8");

    [Fact]
    public void EndBeforeBegin_IsInvalidOffset() =>
        AssertRejected("backwards.safetensors",
            SafeTensorsBytes.Build(Header(SafeTensorsBytes.Entry("a", "F32", "[1]", 0, 4), SafeTensorsBytes.Entry("b", "F32", "[1]", 4, 0)), TwoFloats),
            "tensor 'b'", "invalid offset", "expected end ≥ begin");

    // ---- rule: end − begin == numel × dtype size, with overflow checks → invalid tensor info ----

    [Fact]
    public void SpanNotNumelTimesDtypeSize_IsInvalidTensorInfo()
    {
        const string name = "blocks.0.attn.qkv.weight";
        var ex = AssertRejected("model.safetensors",
            SafeTensorsBytes.Build(Header(SafeTensorsBytes.Entry(name, "F32", "[864]", 0, 100)), new byte[100]));
        Assert.EndsWith($"model.safetensors: tensor '{name}': data_offsets [0, 100] span 100 bytes, expected 3456 = numel 864 × 4 (F32)", ex.Message);
        Assert.Equal(name, ex.TensorName);
    }

    [Theory]
    [InlineData("[4294967296, 4294967296]", "F32")]          // numel 2^64 overflows
    [InlineData("[9223372036854775807, 2]", "U8")]           // numel overflows
    [InlineData("[4611686018427387904]", "F16")]             // numel 2^62 fits, × 2 bytes overflows
    public void ShapeWhoseByteSizeOverflows_IsInvalidTensorInfo(string shape, string dtype) =>
        AssertRejected("overflow.safetensors", SafeTensorsBytes.Build(Header(SafeTensorsBytes.Entry("w", dtype, shape, 0, 8)), TwoFloats),
            "tensor 'w'", "invalid tensor info", "overflows");

    [Fact]
    public void SubByteDtypeWithOddBitCount_IsInvalidTensorInfo() =>
        AssertRejected("f4.safetensors", SafeTensorsBytes.Build(Header(SafeTensorsBytes.Entry("w", "F4", "[3]", 0, 2)), new byte[2]),
            "tensor 'w'", "invalid tensor info", "not a whole number of bytes");

    // ---- rule: last end + 8 + N == file length → incomplete buffer ----

    [Fact]
    public void DataShorterThanOffsets_IsIncompleteBuffer() =>
        AssertRejected("truncated.safetensors", SafeTensorsBytes.Build(Header(ValidEntry), SafeTensorsBytes.F32(1f)),
            "incomplete buffer", "tensors cover 8 data bytes, found 4");

    [Fact]
    public void TrailingBytesAfterLastTensor_IsIncompleteBuffer() =>
        AssertRejected("padded.safetensors", SafeTensorsBytes.Build(Header(ValidEntry), SafeTensorsBytes.F32(1f, 2f, 3f)),
            "incomplete buffer", "tensors cover 8 data bytes, found 12");

    // ---- I/O and API errors ----

    [Fact]
    public void MissingFile_ThrowsSafeTensorsExceptionWrappingIOException()
    {
        string path = Path.Combine(_dir, "absent.safetensors");
        var ex = Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(path));
        AssertMessage(ex, "absent.safetensors", "cannot open");
        Assert.IsAssignableFrom<IOException>(ex.InnerException);
    }

    [Fact]
    public void DirectoryInsteadOfFile_ThrowsSafeTensorsException()
    {
        var ex = Assert.Throws<SafeTensorsException>(() => SafeTensorsFile.Open(_dir));
        Assert.Contains(Path.GetFileName(_dir), ex.Message);
    }

    [Fact]
    public void GetMissingTensor_NamesTensorAndFile()
    {
        using var file = SafeTensorsFile.Open(WriteFile("one.safetensors", SafeTensorsBytes.Build(Header(ValidEntry), TwoFloats)));
        Assert.False(file.Contains("x_embedder.proj.weight"));
        var ex = Assert.Throws<SafeTensorsException>(() => file.Get("x_embedder.proj.weight"));
        AssertMessage(ex, "one.safetensors", "tensor 'x_embedder.proj.weight'", "not found", "found 1 other tensors", "'w'");
    }

    [Fact]
    public void ReadWithWrongShape_SaysExpectedAndFound()
    {
        string header = Header(SafeTensorsBytes.Entry("w", "F32", "[2, 3]", 0, 24));
        using var file = SafeTensorsFile.Open(WriteFile("shape.safetensors", SafeTensorsBytes.Build(header, new byte[24])));
        var ex = Assert.Throws<SafeTensorsException>(() => file.ReadFloat32("w", 3, 2));
        AssertMessage(ex, "shape.safetensors", "tensor 'w': expected shape [3, 2], found [2, 3]");
        Assert.Equal(6, file.ReadFloat32("w", 2, 3).Length);
    }

    [Fact]
    public void ReadOfNonFloatDtype_SaysWhichDtypesWork()
    {
        // U8 and BOOL read as float since PixArt's masks (0/1); I8 is still refused
        string header = Header(SafeTensorsBytes.Entry("mask", "I8", "[4]", 0, 4));
        using var file = SafeTensorsFile.Open(WriteFile("i8.safetensors", SafeTensorsBytes.Build(header, new byte[4])));
        var ex = Assert.Throws<SafeTensorsException>(() => file.ReadFloat32("mask"));
        AssertMessage(ex, "i8.safetensors", "tensor 'mask'", "I8", "expected one of F32, F16, BF16");
    }

    [Fact]
    public void ControlCharactersInNames_StayOnOneLine()
    {
        var ex = AssertRejected("newline.safetensors",
            SafeTensorsBytes.Build(Header(SafeTensorsBytes.Entry("a\\nb", "F32", "[1]", 4, 8)), TwoFloats), "tensor 'a\\u000ab'");
        Assert.Equal("a\nb", ex.TensorName);
    }
}

public sealed class SafeTensorsRoundTripTests : SafeTensorsTempFiles
{

    private static string Header(params string[] entries) => "{" + string.Join(",", entries) + "}";

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    public void WriterThenReader_ReturnsSameTensorsAndMetadata(int seed)
    {
        var rng = new Random(seed);
        float[] RandomValues(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var tensors = new List<(string name, long[] shape, float[] data)>
        {
            ("blocks.0.attn.qkv.weight", [6, 4], RandomValues(24)),
            ("blocks.0.attn.qkv.bias", [6], RandomValues(6)),
            ("t_embedder.scale", [], [float.NaN]),          // scalar
            ("pos_embed", [1, 0, 8], []),                   // zero-size
            ("y_embedder.embedding_table.weight", [3, 5], RandomValues(15)),
            ("naïve+name ü", [2], [float.PositiveInfinity, -0f]),
        };
        var metadata = new Dictionary<string, string> { ["format"] = "pt", ["model"] = "DiT-XL/2" };
        string path = Path.Combine(_dir, "roundtrip.safetensors");

        SafeTensorsWriter.Write(path, tensors, metadata);

        byte[] raw = File.ReadAllBytes(path);
        ulong n = BinaryPrimitives.ReadUInt64LittleEndian(raw);
        Assert.Equal(0UL, n % 8); // header padded so the data buffer starts 8-byte aligned
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(metadata, file.Metadata);
        Assert.Equal(tensors.Select(t => t.name), file.Tensors.Select(t => t.Name)); // data order = given order
        foreach (var (name, shape, data) in tensors)
        {
            TensorInfo info = file.Get(name);
            Assert.Equal("F32", info.DType);
            Assert.Equal(shape, info.Shape);
            Assert.Equal(data.Length, info.Numel);
            float[] read = file.ReadFloat32(name, shape);
            Assert.Equal(data.Select(BitConverter.SingleToInt32Bits), read.Select(BitConverter.SingleToInt32Bits));
        }
        Assert.Empty(Directory.GetFiles(_dir, "*.tmp-*"));
    }

    [Fact]
    public void Writer_ReplacesExistingFile_AndLeavesNothingBehindOnFailure()
    {
        string path = Path.Combine(_dir, "model.safetensors");
        SafeTensorsWriter.Write(path, [("w", [2], [1f, 2f])]);
        byte[] before = File.ReadAllBytes(path);

        // shape says 3 elements, data has 2: rejected before the file is touched
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(path, [("w", [3], [5f, 6f])]));
        Assert.Throws<ArgumentException>(() => SafeTensorsWriter.Write(path, [("w", [1], [5f]), ("w", [1], [6f])]));
        Assert.Throws<InvalidOperationException>(() => SafeTensorsWriter.Write(path, FailingMidway()));
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFiles(_dir));

        SafeTensorsWriter.Write(path, [("w", [3], [5f, 6f, 7f])]);
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal([5f, 6f, 7f], file.ReadFloat32("w", 3));
        Assert.Empty(file.Metadata);
    }

    private static IEnumerable<(string, long[], float[])> FailingMidway()
    {
        yield return ("a", [1], [1f]);
        throw new InvalidOperationException("producer failed");
    }

    [Fact]
    public void F16_DecodesToFloat32()
    {
        // 1, −2, 0.5, 65504 (max half), 2^−24 (smallest subnormal), +inf, −0
        ushort[] bits = [0x3C00, 0xC000, 0x3800, 0x7BFF, 0x0001, 0x7C00, 0x8000];
        float[] expected = [1f, -2f, 0.5f, 65504f, MathF.Pow(2, -24), float.PositiveInfinity, -0f];
        string path = WriteFile("half.safetensors",
            SafeTensorsBytes.Build(Header(SafeTensorsBytes.Entry("h", "F16", "[7]", 0, 14)), SafeTensorsBytes.U16(bits)));
        using var file = SafeTensorsFile.Open(path);
        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), file.ReadFloat32("h", 7).Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public void BF16_DecodesToFloat32()
    {
        // bf16 is the upper 16 bits of a float32: 1, −2, 3.140625, 1e38-ish (0x7E96), smallest normal, NaN
        ushort[] bits = [0x3F80, 0xC000, 0x4049, 0x7E96, 0x0080, 0x7FC0];
        float[] expected = bits.Select(b => BitConverter.Int32BitsToSingle(b << 16)).ToArray();
        Assert.Equal(3.140625f, expected[2]);
        string path = WriteFile("bf16.safetensors",
            SafeTensorsBytes.Build(Header(SafeTensorsBytes.Entry("b", "BF16", "[2, 3]", 0, 12)), SafeTensorsBytes.U16(bits)));
        using var file = SafeTensorsFile.Open(path);
        float[] read = file.ReadFloat32("b", 2, 3);
        Assert.Equal(expected.Select(BitConverter.SingleToInt32Bits), read.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal([1f, -2f], read[..2]);
    }

    [Fact]
    public void F64_I64_I32_ConvertToFloat32()
    {
        var data = new byte[8 * 2 + 8 * 2 + 4 * 2];
        BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(0), 0.25);
        BinaryPrimitives.WriteDoubleLittleEndian(data.AsSpan(8), -1e10);
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(16), 207);
        BinaryPrimitives.WriteInt64LittleEndian(data.AsSpan(24), -3);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(32), 999);
        BinaryPrimitives.WriteInt32LittleEndian(data.AsSpan(36), int.MinValue);
        string header = Header(
            SafeTensorsBytes.Entry("d", "F64", "[2]", 0, 16),
            SafeTensorsBytes.Entry("labels", "I64", "[2]", 16, 32),
            SafeTensorsBytes.Entry("i", "I32", "[2]", 32, 40));
        using var file = SafeTensorsFile.Open(WriteFile("ints.safetensors", SafeTensorsBytes.Build(header, data)));
        Assert.Equal([0.25f, -1e10f], file.ReadFloat32("d"));
        Assert.Equal([207f, -3f], file.ReadFloat32("labels"));
        Assert.Equal([999f, int.MinValue], file.ReadFloat32("i"));
    }

    [Fact]
    public void ScalarShape_HasOneElement()
    {
        string path = WriteFile("scalar.safetensors",
            SafeTensorsBytes.Build(Header(SafeTensorsBytes.Entry("s", "F32", "[]", 0, 4)), SafeTensorsBytes.F32(42f)));
        using var file = SafeTensorsFile.Open(path);
        Assert.Empty(file.Get("s").Shape);
        Assert.Equal(1, file.Get("s").Numel);
        Assert.Equal([42f], file.ReadFloat32("s", []));
    }

    [Fact]
    public void ZeroSizeTensors_AreAllowed_EvenWithHugeOtherDims()
    {
        // A zero dimension makes numel 0 whatever the others are: no overflow, no huge allocation.
        string header = Header(
            SafeTensorsBytes.Entry("a", "F32", "[1]", 0, 4),
            SafeTensorsBytes.Entry("empty", "F32", "[0, 9223372036854775807]", 4, 4),
            SafeTensorsBytes.Entry("b", "BF16", "[2]", 4, 8));
        using var file = SafeTensorsFile.Open(WriteFile("zero.safetensors", SafeTensorsBytes.Build(header, SafeTensorsBytes.F32(1f, 2f))));
        Assert.Equal(["a", "empty", "b"], file.Tensors.Select(t => t.Name));
        Assert.Equal(0, file.Get("empty").Numel);
        Assert.Empty(file.ReadFloat32("empty"));
        Assert.Equal([1f], file.ReadFloat32("a"));
    }

    [Fact]
    public void Metadata_IsRead_AndEntriesMayComeInAnyOrder()
    {
        string header = "{" + SafeTensorsBytes.Entry("second", "F32", "[1]", 4, 8) +
            ",\"__metadata__\":{\"format\":\"pt\",\"note\":\"caf\\u00e9 \\\"quoted\\\"\"}," +
            SafeTensorsBytes.Entry("first", "F32", "[1]", 0, 4) + "}";
        using var file = SafeTensorsFile.Open(WriteFile("meta.safetensors", SafeTensorsBytes.Build(header, SafeTensorsBytes.F32(1f, 2f))));
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal("café \"quoted\"", file.Metadata["note"]);
        Assert.Equal(["first", "second"], file.Tensors.Select(t => t.Name));
        Assert.Equal([2f], file.ReadFloat32("second"));
    }

    [Fact]
    public void UnalignedOldStyleHeader_IsReadByCopying()
    {
        // No padding: data starts at an odd byte, so floats are not 4-byte aligned in the file.
        string header = Header(SafeTensorsBytes.Entry("w", "F32", "[3]", 0, 12), SafeTensorsBytes.Entry("h", "F16", "[1]", 12, 14));
        if (header.Length % 2 == 0) header += " ";
        byte[] data = [.. SafeTensorsBytes.F32(1.5f, -2.25f, 1e-30f), .. SafeTensorsBytes.U16(0x3555)]; // 0x3555 ≈ 0.333
        byte[] bytes = SafeTensorsBytes.Build(header, data, pad: false);
        Assert.NotEqual(0, (8 + header.Length) % 4);
        using var file = SafeTensorsFile.Open(WriteFile("old.safetensors", bytes));
        Assert.Equal([1.5f, -2.25f, 1e-30f], file.ReadFloat32("w", 3));
        Assert.Equal((float)BitConverter.UInt16BitsToHalf(0x3555), file.ReadFloat32("h")[0]);
    }

    [Fact]
    public void LargeTensor_IsReadAcrossChunks()
    {
        // More elements than one 256 Ki read chunk, in F32 (direct copy) and BF16 (staged decode).
        const int n = (1 << 18) + 1000;
        float[] values = Enumerable.Range(0, n).Select(i => (float)(i % 256 - 128)).ToArray(); // |x| ≤ 256: exact in bf16
        var bf16 = new ushort[n];
        for (int i = 0; i < n; i++) bf16[i] = (ushort)(BitConverter.SingleToInt32Bits(values[i]) >> 16);
        string header = Header(SafeTensorsBytes.Entry("f", "F32", $"[{n}]", 0, 4L * n), SafeTensorsBytes.Entry("b", "BF16", $"[{n}]", 4L * n, 6L * n));
        using var file = SafeTensorsFile.Open(WriteFile("large.safetensors",
            SafeTensorsBytes.Build(header, [.. SafeTensorsBytes.F32(values), .. SafeTensorsBytes.U16(bf16)])));
        Assert.Equal(values, file.ReadFloat32("f"));
        Assert.Equal(values, file.ReadFloat32("b"));
    }
}
