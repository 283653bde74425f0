// SafeTensorsFile: a validating reader for the safetensors format (the rules: docs/formats.md).
//
// Layout:  [u64 N, little-endian] [N bytes UTF-8 JSON header] [data buffer]
// Header:  {"__metadata__": {"k": "v", ...},
//           "name": {"dtype": "F32", "shape": [d0, d1, ...], "data_offsets": [begin, end]}, ...}
//          offsets are relative to the data buffer, which starts at file byte 8 + N.
//
// Open() checks every rule of the reference reader before it returns, so a file that opens is
// structurally sound: tensors tile the data buffer exactly and every byte length matches
// numel × dtype size. Tensor data is then read on demand, one tensor at a time, by positional
// reads (RandomAccess.Read) into managed arrays — never by reinterpreting file bytes in place,
// because files written before header padding existed have unaligned data.
//
// Allocation is bounded by the file: the header length is checked against the file length before the
// header buffer is allocated, and a tensor's float[] is allocated only after its byte range has been
// validated to lie inside the file.

using System.Buffers;
using System.Buffers.Binary;
using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Text.Json;
using System.Text.Unicode;
using Microsoft.Win32.SafeHandles;

[assembly: InternalsVisibleTo("BlockDance.Tests")]

namespace BlockDance.Transformer.IO;

/// <summary>One tensor's header entry. Begin/End are byte offsets relative to the data buffer.</summary>
public sealed record TensorInfo(string Name, string DType, long[] Shape, long Begin, long End)
{
    /// <summary>Number of elements: the product of the shape (1 for a scalar, shape []).</summary>
    public long Numel => SafeTensorsFile.CheckedNumel(Shape);

    public long ByteLength => End - Begin;

    public override string ToString() => $"{Name}: {DType} {SafeTensorsFile.FormatShape(Shape)} @ [{Begin}, {End})";
}

public sealed class SafeTensorsFile : IDisposable
{
    /// <summary>The reference reader refuses headers above 100 MB (rule "header too large").</summary>
    public const long MaxHeaderBytes = 100_000_000;

    /// <summary>The u64 header-length prefix.</summary>
    private const int PrefixBytes = 8;

    private const string MetadataKey = "__metadata__";

    /// <summary>Element size in bits of every dtype the format defines (sub-byte ones included).</summary>
    private static readonly Dictionary<string, int> DTypeBits = new(StringComparer.Ordinal)
    {
        ["BOOL"] = 8, ["U8"] = 8, ["I8"] = 8, ["F8_E5M2"] = 8, ["F8_E4M3"] = 8, ["F8_E8M0"] = 8,
        ["I16"] = 16, ["U16"] = 16, ["F16"] = 16, ["BF16"] = 16,
        ["I32"] = 32, ["U32"] = 32, ["F32"] = 32,
        ["I64"] = 64, ["U64"] = 64, ["F64"] = 64, ["C64"] = 64,
        ["F4"] = 4, ["F6_E2M3"] = 6, ["F6_E3M2"] = 6,
    };

    private readonly ByteSource _source;
    private readonly long _dataStart; // file offset of the data buffer: 8 + N
    private readonly Dictionary<string, TensorInfo> _byName;

    /// <summary>The file as it was named to <see cref="Open"/>.</summary>
    public string Path { get; }

    /// <summary>The "__metadata__" entry; empty when the file has none.</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>All tensors, in the order their data lies in the file.</summary>
    public IReadOnlyList<TensorInfo> Tensors { get; }

    private SafeTensorsFile(ByteSource source, string path, long dataStart,
        Dictionary<string, string> metadata, List<TensorInfo> tensorsInDataOrder)
    {
        _source = source;
        _dataStart = dataStart;
        Path = path;
        Metadata = metadata.AsReadOnly();
        Tensors = tensorsInDataOrder.AsReadOnly();
        _byName = tensorsInDataOrder.ToDictionary(t => t.Name, StringComparer.Ordinal);
    }

