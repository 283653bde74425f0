// Core code states facts in its own words ("guidance scale: expected ≥ 1, found 0.5"); the program knows
// which flag set the value. An InputException naming a field (InputException.Field, or the What of an
// InvalidValueException) that one of the running command's options declares (Opt.Fields) is reported as
// "--cfg (guidance scale): expected ≥ 1, found 0.5". Anything else passes through unchanged.
using BlockDance.Kernels;

namespace BlockDance.Sampler.Cli;

public static class FlagErrors
{
    /// <summary>The error in the words of the flag it came from, or null when no option of the command claims its field.</summary>
    public static UsageException? Attribute(string command, InputException e)
    {
        if (e is UsageException) return null;
        var field = e.Field ?? (e as InvalidValueException)?.What;
        if (field is null) return null;
        var opt = CommandTable.All.Where(s => s.Name == command).SelectMany(s => s.Options)
            .FirstOrDefault(o => o.Fields.Contains(field, StringComparer.OrdinalIgnoreCase));
        if (opt is null || e.Message.StartsWith(opt.Flag, StringComparison.Ordinal)) return null;
        // "guidance scale: expected …" → "--cfg (guidance scale): expected …"; "noise: …" under --noise → "--noise: …"
        var label = string.Equals(field, opt.Name, StringComparison.OrdinalIgnoreCase) ? opt.Flag : $"{opt.Flag} ({field})";
        return new UsageException(e.Message.StartsWith(field + ":", StringComparison.OrdinalIgnoreCase)
            ? label + e.Message[field.Length..] : $"{label}: {e.Message}", e);
    }
}
