// SafeTensorsWriter: writes float32 tensors in the safetensors format (see SafeTensorsFile.cs for the
// layout). The header is padded with spaces to a multiple of 8 bytes so that the data buffer starts
// 8-byte aligned, as the reference writer does. Tensors are laid out in the order given.
//
// The file is written atomically: everything goes to ".bd-<random>.tmp-st" in the same folder (a fixed-length
// name, so it fits whenever <path>'s name does), is flushed to disk, and only then moved over <path>. A failure
// (bad argument, full disk, crash) never leaves a partial file under the requested name; an existing file
// there stays untouched. A SIGINT/SIGTERM during the write is deferred and honoured before the move
// (Interruption): the temporary file is deleted and nothing is written.

using System.Buffers;
using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text.Encodings.Web;
using System.Text.Json;

namespace BlockDance.Transformer.IO;

public static class SafeTensorsWriter
{
    /// <summary>Writes F32 tensors (in the given order) and optional "__metadata__" to <paramref name="path"/>.</summary>
    public static void Write(string path, IEnumerable<(string name, long[] shape, float[] data)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentNullException.ThrowIfNull(tensors);
        var list = tensors.ToList(); // the header (with every offset) is written before any data
        byte[] header = BuildHeader(list, metadata);

        string fullPath = System.IO.Path.GetFullPath(path);
        string tempPath = System.IO.Path.Combine(System.IO.Path.GetDirectoryName(fullPath)!, $".bd-{Guid.NewGuid():N}.tmp-st");
        using var region = BlockDance.Kernels.Interruption.Defer();
        try
        {
            using (var stream = new FileStream(tempPath, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                WriteBody(stream, header, list);
                stream.Flush(flushToDisk: true);
            }
            BlockDance.Kernels.Interruption.ThrowIfRequested($"before writing {path}");
            File.Move(tempPath, fullPath, overwrite: true);
        }
        catch
        {
            try { File.Delete(tempPath); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    /// <summary>The same bytes to a stream the caller owns (e.g. a temporary file of a group of outputs).</summary>
    public static void Write(Stream stream, IEnumerable<(string name, long[] shape, float[] data)> tensors,
        IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(stream);
        var list = tensors.ToList();
        WriteBody(stream, BuildHeader(list, metadata), list);
    }

    private static void WriteBody(Stream stream, byte[] header, List<(string name, long[] shape, float[] data)> list)
    {
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)header.Length);
        stream.Write(prefix);
        stream.Write(header);
        foreach (var (_, _, data) in list) WriteFloat32LittleEndian(stream, data);
    }

    /// <summary>The JSON header, padded with spaces to a multiple of 8 bytes.</summary>
    private static byte[] BuildHeader(List<(string name, long[] shape, float[] data)> tensors,
        IReadOnlyDictionary<string, string>? metadata)
    {
        var buffer = new ArrayBufferWriter<byte>();
        // Relaxed escaping keeps names readable ("blocks.0+x", not "blocks.0\u002Bx"); still valid JSON.
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Encoder = JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            json.WriteStartObject();
            if (metadata is not null)
            {
                json.WriteStartObject("__metadata__");
                foreach (var (key, value) in metadata) json.WriteString(key, value);
                json.WriteEndObject();
            }

            var seen = new HashSet<string>(StringComparer.Ordinal);
            long offset = 0;
            foreach (var (name, shape, data) in tensors)
            {
                CheckTensor(name, shape, data, seen);
                long end = offset + 4L * data.Length;
                json.WriteStartObject(name);
                json.WriteString("dtype", "F32");
                json.WriteStartArray("shape");
                foreach (long d in shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(end);
                json.WriteEndArray();
                json.WriteEndObject();
                offset = end;
            }
            json.WriteEndObject();
        }

        int padded = (buffer.WrittenCount + 7) / 8 * 8;
        if (padded > SafeTensorsFile.MaxHeaderBytes)
            throw new ArgumentException(
                $"header would be {padded} bytes, readers refuse more than {SafeTensorsFile.MaxHeaderBytes}", nameof(tensors));
        var header = new byte[padded];
        buffer.WrittenSpan.CopyTo(header);
        header.AsSpan(buffer.WrittenCount).Fill((byte)' ');
        return header;
    }

    private static void CheckTensor(string name, long[] shape, float[] data, HashSet<string> seen)
    {
        ArgumentNullException.ThrowIfNull(name);
        ArgumentNullException.ThrowIfNull(shape);
        ArgumentNullException.ThrowIfNull(data);
        if (name == "__metadata__")
            throw new ArgumentException("'__metadata__' is reserved for metadata and cannot name a tensor", nameof(name));
        if (!seen.Add(name))
            throw new ArgumentException($"tensor '{name}' appears twice; names must be unique", nameof(name));
        if (shape.Any(d => d < 0))
            throw new ArgumentException($"tensor '{name}': shape {SafeTensorsFile.FormatShape(shape)} has a negative dimension", nameof(shape));
        long numel = SafeTensorsFile.CheckedNumel(shape);
        if (numel != data.Length)
            throw new ArgumentException(
                $"tensor '{name}': shape {SafeTensorsFile.FormatShape(shape)} has {numel} elements, data has {data.Length}", nameof(data));
    }

    private static void WriteFloat32LittleEndian(Stream stream, float[] data)
    {
        // Chunks of 256 Ki floats: AsBytes on a whole >2 GiB array would overflow a span's int length.
        const int ChunkElements = 1 << 18;
        byte[]? staging = BitConverter.IsLittleEndian ? null : new byte[ChunkElements * 4];
        for (int start = 0; start < data.Length; start += ChunkElements)
        {
            var chunk = data.AsSpan(start, Math.Min(ChunkElements, data.Length - start));
            if (staging is null)
            {
                stream.Write(MemoryMarshal.AsBytes(chunk));
                continue;
            }
            for (int i = 0; i < chunk.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(staging.AsSpan(4 * i), chunk[i]);
            stream.Write(staging, 0, chunk.Length * 4);
        }
    }
}