    /// <summary>Opens and fully validates a file; throws <see cref="SafeTensorsException"/> if it is bad.</summary>
    public static SafeTensorsFile Open(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (FileKind.Of(path) != PathKind.Missing)   // a missing file: the open below names it (with the IOException inside)
            FileKind.RequireRegular(path, "safetensors file");   // asked before opening: a FIFO would block, /dev/zero never ends
        ByteSource source;
        SafeFileHandle? handle = null;
        try
        {
            // FileShare.Delete lets a writer atomically replace the file while we hold it open.
            handle = File.OpenHandle(path, FileMode.Open, FileAccess.Read,
                FileShare.Read | FileShare.Delete, FileOptions.RandomAccess);
            source = new FileSource(handle);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or NotSupportedException)
        {
            handle?.Dispose();
            throw new SafeTensorsException(path, null, $"cannot open the file: {ex.Message}", ex);
        }
        return Validate(source, path);
    }

    /// <summary>
    /// Opens an in-memory copy of a file, through the same validation as <see cref="Open"/>
    /// (the fuzz tests use it to avoid thousands of disk writes).
    /// </summary>
    internal static SafeTensorsFile OpenBytes(byte[] data, string displayName)
    {
        ArgumentNullException.ThrowIfNull(data);
        return Validate(new MemorySource(data), displayName);
    }

    public bool Contains(string name) => _byName.ContainsKey(name);

    public TensorInfo Get(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        if (_byName.TryGetValue(name, out var info)) return info;
        string some = string.Join(", ", Tensors.Take(3).Select(t => SafeTensorsException.Quote(t.Name)));
        throw new SafeTensorsException(Path, name,
            $"not found; expected a tensor of that name, found {Tensors.Count} other tensors" +
            (Tensors.Count > 0 ? $" (e.g. {some})" : "") + " — check the checkpoint matches the model config");
    }

    /// <summary>Reads a tensor as float32, after checking that its shape is <paramref name="expectedShape"/>.</summary>
    /// <summary>Reads a tensor of real values (noise, statistics, features): a float dtype is required, so integer or bool
    /// tensors (labels, masks, indices) are refused rather than converted.</summary>
    public float[] ReadFloatValues(string name)
    {
        var dtype = Get(name).DType;
        if (dtype is not ("F32" or "F16" or "BF16" or "F64"))
            throw new SafeTensorsException(Path, name, $"expected a float dtype (F32, F16, BF16, F64) for values, found {dtype}");
        return ReadFloat32(name);
    }

    public float[] ReadFloat32(string name, params long[] expectedShape)
    {
        ArgumentNullException.ThrowIfNull(expectedShape);
        TensorInfo info = Get(name);
        if (!info.Shape.AsSpan().SequenceEqual(expectedShape))
            throw new SafeTensorsException(Path, name,
                $"expected shape {FormatShape(expectedShape)}, found {FormatShape(info.Shape)}");
        return ReadFloat32(name);
    }

    /// <summary>
    /// Reads a tensor and converts it to float32. F32, F16 and BF16 are the weight dtypes;
    /// F64, I64, I32, BOOL and U8 are converted too (class labels, timesteps, masks). Other dtypes throw.
    /// Reads are positional, so several threads may read different tensors at once.
    /// </summary>
    public float[] ReadFloat32(string name)
    {
        TensorInfo info = Get(name);
        int elementBytes = info.DType switch
        {
            "F32" or "I32" => 4,
            "F16" or "BF16" => 2,
            "F64" or "I64" => 8,
            "BOOL" or "U8" => 1,
            _ => throw new SafeTensorsException(Path, name,
                $"dtype {info.DType} cannot be read as float32; expected one of F32, F16, BF16, F64, I64, I32, BOOL, U8"),
        };
        long numel = info.Numel; // validated at Open: numel × elementBytes == End − Begin ≤ file length
        if (numel > Array.MaxLength)
            throw new SafeTensorsException(Path, name,
                $"{numel} elements, expected at most {Array.MaxLength} to fit one float[]");

        var result = new float[numel];
        // Staging chunk: 256 Ki elements (≤ 2 MiB for 8-byte dtypes) bounds the extra memory per read.
        const int ChunkElements = 1 << 18;
        byte[]? staging = null;
        try
        {
            long done = 0;
            while (done < numel)
            {
                int count = (int)Math.Min(ChunkElements, numel - done);
                Span<float> destination = result.AsSpan((int)done, count);
                long fileOffset = _dataStart + info.Begin + done * elementBytes;
                if (info.DType == "F32" && BitConverter.IsLittleEndian)
                {
                    // Copy the bytes straight into the (aligned) float[]: a copy, not an in-place view.
                    ReadExactly(fileOffset, MemoryMarshal.AsBytes(destination), name);
                }
                else
                {
                    staging ??= ArrayPool<byte>.Shared.Rent(ChunkElements * elementBytes);
                    Span<byte> bytes = staging.AsSpan(0, count * elementBytes);
                    ReadExactly(fileOffset, bytes, name);
                    Decode(info.DType, bytes, destination);
                }
                done += count;
            }
        }
        finally
        {
            if (staging is not null) ArrayPool<byte>.Shared.Return(staging);
        }
        return result;
    }

