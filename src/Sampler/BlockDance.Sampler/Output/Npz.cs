// The .npz batch the ADM / guided-diffusion FID evaluator reads (evaluations/evaluator.py: np.load(path)["arr_0"]),
// as the DiT repository's sample_ddp.py writes it: a zip holding arr_0.npy, uint8 images (N, H, W, 3).
// .npy version 1.0: magic "\x93NUMPY", version 1 0, a little-endian u16 header length, then a Python dict
// literal padded with spaces to a multiple of 64 bytes and ended by '\n', then the raw C-order data.
using System.IO.Compression;
using System.Text;

namespace BlockDance.Sampler;

public static class Npz
{
    /// <summary>Writes `count` images of h×w×3 bytes, each produced by `image(i)` in order, as arr_0.</summary>
    public static void Write(Stream output, int count, int h, int w, Func<int, byte[]> image)
    {
        using var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true);
        var entry = zip.CreateEntry("arr_0.npy", CompressionLevel.NoCompression);
        entry.LastWriteTime = new DateTimeOffset(1980, 1, 1, 0, 0, 0, TimeSpan.Zero);   // the same bytes for the same images
        using var s = entry.Open();
        s.Write(Header($"{{'descr': '|u1', 'fortran_order': False, 'shape': ({count}, {h}, {w}, 3), }}"));
        for (int i = 0; i < count; i++)
        {
            var px = image(i);
            if (px.Length != h * w * 3) throw new InvalidOperationException($"npz: image {i} has {px.Length} bytes, expected {h * w * 3}");
            s.Write(px);
        }
    }

    public static byte[] Header(string dict)
    {
        const int Prefix = 10;                                 // magic 6 + version 2 + length 2
        int len = dict.Length + 1;
        int padded = (Prefix + len + 63) / 64 * 64 - Prefix;
        var text = dict + new string(' ', padded - len) + "\n";
        var h = new byte[Prefix + padded];
        h[0] = 0x93; "NUMPY"u8.CopyTo(h.AsSpan(1)); h[6] = 1; h[7] = 0;
        h[8] = (byte)(padded & 0xFF); h[9] = (byte)(padded >> 8);
        Encoding.ASCII.GetBytes(text).CopyTo(h, Prefix);
        return h;
    }
}
