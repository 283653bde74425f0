// A model part's config.json, read field by field against what the code supports. Every field the engine
// uses is asked for with its type and range (and, for names, the values implemented); a value of the wrong
// JSON type ("norm_type": 12, "activation_fn": null), out of range ("num_layers": 2147483647) or not
// implemented ("prediction_type": "v_prediction") is one ModelException — path, field, expected, found —
// before anything is computed from it. Absent fields take the default given by the caller (the diffusers /
// Hugging Face default); a JSON null counts as absent only where the caller says so (diffusers writes
// null for "use the default" in a few fields). Used by the PixArt, VAE, T5 and scheduler configs and by
// any new model part (one reader, one message format).
using System.Globalization;
using System.Text.Json;

namespace BlockDance.Transformer.IO;

public sealed class ConfigJson
{
    public string Path { get; }
    public JsonElement Root { get; }

    ConfigJson(string path, JsonElement root) { Path = path; Root = root; }

    /// <summary>Reads `path` through InputFile (regular file, size cap, a JSON object); `what` names it ("VAE config.json").</summary>
    public static ConfigJson Read(string path, string what) => new(path, InputFile.ReadJsonObject(path, what));

    public static ConfigJson FromElement(string path, JsonElement root) =>
        root.ValueKind == JsonValueKind.Object ? new(path, root)
            : throw new ModelException($"{path}: expected a JSON object, found a JSON {root.ValueKind.ToString().ToLowerInvariant()}");

    public ModelException Error(string key, string expected, string found) => new($"{Path}: \"{key}\": expected {expected}, found {found}");

    /// <summary>The field's value, or null when absent (or null and `nullIsAbsent`).</summary>
    public JsonElement? Get(string key, bool nullIsAbsent = false)
    {
        if (!Root.TryGetProperty(key, out var v)) return null;
        if (nullIsAbsent && v.ValueKind == JsonValueKind.Null) return null;
        return v;
    }

    public bool Has(string key) => Root.TryGetProperty(key, out _);

    /// <summary>An integer in [min, max]; `fallback` when absent (required when fallback is null).</summary>
    public int Int(string key, int min, int max, int? fallback = null, bool nullIsAbsent = false)
    {
        string range = min == max ? $"{min} (what the engine implements)" : $"an integer in {min}..{max}";
        if (Get(key, nullIsAbsent) is not JsonElement v)
            return fallback ?? throw Error(key, range, "no such field");
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt64(out long i))
            throw Error(key, range, Raw(v));
        if (i < min || i > max) throw Error(key, range, Raw(v));
        return (int)i;
    }

    /// <summary>A finite number in [min, max] (or (min, max] when `exclusiveMin`).</summary>
    public double Number(string key, double min, double max, double? fallback = null, bool exclusiveMin = false, bool nullIsAbsent = false)
    {
        string range = min == max ? $"{Fmt(min)} (what the engine implements)" : $"a number in {(exclusiveMin ? "(" : "[")}{Fmt(min)}, {Fmt(max)}]";
        if (Get(key, nullIsAbsent) is not JsonElement v)
            return fallback ?? throw Error(key, range, "no such field");
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetDouble(out double d) || !double.IsFinite(d))
            throw Error(key, range, Raw(v));
        if (d < min || d > max || (exclusiveMin && d == min)) throw Error(key, range, Raw(v));
        return d;
    }

    /// <summary>A string among `allowed` (the values the engine implements); `fallback` when absent.</summary>
    public string String(string key, string[] allowed, string? fallback = null, bool nullIsAbsent = false)
    {
        string expected = allowed.Length == 1 ? $"\"{allowed[0]}\"" : "one of " + string.Join(", ", allowed.Select(a => $"\"{a}\""));
        if (Get(key, nullIsAbsent) is not JsonElement v)
            return fallback ?? throw Error(key, expected, "no such field");
        if (v.ValueKind != JsonValueKind.String) throw Error(key, expected, Raw(v));
        var s = v.GetString()!;
        if (!allowed.Contains(s, StringComparer.Ordinal)) throw Error(key, expected + " (what the engine implements)", Raw(v));
        return s;
    }

    public bool Bool(string key, bool fallback, bool nullIsAbsent = false)
    {
        if (Get(key, nullIsAbsent) is not JsonElement v) return fallback;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error(key, "true or false", Raw(v)),
        };
    }

    /// <summary>Refuses a boolean field set to anything but `supported` (a feature the engine does not implement).</summary>
    public void RequireBool(string key, bool supported, string why)
    {
        if (Bool(key, supported, nullIsAbsent: true) != supported)
            throw Error(key, $"{(supported ? "true" : "false")} ({why})", (!supported).ToString().ToLowerInvariant());
    }

    /// <summary>An array of integers in [min, max], of 1..maxLength entries; null when absent.</summary>
    public int[]? IntArray(string key, int min, int max, int maxLength)
    {
        if (Get(key, nullIsAbsent: true) is not JsonElement v) return null;
        string expected = $"an array of 1..{maxLength} integers in {min}..{max}";
        if (v.ValueKind != JsonValueKind.Array) throw Error(key, expected, Raw(v));
        int n = v.GetArrayLength();
        if (n < 1 || n > maxLength) throw Error(key, expected, $"{n} entries");
        var o = new int[n];
        int k = 0;
        foreach (var e in v.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long i) || i < min || i > max) throw Error(key, expected, Raw(v));
            o[k++] = (int)i;
        }
        return o;
    }

    /// <summary>The JSON text of a value, shortened for a one-line message.</summary>
    public static string Raw(JsonElement v)
    {
        var t = v.GetRawText().Replace('\n', ' ').Replace('\r', ' ');
        return t.Length > 60 ? t[..57] + "…" : t;
    }

    static string Fmt(double d) => d.ToString("G6", CultureInfo.InvariantCulture).Replace("E", "e");
}
