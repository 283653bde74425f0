// Seeded fuzzing of SafeTensorsFile: start from a valid file (F32/F16/BF16 tensors, a scalar, a
// zero-size tensor, metadata), mutate it thousands of ways, and open + read each result. The claim:
// whatever the bytes, the only exception that ever comes out is SafeTensorsException, with a one-line
// message naming the file. Anything else (IndexOutOfRange, Overflow, OutOfMemory, JsonException, ...)
// fails the test with the seed and mutation index, so a failure reproduces exactly.
//
// Mutations run in memory through SafeTensorsFile.OpenBytes (same validation as Open); a smaller
// run goes through real files to cover the file-handle path.

using System.Buffers.Binary;
using System.Diagnostics;
using System.Text;
using System.Text.RegularExpressions;
using BlockDance.Transformer.IO;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests.SafeTensors;

public sealed class SafeTensorsFuzzTests(ITestOutputHelper output)
{
    // 3 seeds × 4,000 = 12,000 in-memory mutations per run.
    private const int MutationsPerSeed = 4_000;
    private const int OnDiskMutations = 300;

    private enum Kind
    {
        FlipAnyBytes, FlipHeaderBytes, SetLengthField, Truncate, AppendBytes,   // byte-level
        EditNumber, DuplicateEntry, DuplicateField, RenameEntry, ChangeDtype,   // JSON-level
        RemoveStructuralChar, InsertChar, DeleteSpan, Stacked,
    }

    private static readonly Kind[] Kinds = Enum.GetValues<Kind>();

    private static readonly string[] NumberReplacements =
    [
        "0", "1", "2", "3", "-1", "-0", "1.5", "1e3", "255", "65536", "100000000", "100000001",
        "2147483647", "2147483648", "4294967296", "4611686018427387904", "9223372036854775807",
        "9223372036854775808", "18446744073709551615", "18446744073709551616", "99999999999999999999999999999",
    ];

    private static readonly string[] DtypeReplacements =
        ["F32", "F16", "BF16", "F64", "I64", "I32", "U8", "I8", "BOOL", "F4", "F6_E2M3", "F8_E4M3", "U64", "C64", "X", "", "f32"];

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void RandomMutations_OnlyEverThrowSafeTensorsException(int seed)
    {
        var rng = new Random(seed);
        var (header, data, pad) = BuildValid(rng);
        var stopwatch = Stopwatch.StartNew();

        string baseName = $"fuzz-{seed}-base.safetensors";
        Assert.True(Exercise(() => SafeTensorsFile.OpenBytes(SafeTensorsBytes.Build(header, data, pad), baseName)), "the unmutated file must open");

        var accepted = new int[Kinds.Length];
        var rejected = new int[Kinds.Length];
        for (int i = 0; i < MutationsPerSeed; i++)
        {
            Kind kind = Kinds[rng.Next(Kinds.Length)];
            byte[] bytes = Mutate(rng, kind, header, data, pad);
            string name = $"fuzz-{seed}-{i}.safetensors";
            bool opened = Run(seed, i, kind, bytes, name, () => SafeTensorsFile.OpenBytes(bytes, name));
            (opened ? accepted : rejected)[(int)kind]++;
        }

        output.WriteLine($"seed {seed}: {MutationsPerSeed} mutations in {stopwatch.ElapsedMilliseconds} ms " +
                         $"({accepted.Sum()} still valid, {rejected.Sum()} rejected)");
        foreach (Kind k in Kinds) output.WriteLine($"  {k,-20} valid {accepted[(int)k],5}  rejected {rejected[(int)k],5}");
        // The fuzzer must reach both outcomes, or it is not exercising the reader.
        Assert.True(accepted.Sum() > 0 && rejected.Sum() > 0);
    }

