namespace BlockDance.Transformer.IO;

/// <summary>
/// The only error type <see cref="SafeTensorsFile"/> throws for a bad, missing or unreadable file.
/// The message is one line, "file: tensor 'name': what was expected, what was found", e.g.
/// <c>model.safetensors: tensor 'blocks.0.attn.qkv.weight': data_offsets [0, 100] span 100 bytes,
/// expected 3456 = numel 864 × 4 (F32)</c>.
/// </summary>
public sealed class SafeTensorsException : BlockDance.Kernels.InputException
{
    /// <summary>The file as it was named to <see cref="SafeTensorsFile.Open"/>.</summary>
    public string FilePath { get; }

    /// <summary>The tensor the error is about, or null when it concerns the whole file.</summary>
    public string? TensorName { get; }

    public SafeTensorsException(string filePath, string? tensorName, string detail, Exception? inner = null)
        : base(Format(filePath, tensorName, detail), inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    private static string Format(string filePath, string? tensorName, string detail)
    {
        string where = tensorName is null ? filePath : $"{filePath}: tensor {Quote(tensorName)}";
        return OneLine($"{where}: {detail}");
    }

    /// <summary>
    /// A name as it appears in messages: in single quotes, control characters escaped (a name can hold
    /// any JSON string, "\n" included, and the message must stay on one line), and cut at 200 chars.
    /// </summary>
    internal static string Quote(string name)
    {
        const int MaxChars = 200;
        var sb = new System.Text.StringBuilder(Math.Min(name.Length, MaxChars) + 2);
        sb.Append('\'');
        foreach (char c in name.Length > MaxChars ? name[..MaxChars] : name)
        {
            if (char.IsControl(c)) sb.Append($"\\u{(int)c:x4}");
            else sb.Append(c);
        }
        if (name.Length > MaxChars) sb.Append("...");
        sb.Append('\'');
        return sb.ToString();
    }

    /// <summary>Folds line breaks (e.g. from a wrapped IOException or JsonException) into spaces.</summary>
    internal static string OneLine(string text) =>
        text.Replace("\r\n", " ").Replace('\n', ' ').Replace('\r', ' ');
}
