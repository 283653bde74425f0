// The animated-PNG writer: chunk order (IHDR, acTL, fcTL + IDAT, fcTL + fdAT …, IEND), CRCs, sequence numbers
// counting fcTL and fdAT together, the frame delay 1/fps, and every frame's pixels back from its zlib data. When an
// ffmpeg is on PATH it must decode the file to the same number of frames and the same first-frame pixels.
using System.Buffers.Binary;
using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using BlockDance.Sampler;
using Xunit;

namespace BlockDance.Tests;

public class ApngTests
{
    static List<(string Type, byte[] Data)> Chunks(byte[] file)
    {
        Assert.Equal(new byte[] { 0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A }, file[..8]);
        var list = new List<(string, byte[])>();
        for (int at = 8; at < file.Length;)
        {
            int len = BinaryPrimitives.ReadInt32BigEndian(file.AsSpan(at));
            var type = file[(at + 4)..(at + 8)];
            var data = file[(at + 8)..(at + 8 + len)];
            Assert.Equal(Apng.Crc32(type, data), BinaryPrimitives.ReadUInt32BigEndian(file.AsSpan(at + 8 + len)));
            list.Add((Encoding.ASCII.GetString(type), data));
            at += 12 + len;
        }
        return list;
    }

    static byte[] Inflate(byte[] z, int w, int h)
    {
        using var ms = new MemoryStream();
        using (var d = new ZLibStream(new MemoryStream(z), CompressionMode.Decompress)) d.CopyTo(ms);
        var raw = ms.ToArray();
        Assert.Equal(h * (1 + 3 * w), raw.Length);
        var rgb = new byte[w * h * 3];
        for (int y = 0; y < h; y++)
        {
            Assert.Equal(0, raw[y * (1 + 3 * w)]);
            Array.Copy(raw, y * (1 + 3 * w) + 1, rgb, y * 3 * w, 3 * w);
        }
        return rgb;
    }

    static byte[][] Frames(int n, int w, int h) =>
        Enumerable.Range(0, n).Select(f => Enumerable.Range(0, w * h * 3).Select(i => (byte)(i * 7 + f * 40)).ToArray()).ToArray();

    [Fact]
    public void Apng_ChunksSequenceDelayAndPixels()
    {
        const int w = 5, h = 4, fps = 8;
        var frames = Frames(3, w, h);
        using var ms = new MemoryStream();
        Apng.Write(ms, frames, w, h, fps);
        var chunks = Chunks(ms.ToArray());
        Assert.Equal(new[] { "IHDR", "acTL", "fcTL", "IDAT", "fcTL", "fdAT", "fcTL", "fdAT", "IEND" }, chunks.Select(c => c.Type));
        Assert.Equal(3, BinaryPrimitives.ReadInt32BigEndian(chunks[1].Data));                // frames
        Assert.Equal(0, BinaryPrimitives.ReadInt32BigEndian(chunks[1].Data.AsSpan(4)));      // loop forever
        var seqs = chunks.Where(c => c.Type is "fcTL" or "fdAT").Select(c => BinaryPrimitives.ReadInt32BigEndian(c.Data)).ToArray();
        Assert.Equal(new[] { 0, 1, 2, 3, 4 }, seqs);
        foreach (var c in chunks.Where(c => c.Type == "fcTL"))
        {
            Assert.Equal((w, h), (BinaryPrimitives.ReadInt32BigEndian(c.Data.AsSpan(4)), BinaryPrimitives.ReadInt32BigEndian(c.Data.AsSpan(8))));
            Assert.Equal((1, fps), ((int)BinaryPrimitives.ReadUInt16BigEndian(c.Data.AsSpan(20)), (int)BinaryPrimitives.ReadUInt16BigEndian(c.Data.AsSpan(22))));
        }
        Assert.Equal(frames[0], Inflate(chunks[3].Data, w, h));
        Assert.Equal(frames[1], Inflate(chunks[5].Data[4..], w, h));
        Assert.Equal(frames[2], Inflate(chunks[7].Data[4..], w, h));
    }

    [SkippableFact]
    public void Apng_DecodesWithFfmpeg_WhenInstalled()
    {
        var ffmpeg = VideoWriter.FindOnPath("ffmpeg");
        Skip.If(ffmpeg is null, "ffmpeg not on PATH");
        const int w = 6, h = 4;
        var frames = Frames(4, w, h);
        var path = Path.Combine(CliRunner.TempDir(), "clip.png");
        using (var f = File.Create(path)) Apng.Write(f, frames, w, h, 8);
        var psi = new ProcessStartInfo(ffmpeg!) { RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var a in new[] { "-loglevel", "error", "-i", path, "-f", "rawvideo", "-pix_fmt", "rgb24", "-" }) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        using var ms = new MemoryStream();
        p.StandardOutput.BaseStream.CopyTo(ms);
        p.WaitForExit();
        Assert.Equal(0, p.ExitCode);
        var raw = ms.ToArray();
        Assert.Equal(4 * w * h * 3, raw.Length);
        Assert.Equal(frames[0], raw[..(w * h * 3)]);
        Assert.Equal(frames[3], raw[(3 * w * h * 3)..]);
    }
}
