// The one gate every input file passes before it is read: configs, tokenizer files, manifests, class lists,
// calibration and policy files (safetensors files take the same check in SafeTensorsFile.Open).
//   1. the path must name a regular file, asked of the OS before opening (FileKind): a FIFO would block the
//      open forever, /dev/zero or /dev/urandom never end;
//   2. its size must be at most a cap stated per kind of file, checked before reading a byte (a 4 GB
//      "config.json" is refused in microseconds instead of filling memory);
//   3. the read itself stops at the cap too, so a file that grows while it is read cannot exceed it.
// Every refusal is one InvalidValueException (bad input, exit 2) naming the file, what was expected and found.
using System.Text;
using System.Text.Json;
using BlockDance.Kernels;

namespace BlockDance.Transformer.IO;

public static class InputFile
{
    /// <summary>Cap for JSON configs: the largest real one (a T5-XXL weight index) is ~20 KB; 4 MiB leaves room.</summary>
    public const long MaxConfigBytes = 4 << 20;
    /// <summary>Cap for text lists (shard manifests, class lists, tables): 1,000,000 lines of ~60 bytes.</summary>
    public const long MaxListBytes = 64L << 20;

    /// <summary>One line (exit 2) unless `path` is a regular file of at most `maxBytes` bytes; returns its size.</summary>
    public static long Require(string path, string what, long maxBytes)
    {
        FileKind.RequireRegular(path, what);
        long size;
        try { size = new FileInfo(path).Length; }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidValueException($"{what} {path}", "a readable file", e.Message);
        }
        if (size > maxBytes)
            throw new InvalidValueException($"{what} {path}", $"a file of at most {Bytes(maxBytes)}", $"{Bytes(size)}");
        return size;
    }

    /// <summary>The bytes of a regular file of at most `maxBytes` (refused before opening otherwise).</summary>
    public static byte[] ReadBytes(string path, string what, long maxBytes)
    {
        Require(path, what, maxBytes);
        try
        {
            using var s = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete);
            using var m = new MemoryStream();
            var buf = new byte[1 << 16];
            int n;
            while ((n = s.Read(buf, 0, buf.Length)) > 0)
            {
                if (m.Length + n > maxBytes)
                    throw new InvalidValueException($"{what} {path}", $"a file of at most {Bytes(maxBytes)}", "a file that grew past it while read");
                m.Write(buf, 0, n);
            }
            return m.ToArray();
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new InvalidValueException($"{what} {path}", "a readable file", e.Message);
        }
    }

    /// <summary>UTF-8 text of a regular file of at most `maxBytes` (default: the config cap).</summary>
    public static string ReadText(string path, string what, long maxBytes = MaxConfigBytes) =>
        Encoding.UTF8.GetString(ReadBytes(path, what, maxBytes));

    /// <summary>The lines of a text list (manifest, class file, table), capped at MaxListBytes.</summary>
    public static string[] ReadLines(string path, string what, long maxBytes = MaxListBytes)
    {
        var lines = ReadText(path, what, maxBytes).Split('\n').Select(l => l.TrimEnd('\r')).ToList();
        if (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);   // the final newline
        return lines.ToArray();
    }

    /// <summary>A JSON document of at most MaxConfigBytes whose root is an object (a config file).</summary>
    public static JsonElement ReadJsonObject(string path, string what)
    {
        var text = QuotePythonLiterals(ReadText(path, what));
        JsonElement root;
        try
        {
            using var doc = JsonDocument.Parse(text, new JsonDocumentOptions { MaxDepth = 64 });
            root = doc.RootElement.Clone();
        }
        catch (JsonException e) { throw new InvalidValueException($"{what} {path}", "a JSON object", $"invalid JSON ({e.Message.Split('\n')[0]})"); }
        if (root.ValueKind != JsonValueKind.Object)
            throw new InvalidValueException($"{what} {path}", "a JSON object", $"a JSON {root.ValueKind.ToString().ToLowerInvariant()}");
        return root;
    }

    /// <summary>Python's json writes NaN, Infinity and -Infinity as bare words (diffusers' "lambda_min_clipped": -Infinity);
    /// they are not JSON. Outside strings they become the strings "NaN", "Infinity", "-Infinity", so the document parses and
    /// a numeric field holding one is refused by its type check (ConfigJson) rather than read.</summary>
    public static string QuotePythonLiterals(string text)
    {
        if (!text.Contains("Infinity") && !text.Contains("NaN")) return text;
        var o = new StringBuilder(text.Length + 16);
        bool inString = false;
        for (int i = 0; i < text.Length; i++)
        {
            char ch = text[i];
            if (inString)
            {
                o.Append(ch);
                if (ch == '\\' && i + 1 < text.Length) o.Append(text[++i]);
                else if (ch == '"') inString = false;
                continue;
            }
            if (ch == '"') { inString = true; o.Append(ch); continue; }
            string? word = null;
            foreach (var w in new[] { "-Infinity", "Infinity", "NaN" })
                if (string.CompareOrdinal(text, i, w, 0, w.Length) == 0) { word = w; break; }
            if (word != null) { o.Append('"').Append(word).Append('"'); i += word.Length - 1; }
            else o.Append(ch);
        }
        return o.ToString();
    }

    public static string Bytes(long n) => n >= 1 << 20 ? $"{n / 1048576.0:F1} MiB" : n >= 1024 ? $"{n / 1024.0:F1} KiB" : $"{n} bytes";
}
