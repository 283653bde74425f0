// A sample PNG as merge reads it, checked before decoding: the image decoder (SkiaSharp) also accepts JPEG,
// GIF or WebP bytes under a .png name, and decodes a truncated PNG to a partly grey image without an error.
// So the file must be a regular file (a FIFO would block), start with the PNG signature, and hold whole
// chunks — each length inside the file, each CRC-32 right — from IHDR to an IEND that ends the file.
// PNG facts (RFC 2083 / ISO 15948): signature 89 50 4E 47 0D 0A 1A 0A; a chunk is length (u32 BE), type (4
// ASCII letters), data, CRC-32 (poly 0xEDB88320, over type + data); IHDR first (width, height u32 BE, …).
using BlockDance.Sampler.Cli;
using BlockDance.Transformer.IO;

namespace BlockDance.Sampler;

public static class PngFile
{
    /// <summary>Largest sample PNG read: 64 MiB (a 4096×4096 RGB image compresses to well under it).</summary>
    public const long MaxBytes = 64L << 20;
    static readonly byte[] Signature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    static readonly uint[] Crc = Table();

    /// <summary>The image's (width, height), or a UsageException naming what is wrong with the file.</summary>
    public static (int Width, int Height) Check(string path, string what)
    {
        var b = InputFile.ReadBytes(path, what, MaxBytes);
        UsageException Bad(string found) => new($"{what} {path}: expected a complete PNG image, found {found}");
        if (b.Length < Signature.Length || !b.AsSpan(0, Signature.Length).SequenceEqual(Signature))
            throw Bad(b.Length >= 3 && b[0] == 0xFF && b[1] == 0xD8 && b[2] == 0xFF ? "a JPEG" : "no PNG signature");
        long at = Signature.Length;
        int width = 0, height = 0, chunks = 0;
        while (true)
        {
            if (at + 12 > b.Length) throw Bad($"a file truncated after {at} bytes (no IEND chunk)");
            uint len = U32(b, at);
            if (len > b.Length - at - 12) throw Bad($"a chunk of {len} bytes at byte {at}, beyond the end of the file (truncated)");
            string type = System.Text.Encoding.ASCII.GetString(b, (int)at + 4, 4);
            if (chunks == 0 && type != "IHDR") throw Bad($"a first chunk '{type}' (expected IHDR)");
            uint crc = 0xFFFFFFFF;
            for (long i = at + 4; i < at + 8 + len; i++) crc = Crc[(crc ^ b[i]) & 0xFF] ^ (crc >> 8);
            if ((crc ^ 0xFFFFFFFF) != U32(b, at + 8 + len)) throw Bad($"a damaged '{type}' chunk at byte {at} (CRC mismatch)");
            if (type == "IHDR")
            {
                if (len != 13) throw Bad($"an IHDR of {len} bytes (expected 13)");
                width = (int)Math.Min(U32(b, at + 8), int.MaxValue);
                height = (int)Math.Min(U32(b, at + 12), int.MaxValue);
                if (width < 1 || height < 1) throw Bad($"a {width}×{height} image");
            }
            at += 12 + len;
            chunks++;
            if (type == "IEND")
            {
                if (at != b.Length) throw Bad($"{b.Length - at} bytes after IEND");
                return (width, height);
            }
        }
    }

    static uint U32(byte[] b, long at) => (uint)(b[at] << 24 | b[at + 1] << 16 | b[at + 2] << 8 | b[at + 3]);

    static uint[] Table()
    {
        var t = new uint[256];
        for (uint n = 0; n < 256; n++)
        {
            uint c = n;
            for (int k = 0; k < 8; k++) c = (c & 1) != 0 ? 0xEDB88320 ^ (c >> 1) : c >> 1;
            t[n] = c;
        }
        return t;
    }
}
