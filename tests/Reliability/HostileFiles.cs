// Builders of hostile inputs for the reliability tests: a checkpoint with one value changed (shape, dtype,
// metadata, tensor set, a NaN), written next to the test; and the check every bad input must pass —
// exit 2, exactly one "error:" line naming what was expected, no stack trace, nothing left in the folder.
using System.Buffers.Binary;
using System.Text;
using System.Text.Json.Nodes;
using BlockDance.Transformer.IO;
using Xunit;

namespace BlockDance.Tests;

public sealed record TensorEntry(string Name, long[] Shape, float[] Data);

public static class HostileFiles
{
    /// <summary>The shipped demo model (models/dit_mnist.safetensors), found from the test folder upwards.</summary>
    public static string DemoModel => Shipped("models/dit_mnist.safetensors");

    public static string Shipped(string relative)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
            if (File.Exists(Path.Combine(d.FullName, relative))) return Path.Combine(d.FullName, relative);
        throw new FileNotFoundException(relative);
    }

    public static (List<TensorEntry> Tensors, Dictionary<string, string> Metadata) Read(string path)
    {
        using var f = SafeTensorsFile.Open(path);
        return (f.Tensors.Select(t => new TensorEntry(t.Name, t.Shape, f.ReadFloat32(t.Name))).ToList(), f.Metadata.ToDictionary());
    }

    public static string Write(string dir, string name, IEnumerable<TensorEntry> tensors, IReadOnlyDictionary<string, string> metadata)
    {
        var path = Path.Combine(dir, name);
        SafeTensorsWriter.Write(path, tensors.Select(t => (t.Name, t.Shape, t.Data)), metadata);
        return path;
    }

    /// <summary>A copy of `path` whose header is rewritten by `edit` (the data bytes stay as they are).</summary>
    public static string EditHeader(string path, string dir, string name, Action<JsonObject> edit)
    {
        var bytes = File.ReadAllBytes(path);
        long n = (long)BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        var header = JsonNode.Parse(Encoding.UTF8.GetString(bytes, 8, (int)n))!.AsObject();
        edit(header);
        var text = Encoding.UTF8.GetBytes(header.ToJsonString());
        int padded = (text.Length + 7) / 8 * 8;
        var o = new byte[8 + padded + (bytes.Length - 8 - n)];
        BinaryPrimitives.WriteUInt64LittleEndian(o, (ulong)padded);
        text.CopyTo(o, 8);
        for (int i = 8 + text.Length; i < 8 + padded; i++) o[i] = (byte)' ';
        Array.Copy(bytes, 8 + n, o, 8 + padded, bytes.Length - 8 - n);
        var outPath = Path.Combine(dir, name);
        File.WriteAllBytes(outPath, o);
        return outPath;
    }

    /// <summary>Bad input: exit 2, one error line (log lines "[blockdance] …" aside) containing `expected`, no stack trace.</summary>
    public static void AssertOneLineError(int code, string stderr, string expected)
    {
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Where(l => !l.StartsWith("[blockdance]") && !l.StartsWith("[#") && !l.StartsWith("[.")).ToList();   // log and progress lines
        Assert.True(code == 2, $"exit {code}, expected 2: {stderr}");
        Assert.True(lines.Count == 1 && lines[0].StartsWith("error: "), $"expected one error line, found: {stderr}");
        Assert.DoesNotContain("   at ", stderr);
        Assert.Contains(expected, lines[0]);
    }
}
