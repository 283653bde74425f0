// The issue's .pt examples: sizes that overflow 64-bit arithmetic (a storage of 2^61 or 2^62 elements, an offset
// that wraps around), an encrypted zip entry, a garbled central directory — each one line and exit 2 — and a
// state dict of 500,000 keys, which loads (insertion is O(1): it took minutes when each key was searched linearly).
using System.IO.Compression;
using System.Text;
using BlockDance.Transformer.IO;
using Xunit;

namespace BlockDance.Tests;

public class TorchSurfaceTests
{
    static string Fixture => CliRunner.Fixture(Path.Combine("torch", "tiny_dit.pt"));

    /// <summary>A copy of tiny_dit.pt with data.pkl rewritten by `edit`.</summary>
    static string WithPickle(string dir, Func<byte[], byte[]> edit)
    {
        var path = Path.Combine(dir, $"m{Guid.NewGuid():N}.pt");
        using var src = ZipFile.OpenRead(Fixture);
        using var dst = ZipFile.Open(path, ZipArchiveMode.Create);
        foreach (var e in src.Entries)
        {
            using var s = e.Open();
            var data = new MemoryStream();
            s.CopyTo(data);
            var b = data.ToArray();
            if (e.FullName.EndsWith("data.pkl")) b = edit(b);
            using var o = dst.CreateEntry(e.FullName, CompressionLevel.NoCompression).Open();
            o.Write(b);
        }
        return path;
    }

    /// <summary>LONG1 with 8 little-endian bytes: a pickled Python int of any 64-bit value.</summary>
    static byte[] Long1(long v) => [0x8a, 8, .. BitConverter.GetBytes(v)];

    /// <summary>Length of the small-int opcode at `at` (BININT1, BININT2, BININT).</summary>
    static int IntOp(byte[] p, int at) => p[at] switch { (byte)'K' => 2, (byte)'M' => 3, (byte)'J' => 5, _ => throw new InvalidDataException($"opcode {p[at]:x2}") };

    /// <summary>Skips a memo store (BINPUT, LONG_BINPUT, MEMOIZE) at `at`.</summary>
    static int SkipPut(byte[] p, int at) => p[at] switch { (byte)'q' => at + 2, (byte)'r' => at + 5, 0x94 => at + 1, _ => at };

    /// <summary>Replaces the first storage's element count (after its 'cpu' location) with `numel`.</summary>
    static byte[] StorageNumel(byte[] p, long numel)
    {
        int at = SkipPut(p, p.AsSpan().IndexOf("cpu"u8) + 3);
        return [.. p[..at], .. Long1(numel), .. p[(at + IntOp(p, at))..]];
    }

    /// <summary>Replaces the first tensor's storage offset (the int after BINPERSID) with `offset`.</summary>
    static byte[] StorageOffset(byte[] p, long offset)
    {
        int at = SkipPut(p, Array.IndexOf(p, (byte)'Q', p.AsSpan().IndexOf("cpu"u8)) + 1);
        return [.. p[..at], .. Long1(offset), .. p[(at + IntOp(p, at))..]];
    }

    static void AssertRefused(string pt, string expected)
    {
        var dir = Path.GetDirectoryName(pt)!;
        var r = CliRunner.Run("sample", "--model", pt, "--heads", "2", "--device", "cpu", "--steps", "1", "--out", Path.Combine(dir, "x.png"));
        HostileFiles.AssertOneLineError(r.Code, r.Err, expected);
        Assert.False(File.Exists(Path.Combine(dir, "x.png")));
    }

    [Theory]
    [InlineData(61)]
    [InlineData(62)]
    [InlineData(63)]
    public void StorageOfTwoToTheNElements_IsRefused_NoOverflow(int log2)
    {
        long numel = log2 == 63 ? long.MaxValue : 1L << log2;
        AssertRefused(WithPickle(CliRunner.TempDir(), p => StorageNumel(p, numel)), $"expected more than 2^63 = {numel} × 4");
    }