    [Theory]
    [InlineData(7)]
    public void RandomMutationsOnDisk_OnlyEverThrowSafeTensorsException(int seed)
    {
        string dir = Directory.CreateTempSubdirectory("blockdance-safetensors-fuzz-").FullName;
        try
        {
            var rng = new Random(seed);
            var (header, data, pad) = BuildValid(rng);
            for (int i = 0; i < OnDiskMutations; i++)
            {
                Kind kind = Kinds[rng.Next(Kinds.Length)];
                string path = Path.Combine(dir, $"fuzz-{seed}-{i}.safetensors");
                File.WriteAllBytes(path, Mutate(rng, kind, header, data, pad));
                Run(seed, i, kind, File.ReadAllBytes(path), path, () => SafeTensorsFile.Open(path));
            }
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    /// <summary>Opens and reads; true if it opened. Fails the test on any non-SafeTensorsException.</summary>
    private static bool Run(int seed, int index, Kind kind, byte[] bytes, string name, Func<SafeTensorsFile> open)
    {
        try
        {
            return Exercise(open);
        }
        catch (SafeTensorsException ex)
        {
            if (!ex.Message.StartsWith(name, StringComparison.Ordinal) || ex.Message.Contains('\n'))
                Assert.Fail($"seed {seed}, mutation {index} ({kind}): message must be one line starting with the file name, got: {ex.Message}");
            return false;
        }
        catch (Exception ex)
        {
            Assert.Fail($"seed {seed}, mutation {index} ({kind}): {ex.GetType().Name}: {ex.Message}\n" +
                        $"header bytes: {Encoding.UTF8.GetString(bytes.AsSpan(0, Math.Min(bytes.Length, 400)))}\n{ex.StackTrace}");
            return false;
        }
    }

    /// <summary>Opens the file and reads every tensor; a tensor of a non-float dtype may throw SafeTensorsException.</summary>
    private static bool Exercise(Func<SafeTensorsFile> open)
    {
        using var file = open();
        _ = file.Metadata.Count;
        foreach (TensorInfo t in file.Tensors)
        {
            Assert.True(file.Contains(t.Name));
            try
            {
                float[] values = file.ReadFloat32(t.Name, t.Shape);
                Assert.Equal(t.Numel, values.Length);
            }
            catch (SafeTensorsException) when (t.DType is not ("F32" or "F16" or "BF16" or "F64" or "I64" or "I32"))
            {
            }
        }
        return true;
    }

    /// <summary>A valid file: 3–5 random F32/F16/BF16 tensors, a scalar and a zero-size tensor, metadata.</summary>
    private static (string Header, byte[] Data, bool Pad) BuildValid(Random rng)
    {
        var entries = new List<string>();
        var data = new List<byte>();
        int count = rng.Next(3, 6);
        for (int i = 0; i < count + 2; i++)
        {
            string dtype = i == count ? "F32" : new[] { "F32", "F16", "BF16" }[rng.Next(3)];
            long[] shape = i == count ? [] : i == count + 1 ? [2, 0] : Enumerable.Range(0, rng.Next(1, 4)).Select(_ => (long)rng.Next(1, 6)).ToArray();
            int bytes = (int)SafeTensorsFile.CheckedNumel(shape) * (dtype == "F32" ? 4 : 2);
            var raw = new byte[bytes];
            rng.NextBytes(raw);
            entries.Add(SafeTensorsBytes.Entry($"blocks.{i}.w", dtype, $"[{string.Join(",", shape)}]", data.Count, data.Count + bytes));
            data.AddRange(raw);
        }
        entries.Add("\"__metadata__\":{\"format\":\"pt\",\"model\":\"DiT-XL/2\"}");
        // The header lists entries in any order; the data order is fixed by the offsets.
        string header = "{" + string.Join(",", entries.OrderBy(_ => rng.Next())) + "}";
        return (header, data.ToArray(), Pad: rng.Next(2) == 0);
    }

    private static byte[] Mutate(Random rng, Kind kind, string header, byte[] data, bool pad)
    {
        byte[] file = SafeTensorsBytes.Build(header, data, pad);
        int headerEnd = 8 + (int)BinaryPrimitives.ReadUInt64LittleEndian(file);
        switch (kind)
        {
            case Kind.FlipAnyBytes:
            case Kind.FlipHeaderBytes:
                int limit = kind == Kind.FlipAnyBytes ? file.Length : headerEnd;
                for (int k = rng.Next(1, 5); k > 0; k--) file[rng.Next(limit)] ^= (byte)rng.Next(1, 256);
                return file;
            case Kind.SetLengthField:
                ulong[] lengths = [0, 1, 7, 8, (ulong)headerEnd - 9, (ulong)headerEnd - 7, (ulong)file.Length - 8,
                    (ulong)file.Length, 100_000_000, 100_000_001, uint.MaxValue, long.MaxValue, ulong.MaxValue, (ulong)rng.NextInt64()];
                BinaryPrimitives.WriteUInt64LittleEndian(file, lengths[rng.Next(lengths.Length)]);
                return file;
            case Kind.Truncate:
                return file[..rng.Next(file.Length)];
            case Kind.AppendBytes:
                var extra = new byte[rng.Next(1, 17)];
                rng.NextBytes(extra);
                return [.. file, .. extra];
            case Kind.Stacked:
                byte[] edited = Mutate(rng, Kinds[rng.Next((int)Kind.EditNumber, (int)Kind.Stacked)], header, data, pad);
                for (int k = rng.Next(1, 3); k > 0 && edited.Length > 0; k--) edited[rng.Next(edited.Length)] ^= (byte)rng.Next(1, 256);
                return edited;
            default:
                string text = EditHeader(rng, kind, header);
                // Mostly keep the length field consistent with the edited header, sometimes not.
                ulong? lengthField = rng.Next(4) == 0 ? (ulong)(headerEnd - 8) : null;
                return SafeTensorsBytes.Build(text, data, pad && rng.Next(4) != 0, lengthField);
        }
    }

    private static string EditHeader(Random rng, Kind kind, string header)
    {
        switch (kind)
        {
            case Kind.EditNumber:
                return ReplaceRandomMatch(rng, header, @"-?\d+", _ =>
                    rng.Next(5) == 0 ? rng.Next(0, 200).ToString() : NumberReplacements[rng.Next(NumberReplacements.Length)]);
            case Kind.DuplicateEntry: // "name":{...} inserted again at the start
                var entries = Regex.Matches(header, "\"[^\"]*\":\\{[^{}]*\\}");
                return entries.Count == 0 ? header : header.Insert(1, entries[rng.Next(entries.Count)].Value + ",");
            case Kind.DuplicateField:
                var fields = Regex.Matches(header, "\"(dtype|shape|data_offsets|format)\":(\"[^\"]*\"|\\[[^\\]]*\\])");
                if (fields.Count == 0) return header;
                Match f = fields[rng.Next(fields.Count)];
                return header.Insert(f.Index + f.Length, "," + f.Value);
            case Kind.RenameEntry:
                string[] names = ["blocks.0.w", "blocks.1.w", "__metadata__", "", "w\\ud800", "w\\u0000", "é", "\\\""];
                return ReplaceRandomMatch(rng, header, "\"blocks\\.\\d+\\.w\"", _ => $"\"{names[rng.Next(names.Length)]}\"");
            case Kind.ChangeDtype:
                return ReplaceRandomMatch(rng, header, "\"dtype\":\"[^\"]*\"",
                    _ => $"\"dtype\":\"{DtypeReplacements[rng.Next(DtypeReplacements.Length)]}\"");
            case Kind.RemoveStructuralChar:
                for (int k = rng.Next(1, 4); k > 0; k--)
                    header = ReplaceRandomMatch(rng, header, "[{}\\[\\]:,\"]", _ => "");
                return header;
            case Kind.InsertChar:
                const string chars = "{}[]:,\" -.0123456789eE\\aé\t\u0001";
                return header.Insert(rng.Next(header.Length + 1), chars[rng.Next(chars.Length)].ToString());
            case Kind.DeleteSpan:
                int start = rng.Next(header.Length);
                return header.Remove(start, Math.Min(rng.Next(1, 21), header.Length - start));
            default:
                throw new UnreachableException(kind.ToString());
        }
    }

    private static string ReplaceRandomMatch(Random rng, string text, string pattern, Func<Match, string> replacement)
    {
        var matches = Regex.Matches(text, pattern);
        if (matches.Count == 0) return text;
        Match m = matches[rng.Next(matches.Count)];
        return string.Concat(text.AsSpan(0, m.Index), replacement(m), text.AsSpan(m.Index + m.Length));
    }
}
