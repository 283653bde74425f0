// A small command-line parser: `--name value` options and `--flag` switches, declared per command.
// Anything undeclared, missing a value, or out of range is a UsageException (exit code 2, one line).
using System.Globalization;

namespace BlockDance.Sampler.Cli;

/// <summary>Bad input from the user: printed as one line, exit code 2, no stack trace.</summary>
public sealed class UsageException(string message) : BlockDance.Kernels.InputException(message);

public sealed class Args
{
    readonly Dictionary<string, string> values = new();
    readonly HashSet<string> flags = new();
    public List<string> Positional { get; } = new();

    /// <param name="withValue">options that take a value, e.g. "model", "steps"</param>
    /// <param name="switches">options without a value, e.g. "quick"</param>
    /// <param name="positional">how many plain arguments the command takes (inspect: its FILE); one more is rejected
    /// here, the same way for every command</param>
    public static Args Parse(string command, IEnumerable<string> argv, IEnumerable<string> withValue, IEnumerable<string>? switches = null,
        int positional = 0)
    {
        var known = new HashSet<string>(withValue);
        var sw = new HashSet<string>(switches ?? []);
        var a = new Args();
        var list = argv.ToList();
        // --help (or -h) anywhere: the command's options with defaults and ranges, exit 0 — unless the command
        // declares its own help switch.
        if (!sw.Contains("help") && list.Any(x => x is "--help" or "-h"))
            throw new HelpRequested(OptionHelp.For(command, known, sw, positional));
        for (int i = 0; i < list.Count; i++)
        {
            var s = list[i];
            if (!s.StartsWith("--")) { a.Positional.Add(s); continue; }
            var name = s[2..];
            string? inline = null;
            int eq = name.IndexOf('=');
            if (eq >= 0) { inline = name[(eq + 1)..]; name = name[..eq]; }
            if (sw.Contains(name)) { a.flags.Add(name); continue; }
            if (!known.Contains(name))
                throw new UsageException($"{command}: unknown option '--{name}'" +
                    (OptionHelp.Suggest(name, known.Concat(sw)) is string near ? $" (did you mean '--{near}'?)" : "") + $"; expected one of {string.Join(", ", known.Concat(sw).Order().Select(k => "--" + k))}");
            var v = inline ?? (i + 1 < list.Count ? list[++i] : throw new UsageException($"{command}: option '--{name}' expects a value"));
            a.values[name] = v;
        }
        if (a.Positional.Count > positional)
            throw new UsageException($"{command}: unexpected argument '{a.Positional[positional]}'" +
                                     (positional == 0 ? "; expected only --options" : $"; expected {positional} argument(s)"));
        return a;
    }

    public bool Has(string name) => values.ContainsKey(name) || flags.Contains(name);
    public bool Flag(string name) => flags.Contains(name);
    public string? Get(string name) => values.GetValueOrDefault(name);
    public string Get(string name, string dflt) => values.GetValueOrDefault(name) ?? dflt;

    public int GetInt(string name, int dflt, int min = int.MinValue, int max = int.MaxValue)
    {
        if (!values.TryGetValue(name, out var s)) return dflt;
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
            throw new UsageException($"--{name}: expected an integer, found '{s}'");
        if (v < min || v > max) throw new UsageException($"--{name}: expected {min}..{max}, found {v}");
        return v;
    }

    public double GetDouble(string name, double dflt, double min = double.NegativeInfinity, double max = double.PositiveInfinity)
    {
        if (!values.TryGetValue(name, out var s)) return dflt;
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
            throw new UsageException($"--{name}: expected a finite number, found '{s}'");
        if (v < min || v > max) throw new UsageException($"--{name}: expected a value in [{min}, {max}], found {s}");
        return v;
    }

    public T GetChoice<T>(string name, T dflt, params (string text, T value)[] choices)
    {
        if (!values.TryGetValue(name, out var s)) return dflt;
        foreach (var (text, value) in choices) if (text == s) return value;
        throw new UsageException($"--{name}: expected {string.Join(" or ", choices.Select(c => c.text))}, found '{s}'");
    }

    public List<int> GetIntList(string name)
    {
        var s = values[name];
        var list = new List<int>();
        foreach (var part in s.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
                throw new UsageException($"--{name}: expected a comma-separated list of integers, found '{part}' in '{s}'");
            list.Add(v);
        }
        return list;
    }

    public List<double> GetDoubleList(string name, int count)
    {
        var s = values[name];
        var parts = s.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length != count) throw new UsageException($"--{name}: expected {count} comma-separated numbers, found '{s}'");
        return parts.Select(p => double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v)
            ? v : throw new UsageException($"--{name}: expected a finite number, found '{p}' in '{s}'")).ToList();
    }
}
