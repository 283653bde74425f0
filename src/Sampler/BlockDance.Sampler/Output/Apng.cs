// A small animated-PNG writer (APNG, the PNG extension browsers play): lossless 8-bit RGB frames of one size.
// Layout: signature, IHDR, acTL (frame count, loop forever), then per frame an fcTL (sequence number, full-frame
// region, delay = 1/fps s, no dispose, no blend) and its image data — IDAT for the first frame (so a plain PNG
// decoder shows frame 0), fdAT (sequence number + zlib data) for the others — and IEND. Sequence numbers count
// fcTL and fdAT chunks together from 0. Rows are stored with filter 0 (none); zlib from System.IO.Compression.
using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;

namespace BlockDance.Sampler;

public static class Apng
{
    static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>Writes frames (each width·height·3 bytes, RGB row-major) as an APNG at fps frames per second.</summary>
    public static void Write(Stream s, IReadOnlyList<byte[]> frames, int width, int height, int fps)
    {
        if (frames.Count < 1) throw new ArgumentException("an APNG needs at least one frame");
        if (width < 1 || height < 1 || fps < 1) throw new ArgumentException($"APNG {width}×{height} at {fps} fps: expected positive values");
        foreach (var f in frames)
            if (f.Length != (long)width * height * 3) throw new ArgumentException($"APNG frame of {f.Length} bytes, expected {width}×{height}×3");
        s.Write(Signature);
        var ihdr = new byte[13];
        BinaryPrimitives.WriteInt32BigEndian(ihdr, width);
        BinaryPrimitives.WriteInt32BigEndian(ihdr.AsSpan(4), height);
        ihdr[8] = 8; ihdr[9] = 2;                                   // 8 bits, colour type 2 (RGB); deflate, filter 0, no interlace
        Chunk(s, "IHDR", ihdr);
        var actl = new byte[8];
        BinaryPrimitives.WriteInt32BigEndian(actl, frames.Count);
        Chunk(s, "acTL", actl);                                    // num_plays 0: loop forever
        int seq = 0;
        for (int i = 0; i < frames.Count; i++)
        {
            var fctl = new byte[26];
            BinaryPrimitives.WriteInt32BigEndian(fctl, seq++);
            BinaryPrimitives.WriteInt32BigEndian(fctl.AsSpan(4), width);
            BinaryPrimitives.WriteInt32BigEndian(fctl.AsSpan(8), height);
            BinaryPrimitives.WriteUInt16BigEndian(fctl.AsSpan(20), 1);            // delay 1 / fps s
            BinaryPrimitives.WriteUInt16BigEndian(fctl.AsSpan(22), (ushort)fps);
            Chunk(s, "fcTL", fctl);                                               // offsets 0, dispose 0, blend 0
            var data = Compress(frames[i], width, height);
            if (i == 0) Chunk(s, "IDAT", data);
            else
            {
                var fdat = new byte[4 + data.Length];
                BinaryPrimitives.WriteInt32BigEndian(fdat, seq++);
                data.CopyTo(fdat, 4);
                Chunk(s, "fdAT", fdat);
            }
        }
        Chunk(s, "IEND", []);
    }

    /// <summary>zlib stream of the scanlines, each prefixed with filter byte 0.</summary>
    static byte[] Compress(byte[] rgb, int width, int height)
    {
        using var ms = new MemoryStream();
        using (var z = new ZLibStream(ms, CompressionLevel.Optimal, leaveOpen: true))
        {
            int row = width * 3;
            for (int y = 0; y < height; y++)
            {
                z.WriteByte(0);
                z.Write(rgb, y * row, row);
            }
        }
        return ms.ToArray();
    }

    static void Chunk(Stream s, string type, byte[] data)
    {
        Span<byte> word = stackalloc byte[4];
        BinaryPrimitives.WriteInt32BigEndian(word, data.Length);
        s.Write(word);
        var typeBytes = Encoding.ASCII.GetBytes(type);
        s.Write(typeBytes);
        s.Write(data);
        BinaryPrimitives.WriteUInt32BigEndian(word, Crc32(typeBytes, data));
        s.Write(word);
    }

    static readonly uint[] Table = MakeTable();
    static uint[] MakeTable()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }

    /// <summary>The PNG CRC-32 of type + data.</summary>
    public static uint Crc32(byte[] type, byte[] data)
    {
        uint c = 0xFFFFFFFFu;
        foreach (var b in type) c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        foreach (var b in data) c = Table[(c ^ b) & 0xFF] ^ (c >> 8);
        return c ^ 0xFFFFFFFFu;
    }
}