    [Theory]
    [InlineData(long.MaxValue - 15)]
    [InlineData(long.MaxValue / 4 + 1)]
    [InlineData(-64)]
    public void StorageOffsetThatWraps_IsRefused(long offset) =>
        AssertRefused(WithPickle(CliRunner.TempDir(), p => StorageOffset(p, offset)), "expected them inside its storage of 64");

    [Fact]
    public void EncryptedZipEntry_IsRefused()
    {
        var dir = CliRunner.TempDir();
        var b = File.ReadAllBytes(Fixture);
        for (int i = 0; i + 4 <= b.Length; i++)
        {
            if (b[i] == 'P' && b[i + 1] == 'K' && b[i + 2] == 1 && b[i + 3] == 2) b[i + 8] |= 1;        // central directory: flags
            else if (b[i] == 'P' && b[i + 1] == 'K' && b[i + 2] == 3 && b[i + 3] == 4) b[i + 6] |= 1;   // local header: flags
        }
        var path = Path.Combine(dir, "enc.pt");
        File.WriteAllBytes(path, b);
        AssertRefused(path, "is encrypted: expected a plain torch.save archive");
    }

    [Fact]
    public void GarbledCentralDirectory_IsExit2_NotAnInternalError()
    {
        var dir = CliRunner.TempDir();
        var b = File.ReadAllBytes(Fixture);
        int cd = b.AsSpan().IndexOf("PK\u0001\u0002"u8);
        for (int i = cd + 4; i < b.Length - 22; i++) b[i] = 0xFF;   // everything between the first entry's signature and the end record
        var path = Path.Combine(dir, "garbled.pt");
        File.WriteAllBytes(path, b);
        AssertRefused(path, "expected a PyTorch zip checkpoint, found a damaged or truncated zip");
    }

    [Fact]
    public void StateDictOf500000Keys_Loads_AllKeysInOrder()
    {
        const int N = 500_000;
        var p = new MemoryStream();
        p.Write([0x80, 2, (byte)'}', (byte)'q', 0, (byte)'(']);                       // {} and MARK
        static byte[] Str(string s) { var u = Encoding.UTF8.GetBytes(s); return [(byte)'X', .. BitConverter.GetBytes(u.Length), .. u]; }
        for (int k = 0; k < N; k++)
        {
            p.Write(Str($"k{k}"));
            if (k == 0)
            {
                // _rebuild_tensor_v2(persistent storage ('storage', FloatStorage, '0', 'cpu', 1), 0, (1,), (1,), False, OrderedDict())
                p.Write([.. "ctorch._utils\n_rebuild_tensor_v2\n"u8, (byte)'(', (byte)'(', .. Str("storage"), .. "ctorch\nFloatStorage\n"u8,
                    .. Str("0"), .. Str("cpu"), (byte)'K', 1, (byte)'t', (byte)'Q', (byte)'K', 0, (byte)'K', 1, 0x85, (byte)'K', 1, 0x85, 0x89,
                    .. "ccollections\nOrderedDict\n"u8, (byte)')', (byte)'R', (byte)'t', (byte)'R', (byte)'r', 1, 0, 0, 0]);
            }
            else p.Write([(byte)'j', 1, 0, 0, 0]);                                      // LONG_BINGET 1: the same tensor
        }
        p.Write([(byte)'u', (byte)'.']);                                                 // SETITEMS, STOP
        var dir = CliRunner.TempDir();
        var path = Path.Combine(dir, "many.pt");
        using (var z = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            using (var s = z.CreateEntry("many/data.pkl", CompressionLevel.NoCompression).Open()) s.Write(p.ToArray());
            using (var s = z.CreateEntry("many/data/0", CompressionLevel.NoCompression).Open()) s.Write(BitConverter.GetBytes(1.5f));
        }
        using var ck = TorchCheckpoint.Open(path);
        Assert.Equal(N, ck.Names.Count);
        Assert.Equal("k0", ck.Names[0]);
        Assert.Equal($"k{N - 1}", ck.Names[^1]);
        Assert.Equal([1.5f], ck.ReadFloat32($"k{N / 2}"));
    }
}
