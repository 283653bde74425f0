// Seeded fuzzing of the shipped demo model's VALUES (the safetensors tests fuzz the structure): each case
// changes one thing — a shape (same byte size, so it reaches the model's checks, or not), a dtype, the
// num_heads metadata, the tensor set (a tensor removed, renamed to another block index, a 7th block), or the
// data bytes (a NaN/±Inf written into a weight, a random bit flipped) — and runs `sample` on it. The oracle
// knows which mutations leave a usable model (a positive divisor of D as num_heads, a bit flip that keeps
// the value finite, a complete 7th block); for those the run must exit 0 with a PNG, for all others it must exit 2 with exactly
// one error line. Never a crash (an exception escaping Main), never a hang (60 s per case), never an exit 0
// on an invalid model, never a file left behind but the requested output.
using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class ModelFuzzTests(ITestOutputHelper output)
{
    const int Seed = 13, HeaderCases = 28;
    const int D = 96;   // the demo model's hidden size

    sealed record Case(string What, JsonObject Header, byte[] Data, bool Valid);

    [Fact]
    public async Task MutatedDemoModel_GivesOneLineErrors_OrValidSamples_NeverACrashHangOrLeftover()
    {
        var bytes = File.ReadAllBytes(HostileFiles.DemoModel);
        int n = (int)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, n))!.AsObject();
        var data = bytes[(8 + n)..];
        var rng = new Random(Seed);
        var cases = new List<Case>();
        for (int i = 0; i < HeaderCases; i++) cases.Add(HeaderMutation(i % 7, header, data, rng));
        for (int i = 0; i < 4; i++) cases.Add(NonFiniteValue(header, data, rng));
        for (int i = 0; i < 2; i++) cases.Add(BitFlip(header, data, rng));
        foreach (var h in new[] { "2", "8" }) cases.Add(Heads(header, data, h));

        var dir = CliRunner.TempDir();
        int valid = 0;
        foreach (var c in cases)
        {
            var model = Path.Combine(dir, "model.safetensors");
            File.WriteAllBytes(model, Serialize(c.Header, c.Data));
            var png = Path.Combine(dir, "x.png");
            var run = Task.Run(() => CliRunner.Run("sample", "--model", model, "--device", "cpu", "--steps", "1", "--class", "0", "--cfg", "1", "--out", png));
            Assert.True(await Task.WhenAny(run, Task.Delay(TimeSpan.FromSeconds(60))) == run, $"{c.What}: no answer in 60 s (a hang)");
            if (run.Exception is { } e) Assert.Fail($"{c.What}: crashed with {e.InnerException!.GetType().Name}: {e.InnerException.Message}");
            var (code, _, err) = await run;
            output.WriteLine($"{c.What} → exit {code} {err.Split('\n').FirstOrDefault(l => l.StartsWith("error:"))}");
            if (c.Valid)
            {
                Assert.True(code == 0, $"{c.What}: a usable model, expected exit 0, found {code}: {err}");
                Assert.True(File.Exists(png), $"{c.What}: no image written");
                File.Delete(png);
                valid++;
            }
            else
            {
                Assert.True(code == 2, $"{c.What}: an invalid model, expected exit 2, found {code}: {err}");
                HostileFiles.AssertOneLineError(code, err, "");
            }
            Assert.Equal([model], Directory.GetFileSystemEntries(dir));   // nothing else: no output, no temporary file
        }
        Assert.InRange(valid, 4, cases.Count - 20);   // the oracle exercises both outcomes
    }

    static Case HeaderMutation(int kind, JsonObject original, byte[] data, Random rng)
    {
        var h = original.DeepClone().AsObject();
        var names = h.Select(kv => kv.Key).Where(k => k != "__metadata__").ToList();
        var name = names[rng.Next(names.Count)];
        var entry = h[name]!.AsObject();
        var shape = entry["shape"]!.AsArray().Select(x => (long)x!).ToArray();
        switch (kind)
        {
            case 0:   // reshape keeping the element count: the bytes still fit, the model's shape checks must catch it
            {
                long numel = shape.Aggregate(1L, (a, b) => a * b);
                long[] s = rng.Next(3) switch { 0 => [numel], 1 => [1, .. shape], _ => shape.Reverse().ToArray() };
                if (s.SequenceEqual(shape)) s = [1, .. shape];
                entry["shape"] = new JsonArray(s.Select(x => (JsonNode)x).ToArray());
                return new($"reshape {name} {Fmt(shape)}→{Fmt(s)}", h, data, false);
            }
            case 1:   // one dimension changed
            {
                int d = rng.Next(shape.Length == 0 ? 1 : shape.Length);
                long[] choices = [0, 1, 2, 7, 1L << 31, 1L << 40];
                var s = shape.Length == 0 ? new long[] { 3 } : (long[])shape.Clone();
                if (shape.Length > 0) s[d] = choices.First(v => v != shape[d] && rng.Next(2) == 0 || v == choices[^1]);
                entry["shape"] = new JsonArray(s.Select(x => (JsonNode)x).ToArray());
                return new($"dim {name} {Fmt(shape)}→{Fmt(s)}", h, data, s.SequenceEqual(shape));
            }
            case 2:   // dtype
            {
                string[] dtypes = ["I32", "U32", "F16", "BF16", "F64", "I64", "BOOL", "U8", "I8", "F8_E4M3", "Q4"];
                var t = dtypes[rng.Next(dtypes.Length)];
                entry["dtype"] = t;
                return new($"dtype {name} F32→{t}", h, data, false);
            }
            case 3:   // num_heads metadata
            {
                string[] values = ["0", "-4", "5", "7", "abc", "", "1e3", "2147483648", "-96", "97", "4.0"];
                var v = values[rng.Next(values.Length)];
                h["__metadata__"]!["num_heads"] = v;
                return new($"num_heads '{v}'", h, data, false);
            }
            case 4:   // a tensor removed with its bytes (every one of the 72 is needed); or num_heads removed (no preset has depth 6, D 96)
            {
                if (rng.Next(4) == 0)
                {
                    h["__metadata__"]!.AsObject().Remove("num_heads");
                    return new("num_heads removed", h, data, false);
                }
                var (b, e) = Offsets(h, name);
                h.Remove(name);
                foreach (var k in names.Where(k => k != name))
                {
                    var (kb, ke) = Offsets(h, k);
                    if (kb >= e) h[k]!["data_offsets"] = new JsonArray(kb - (e - b), ke - (e - b));
                }
                return new($"removed {name}", h, [.. data[..(int)b], .. data[(int)e..]], false);
            }
            case 5:   // a block tensor moved to another block index
            {
                var blocks = names.Where(k => k.StartsWith("blocks.")).ToList();
                var b = blocks[rng.Next(blocks.Count)];
                string[] to = ["6", "7", "9", "99", "100001", "-1", "x", "02"];
                var moved = "blocks." + to[rng.Next(to.Length)] + b[b.IndexOf('.', 7)..];
                var e = h[b]!.DeepClone();
                h.Remove(b);
                h[moved] = e;
                return new($"renamed {b}→{moved}", h, data, false);
            }
            default:  // a 7th block: a copy of block 5's tensors (all of them: a valid 7-block model; one: an incomplete block)
            {
                bool whole = rng.Next(3) == 0;
                var copy = whole ? names.Where(k => k.StartsWith("blocks.5.")).ToList()
                                 : [names.Where(k => k.StartsWith("blocks.5.")).ElementAt(rng.Next(10))];
                var extra = new List<byte>();
                foreach (var k in copy)
                {
                    var (b, e) = Offsets(h, k);
                    var entry6 = h[k]!.DeepClone().AsObject();
                    entry6["data_offsets"] = new JsonArray(data.Length + extra.Count, data.Length + extra.Count + (e - b));
                    extra.AddRange(data[(int)b..(int)e]);
                    h["blocks.6." + k["blocks.5.".Length..]] = entry6;
                }
                return new(whole ? "block 6 = copy of block 5" : $"block 6 with only {copy[0]}'s copy", h, [.. data, .. extra], whole);
            }
        }
    }

    static (long Begin, long End) Offsets(JsonObject h, string name)
    {
        var off = h[name]!["data_offsets"]!.AsArray();
        return ((long)off[0]!, (long)off[1]!);
    }

    /// <summary>A NaN or ±Inf written into one element of a random tensor.</summary>
    static Case NonFiniteValue(JsonObject header, byte[] data, Random rng)
    {
        var (name, begin, end) = RandomTensor(header, rng);
        var d = (byte[])data.Clone();
        float[] bad = [float.NaN, float.PositiveInfinity, float.NegativeInfinity];
        var v = bad[rng.Next(bad.Length)];
        long at = begin + 4L * rng.NextInt64((end - begin) / 4);
        BinaryPrimitives.WriteSingleLittleEndian(d.AsSpan((int)at), v);
        return new($"{v} in {name}", header, d, false);
    }

    /// <summary>One random bit flipped in the data: valid exactly when the value stays finite.</summary>
    static Case BitFlip(JsonObject header, byte[] data, Random rng)
    {
        var (name, begin, end) = RandomTensor(header, rng);
        var d = (byte[])data.Clone();
        long at = begin + 4L * rng.NextInt64((end - begin) / 4);
        int bit = rng.Next(31);   // sign and mantissa and exponent bits, not always the exponent's top
        uint u = BinaryPrimitives.ReadUInt32LittleEndian(d.AsSpan((int)at)) ^ (1u << bit);
        BinaryPrimitives.WriteUInt32LittleEndian(d.AsSpan((int)at), u);
        float f = BitConverter.UInt32BitsToSingle(u);
        return new($"bit {bit} of {name} → {f}", header, d, float.IsFinite(f));
    }

    static Case Heads(JsonObject original, byte[] data, string heads)
    {
        var h = original.DeepClone().AsObject();
        h["__metadata__"]!["num_heads"] = heads;
        return new($"num_heads '{heads}' (a divisor of {D})", h, data, D % int.Parse(heads) == 0);
    }

    static (string Name, long Begin, long End) RandomTensor(JsonObject header, Random rng)
    {
        var names = header.Select(kv => kv.Key).Where(k => k != "__metadata__").ToList();
        var name = names[rng.Next(names.Count)];
        var off = header[name]!["data_offsets"]!.AsArray();
        return (name, (long)off[0]!, (long)off[1]!);
    }

    static byte[] Serialize(JsonObject header, byte[] data)
    {
        var text = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (text.Length + 7) / 8 * 8;
        var o = new byte[8 + padded + data.Length];
        BinaryPrimitives.WriteUInt64LittleEndian(o, (ulong)padded);
        text.CopyTo(o, 8);
        o.AsSpan(8 + text.Length, padded - text.Length).Fill((byte)' ');
        data.CopyTo(o, 8 + padded);
        return o;
    }

    static string Fmt(long[] s) => $"[{string.Join(",", s)}]";
}
