// Prompt features for reuse, in the names diffusers' PixArtAlphaPipeline takes as arguments:
//   prompt_embeds (B, L, D) F32, prompt_attention_mask (B, L) I64,
//   negative_prompt_embeds, negative_prompt_attention_mask (same shapes; only with a negative prompt).
// A safetensors file (layout: SafeTensorsFile.cs) with F32 and I64 tensors; SafeTensorsWriter writes F32
// only, so this small writer handles the mask's I64. The header is space-padded to 8 bytes; the file is
// written to a temporary name and renamed, so a failure never leaves a partial file.
using System.Buffers.Binary;
using System.Text;
using System.Text.Json;
using BlockDance.Transformer.IO;

namespace BlockDance.Transformer.T5;

public sealed record PromptEmbeddings(float[] Embeds, long[] Mask, int Batch, int Length, int Dim);

public static class PromptEmbeddingsFile
{
    /// <summary>Writes the file to a temporary name in the same folder and renames it (library use; the
    /// command goes through the program's AtomicFile, which also defers signals).</summary>
    public static void Write(string path, PromptEmbeddings positive, PromptEmbeddings? negative, IReadOnlyDictionary<string, string>? metadata = null)
    {
        string full = Path.GetFullPath(path);
        string tmp = Path.Combine(Path.GetDirectoryName(full)!, $".bd-{Guid.NewGuid():N}.tmp");
        try
        {
            using (var s = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write))
            {
                Write(s, positive, negative, metadata);
                s.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }

    /// <summary>Writes the safetensors bytes to a stream.</summary>
    public static void Write(Stream s, PromptEmbeddings positive, PromptEmbeddings? negative, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var entries = new List<(string Name, string DType, long[] Shape, byte[] Data)>();
        void Add(string prefix, PromptEmbeddings e)
        {
            var f = new byte[e.Embeds.Length * 4L];
            for (int i = 0; i < e.Embeds.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(f.AsSpan(i * 4), e.Embeds[i]);
            var m = new byte[e.Mask.Length * 8L];
            for (int i = 0; i < e.Mask.Length; i++) BinaryPrimitives.WriteInt64LittleEndian(m.AsSpan(i * 8), e.Mask[i]);
            entries.Add(($"{prefix}prompt_embeds", "F32", [e.Batch, e.Length, e.Dim], f));
            entries.Add(($"{prefix}prompt_attention_mask", "I64", [e.Batch, e.Length], m));
        }
        Add("", positive);
        if (negative != null) Add("negative_", negative);

        var header = new Dictionary<string, object>();
        if (metadata != null) header["__metadata__"] = metadata;
        long offset = 0;
        foreach (var (name, dtype, shape, data) in entries)
        {
            header[name] = new Dictionary<string, object> { ["dtype"] = dtype, ["shape"] = shape, ["data_offsets"] = new[] { offset, offset + data.Length } };
            offset += data.Length;
        }
        var json = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(header));
        int pad = (8 - json.Length % 8) % 8;
        Span<byte> prefix = stackalloc byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(prefix, (ulong)(json.Length + pad));
        s.Write(prefix);
        s.Write(json);
        for (int i = 0; i < pad; i++) s.WriteByte((byte)' ');
        foreach (var e in entries) s.Write(e.Data);
    }

    /// <summary>Reads prompt_embeds/prompt_attention_mask (prefix "" or "negative_"); shapes checked against each other.</summary>
    public static PromptEmbeddings Read(SafeTensorsFile f, string prefix = "")
    {
        var info = f.Get($"{prefix}prompt_embeds");
        if (info.Shape.Length != 3)
            throw new SafeTensorsException(f.Path, info.Name, $"expected shape (B, L, D), found [{string.Join(", ", info.Shape)}]");
        var embeds = f.ReadFloat32(info.Name);
        var mask = f.ReadFloat32($"{prefix}prompt_attention_mask", info.Shape[0], info.Shape[1]);
        return new PromptEmbeddings(embeds, Array.ConvertAll(mask, v => (long)v), (int)info.Shape[0], (int)info.Shape[1], (int)info.Shape[2]);
    }
}