    public void Dispose() => _source.Dispose();

    // ---------------------------------------------------------------------------------------------
    // Validation: one code path for files and in-memory copies.
    // ---------------------------------------------------------------------------------------------

    private static SafeTensorsFile Validate(ByteSource source, string file)
    {
        try
        {
            long length = source.Length;
            if (length < PrefixBytes)
                throw new SafeTensorsException(file, null,
                    $"header too small: file is {length} bytes, expected at least 8 (the u64 header length)");

            Span<byte> prefix = stackalloc byte[PrefixBytes];
            ReadExactly(source, file, 0, prefix, null);
            ulong n = BinaryPrimitives.ReadUInt64LittleEndian(prefix);
            if (n > MaxHeaderBytes)
                throw new SafeTensorsException(file, null,
                    $"header too large: header length field is {n} bytes, expected at most {MaxHeaderBytes}");
            if ((long)n > length - PrefixBytes)
                throw new SafeTensorsException(file, null,
                    $"invalid header length: 8 + {n} header bytes end at byte {PrefixBytes + (long)n}, " +
                    $"found a file of {length} bytes (truncated download?)");

            // Safe to allocate: n ≤ 100 MB and n ≤ file length.
            var header = new byte[(int)n];
            ReadExactly(source, file, PrefixBytes, header, null);
            var (metadata, tensors) = ParseHeader(header, file);

            long dataStart = PrefixBytes + (long)n;
            List<TensorInfo> inDataOrder = ValidateLayout(tensors, file, dataStart, length);
            return new SafeTensorsFile(source, file, dataStart, metadata, inDataOrder);
        }
        catch
        {
            source.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Rules "invalid offset", "invalid tensor info" and "incomplete buffer": sorted by offsets, the
    /// tensors must tile the data buffer exactly, each spanning numel × dtype size bytes, and the last
    /// one must end at the end of the file.
    /// </summary>
    private static List<TensorInfo> ValidateLayout(List<TensorInfo> tensors, string file, long dataStart, long length)
    {
        var sorted = tensors.OrderBy(t => t.Begin).ThenBy(t => t.End).ThenBy(t => t.Name, StringComparer.Ordinal).ToList();
        long expectedBegin = 0;
        foreach (TensorInfo t in sorted)
        {
            string offsets = $"data_offsets [{t.Begin}, {t.End}]";
            if (t.Begin != expectedBegin)
                throw new SafeTensorsException(file, t.Name,
                    $"invalid offset: {offsets} begin at {t.Begin}, expected {expectedBegin} " +
                    (expectedBegin == 0 ? "(the first tensor starts the data buffer)" : "(where the previous tensor ends; no holes or overlaps)"));
            if (t.End < t.Begin)
                throw new SafeTensorsException(file, t.Name,
                    $"invalid offset: {offsets} end before they begin, expected end ≥ begin");

            long expectedBytes = ByteLength(t, file, out string sizeFormula);
            if (t.End - t.Begin != expectedBytes)
                throw new SafeTensorsException(file, t.Name,
                    $"{offsets} span {t.End - t.Begin} bytes, expected {expectedBytes} = {sizeFormula}");
            expectedBegin = t.End;
        }

        long dataBytes = length - dataStart; // ≥ 0: checked against the header length before
        if (expectedBegin != dataBytes)
            throw new SafeTensorsException(file, null,
                $"incomplete buffer: tensors cover {expectedBegin} data bytes, found {dataBytes} " +
                $"(file of {length} bytes = 8 + header {dataStart - PrefixBytes} + data {dataBytes}; truncated or padded file?)");
        return sorted;
    }

    /// <summary>numel × dtype size in bytes, with every multiplication checked for overflow.</summary>
    private static long ByteLength(TensorInfo t, string file, out string formula)
    {
        int bits = DTypeBits[t.DType];
        long numel;
        try
        {
            numel = CheckedNumel(t.Shape);
        }
        catch (OverflowException)
        {
            throw new SafeTensorsException(file, t.Name,
                $"invalid tensor info: shape {FormatShape(t.Shape)} overflows, expected at most {long.MaxValue} elements");
        }

        try
        {
            if (bits % 8 == 0)
            {
                formula = $"numel {numel} × {bits / 8} ({t.DType})";
                return checked(numel * (bits / 8));
            }
            long totalBits = checked(numel * bits);
            formula = $"numel {numel} × {bits} bits / 8 ({t.DType})";
            if (totalBits % 8 != 0)
                throw new SafeTensorsException(file, t.Name,
                    $"invalid tensor info: {totalBits} bits ({formula}) is not a whole number of bytes");
            return totalBits / 8;
        }
        catch (OverflowException)
        {
            throw new SafeTensorsException(file, t.Name,
                $"invalid tensor info: numel {numel} × {bits} bits ({t.DType}) overflows a 64-bit byte count");
        }
    }

    /// <summary>The product of a shape; a zero dimension makes it 0 whatever the other dims are.</summary>
    internal static long CheckedNumel(long[] shape)
    {
        if (shape.AsSpan().Contains(0)) return 0;
        long numel = 1;
        foreach (long d in shape) numel = checked(numel * d);
        return numel;
    }

    internal static string FormatShape(IEnumerable<long> shape) => $"[{string.Join(", ", shape)}]";

    // ---------------------------------------------------------------------------------------------
    // Header parsing. System.Text.Json's DOM silently keeps the last of duplicate keys, so the header
    // is walked token by token with Utf8JsonReader, which lets us see (and reject) every duplicate.
    // ---------------------------------------------------------------------------------------------

    private static (Dictionary<string, string> Metadata, List<TensorInfo> Tensors) ParseHeader(byte[] header, string file)
    {
        if (header.Length == 0 || header[0] != (byte)'{')
            throw new SafeTensorsException(file, null,
                "invalid header: expected a JSON object starting with '{', found " +
                (header.Length == 0 ? "an empty header" : $"first byte 0x{header[0]:x2}"));
        if (!Utf8.IsValid(header))
            throw new SafeTensorsException(file, null, "invalid header: expected UTF-8 text, found invalid UTF-8 bytes");

        try
        {
            return ParseHeaderJson(header, file);
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            // JsonException: malformed JSON. InvalidOperationException: GetString() on an escaped
            // string that is not valid UTF-16 (a lone surrogate such as "\ud800").
            throw new SafeTensorsException(file, null, $"invalid header: expected valid JSON, found: {ex.Message}", ex);
        }
    }

    private static (Dictionary<string, string>, List<TensorInfo>) ParseHeaderJson(byte[] header, string file)
    {
        // Defaults are strict: no comments, no trailing commas, one top-level value.
        var reader = new Utf8JsonReader(header, new JsonReaderOptions());
        Next(ref reader, file, null);
        Expect(ref reader, JsonTokenType.StartObject, file, null, "the header");

        var names = new HashSet<string>(StringComparer.Ordinal);
        var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
        var tensors = new List<TensorInfo>();
        while (true)
        {
            Next(ref reader, file, null);
            if (reader.TokenType == JsonTokenType.EndObject) break;
            string name = reader.GetString()!; // inside an object the reader only yields property names
            if (!names.Add(name))
                throw new SafeTensorsException(file, name, "duplicate name: expected each tensor name once, found it twice");
            if (name == MetadataKey) ParseMetadata(ref reader, file, metadata);
            else tensors.Add(ParseEntry(ref reader, file, name));
        }
        // Whitespace (the writer's space padding) may follow the object; anything else makes Read throw.
        if (reader.Read())
            throw new SafeTensorsException(file, null, $"invalid header: expected the end after the object, found {Describe(reader.TokenType)}");
        return (metadata, tensors);
    }

    private static void ParseMetadata(ref Utf8JsonReader reader, string file, Dictionary<string, string> metadata)
    {
        Next(ref reader, file, MetadataKey);
        Expect(ref reader, JsonTokenType.StartObject, file, MetadataKey, "an object mapping strings to strings");
        while (true)
        {
            Next(ref reader, file, MetadataKey);
            if (reader.TokenType == JsonTokenType.EndObject) return;
            string key = reader.GetString()!;
            Next(ref reader, file, MetadataKey);
            Expect(ref reader, JsonTokenType.String, file, MetadataKey, $"a string value for key {SafeTensorsException.Quote(key)}");
            if (!metadata.TryAdd(key, reader.GetString()!))
                throw new SafeTensorsException(file, MetadataKey,
                    $"duplicate key {SafeTensorsException.Quote(key)}: expected each key once, found it twice");
        }
    }

    /// <summary>Parses {"dtype": string, "shape": [ints], "data_offsets": [begin, end]}, nothing more.</summary>
    private static TensorInfo ParseEntry(ref Utf8JsonReader reader, string file, string name)
    {
        const string ExpectedShape = "an object {dtype, shape, data_offsets}";
        Next(ref reader, file, name);
        Expect(ref reader, JsonTokenType.StartObject, file, name, ExpectedShape);

        string? dtype = null;
        long[]? shape = null, offsets = null;
        while (true)
        {
            Next(ref reader, file, name);
            if (reader.TokenType == JsonTokenType.EndObject) break;
            string field = reader.GetString()!;
            bool duplicate;
            switch (field)
            {
                case "dtype":
                    duplicate = dtype is not null;
                    Next(ref reader, file, name);
                    Expect(ref reader, JsonTokenType.String, file, name, "dtype as a string");
                    dtype = reader.GetString()!;
                    if (!DTypeBits.ContainsKey(dtype))
                        throw new SafeTensorsException(file, name,
                            $"unknown dtype {SafeTensorsException.Quote(dtype)}, expected one of {string.Join(", ", DTypeBits.Keys)}");
                    break;
                case "shape":
                    duplicate = shape is not null;
                    shape = ReadNonNegativeInts(ref reader, file, name, "shape", exactCount: -1);
                    break;
                case "data_offsets":
                    duplicate = offsets is not null;
                    offsets = ReadNonNegativeInts(ref reader, file, name, "data_offsets", exactCount: 2);
                    break;
                default:
                    throw new SafeTensorsException(file, name,
                        $"invalid tensor entry: expected only dtype, shape, data_offsets, found field {SafeTensorsException.Quote(field)}");
            }
            if (duplicate)
                throw new SafeTensorsException(file, name, $"invalid tensor entry: field '{field}' appears twice, expected once");
        }

        string? missing = dtype is null ? "dtype" : shape is null ? "shape" : offsets is null ? "data_offsets" : null;
        if (missing is not null)
            throw new SafeTensorsException(file, name, $"invalid tensor entry: expected {ExpectedShape}, found no '{missing}'");
        return new TensorInfo(name, dtype!, shape!, offsets![0], offsets[1]);
    }

    private static long[] ReadNonNegativeInts(ref Utf8JsonReader reader, string file, string name, string field, int exactCount)
    {
        string what = exactCount == 2 ? "[begin, end]" : "an array of non-negative integers";
        Next(ref reader, file, name);
        Expect(ref reader, JsonTokenType.StartArray, file, name, $"{field} as {what}");
        var values = new List<long>();
        while (true)
        {
            Next(ref reader, file, name);
            if (reader.TokenType == JsonTokenType.EndArray) break;
            if (reader.TokenType != JsonTokenType.Number || !reader.TryGetInt64(out long v) || v < 0)
                throw new SafeTensorsException(file, name,
                    $"{field}: expected non-negative 64-bit integers, found {DescribeValue(ref reader)}");
            values.Add(v);
        }
        if (exactCount >= 0 && values.Count != exactCount)
            throw new SafeTensorsException(file, name,
                $"{field}: expected {exactCount} integers {what}, found {values.Count}");
        return values.ToArray();
    }

    private static void Next(ref Utf8JsonReader reader, string file, string? tensor)
    {
        if (!reader.Read())
            throw new SafeTensorsException(file, tensor, "invalid header: expected more JSON, found the end of the header");
    }

    private static void Expect(ref Utf8JsonReader reader, JsonTokenType type, string file, string? tensor, string expected)
    {
        if (reader.TokenType != type)
            throw new SafeTensorsException(file, tensor,
                $"invalid {(tensor is null ? "header" : "tensor entry")}: expected {expected}, found {DescribeValue(ref reader)}");
    }

    private static string Describe(JsonTokenType type) => type switch
    {
        JsonTokenType.StartObject => "an object",
        JsonTokenType.StartArray => "an array",
        JsonTokenType.String => "a string",
        JsonTokenType.Number => "a number",
        JsonTokenType.True or JsonTokenType.False => "a boolean",
        JsonTokenType.Null => "null",
        _ => type.ToString(),
    };

    /// <summary>The token's kind and, for scalars, its text (cut short: numbers can be long).</summary>
    private static string DescribeValue(ref Utf8JsonReader reader)
    {
        if (reader.TokenType is not (JsonTokenType.Number or JsonTokenType.String)) return Describe(reader.TokenType);
        string text = Encoding.UTF8.GetString(reader.ValueSpan.Length > 40 ? reader.ValueSpan[..40] : reader.ValueSpan);
        return $"{Describe(reader.TokenType)} {SafeTensorsException.Quote(text + (reader.ValueSpan.Length > 40 ? "..." : ""))}";
    }

    // ---------------------------------------------------------------------------------------------
    // Data: decoding and positional reads.
    // ---------------------------------------------------------------------------------------------

    /// <summary>Little-endian element decoding; every read goes through BinaryPrimitives (no alignment assumed).</summary>
    private static void Decode(string dtype, ReadOnlySpan<byte> src, Span<float> dst)
    {
        switch (dtype)
        {
            case "F32":
                for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadSingleLittleEndian(src[(4 * i)..]);
                break;
            case "F16":
                for (int i = 0; i < dst.Length; i++) dst[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(src[(2 * i)..]);
                break;
            case "BF16": // bfloat16 is the top half of a float32: shift its 16 bits into place
                for (int i = 0; i < dst.Length; i++)
                    dst[i] = BitConverter.Int32BitsToSingle(BinaryPrimitives.ReadUInt16LittleEndian(src[(2 * i)..]) << 16);
                break;
            case "F64":
                for (int i = 0; i < dst.Length; i++) dst[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(src[(8 * i)..]);
                break;
            case "I64":
                for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadInt64LittleEndian(src[(8 * i)..]);
                break;
            case "I32":
                for (int i = 0; i < dst.Length; i++) dst[i] = BinaryPrimitives.ReadInt32LittleEndian(src[(4 * i)..]);
                break;
            case "BOOL" or "U8": // masks (PixArt's prompt_attention_mask)
                for (int i = 0; i < dst.Length; i++) dst[i] = src[i];
                break;
            default:
                throw new UnreachableException($"Decode called with unsupported dtype {dtype}");
        }
    }

    private void ReadExactly(long offset, Span<byte> destination, string tensor) =>
        ReadExactly(_source, Path, offset, destination, tensor);

    private static void ReadExactly(ByteSource source, string file, long offset, Span<byte> destination, string? tensor)
    {
        try
        {
            while (!destination.IsEmpty)
            {
                int read = source.Read(offset, destination);
                if (read == 0)
                    throw new SafeTensorsException(file, tensor,
                        $"expected data up to byte {offset + destination.Length}, found the end of the file at {offset} " +
                        "(was the file truncated after it was opened?)");
                offset += read;
                destination = destination[read..];
            }
        }
        catch (IOException ex)
        {
            throw new SafeTensorsException(file, tensor, $"read failed at byte {offset}: {ex.Message}", ex);
        }
    }

    /// <summary>Where the bytes come from: a file handle (positional reads) or an in-memory copy.</summary>
    private abstract class ByteSource : IDisposable
    {
        public abstract long Length { get; }

        /// <summary>Reads up to destination.Length bytes at offset; returns 0 at the end.</summary>
        public abstract int Read(long offset, Span<byte> destination);

        public virtual void Dispose() { }
    }

    private sealed class FileSource(SafeFileHandle handle) : ByteSource
    {
        public override long Length { get; } = RandomAccess.GetLength(handle);
        public override int Read(long offset, Span<byte> destination) => RandomAccess.Read(handle, destination, offset);
        public override void Dispose() => handle.Dispose();
    }

    private sealed class MemorySource(byte[] data) : ByteSource
    {
        public override long Length => data.Length;

        public override int Read(long offset, Span<byte> destination)
        {
            if (offset >= data.Length) return 0;
            int count = (int)Math.Min(destination.Length, data.Length - offset);
            data.AsSpan((int)offset, count).CopyTo(destination);
            return count;
        }
    }
}
