// The tokenizer examples of the issue: a spiece.model holding a 100,000-character piece crashed the process (the
// SentencePiece reader recurses per character: a stack overflow is SIGABRT, not an exception), and a garbled
// normalizer table (precompiled_charsmap, "the trie") failed inside the library with an internal error. Both are now
// one InvalidValueException (exit 2); the fuzz below garbles the table with several seeds and requires either a
// tokenizer that encodes or that one error, never another exception.
using BlockDance.Kernels;
using BlockDance.Transformer.Tokenizers;
using Xunit;

namespace BlockDance.Tests;

public class TokenizerSurfaceTests
{
    static byte[] Spiece => File.ReadAllBytes(CliRunner.Fixture(Path.Combine("t5_tiny", "tokenizer", "spiece.model")));

    static byte[] Varint(ulong v)
    {
        var o = new List<byte>();
        while (v >= 0x80) { o.Add((byte)(v | 0x80)); v >>= 7; }
        o.Add((byte)v);
        return o.ToArray();
    }

    static ulong ReadVarint(byte[] b, ref int p)
    {
        ulong v = 0;
        for (int s = 0; ; s += 7) { byte x = b[p++]; v |= (ulong)(x & 0x7F) << s; if (x < 0x80) return v; }
    }

    /// <summary>[start, end) of the first length-delimited `field` inside [begin, end).</summary>
    static (int Start, int End)? Find(byte[] b, int begin, int end, int field)
    {
        int p = begin;
        while (p < end)
        {
            ulong key = ReadVarint(b, ref p);
            int wire = (int)(key & 7);
            if (wire == 2)
            {
                int len = (int)ReadVarint(b, ref p);
                if ((int)(key >> 3) == field) return (p, p + len);
                p += len;
            }
            else if (wire == 0) ReadVarint(b, ref p);
            else p += wire == 5 ? 4 : 8;
        }
        return null;
    }

    [Fact]
    public void PieceOf100000Characters_IsOneError_NotACrash()
    {
        byte[] inner = [0x0A, .. Varint(100_000), .. Enumerable.Repeat((byte)'a', 100_000), 0x15, .. BitConverter.GetBytes(-5f)];
        byte[] model = [.. Spiece, 0x0A, .. Varint((ulong)inner.Length), .. inner];   // one more repeated `pieces` entry
        var e = Assert.Throws<InvalidValueException>(() => T5Tokenizer.FromBytes(model, "long.model"));
        Assert.Contains("expected at most 1024", e.Message);
    }

    [Fact]
    public void GarbledNormalizerTable_EncodesOrIsOneError_NeverAnotherException()
    {
        var original = Spiece;
        var normalizer = Find(original, 0, original.Length, 3) ?? throw new InvalidDataException("no normalizer_spec");
        var table = Find(original, normalizer.Start, normalizer.End, 2) ?? throw new InvalidDataException("no precompiled_charsmap");
        Assert.True(table.End - table.Start > 16);
        for (int seed = 0; seed < 12; seed++)
        {
            var b = (byte[])original.Clone();
            var rng = new Random(seed);
            int n = seed < 6 ? 4 : table.End - table.Start;   // a few bytes, or the whole table
            for (int i = 0; i < n; i++) b[table.Start + rng.Next(table.End - table.Start)] = (byte)rng.Next(256);
            try
            {
                var tok = T5Tokenizer.FromBytes(b, $"garbled{seed}.model");
                tok.Encode("A red fox, jumping over the ｌａｚｙ dog ½ — ﬁne");
            }
            catch (InvalidValueException e) { Assert.DoesNotContain('\n', e.Message); }   // any other exception fails the test
        }
    }
}
