// The parsed command line of one command, read by the command's body. Parsing is System.CommandLine
// over the command's declarations (CommandTable, Opt): anything undeclared, missing a value, or out of
// its declared range is a UsageException (exit code 2, one line) before the command runs. Getters
// return the given value or the declaration's default for the model kind (ForModel); a default that
// depends on the run (device, --quick) is passed by the command (GetInt(name, orElse)), never both.
using System.CommandLine;
using System.CommandLine.Parsing;

namespace BlockDance.Sampler.Cli;

/// <summary>Bad input from the user: printed as one line, exit code 2, no stack trace.</summary>
public sealed class UsageException(string message, Exception? inner = null) : BlockDance.Kernels.InputException(message, inner);

public sealed class Args
{
    readonly Dictionary<string, string> values;
    readonly HashSet<string> flags;
    readonly Dictionary<string, List<string>> repeated;
    public CommandSpec Spec { get; }
    public List<string> Positional { get; }
    /// <summary>The model kind whose defaults the getters return (DiT unless a command says otherwise).</summary>
    public ModelKind Kind { get; private init; } = ModelKind.DiT;

    Args(CommandSpec spec, Dictionary<string, string> values, HashSet<string> flags, List<string> positional,
        Dictionary<string, List<string>> repeated)
    {
        Spec = spec; this.values = values; this.flags = flags; Positional = positional; this.repeated = repeated;
    }

    /// <summary>The same command line read with the defaults of another model kind (PixArt-α: 20 steps, DPM-Solver++, cfg 4.5).</summary>
    public Args ForModel(ModelKind kind) => new(Spec, values, flags, Positional, repeated) { Kind = kind };

    /// <summary>The same command line with option `name` set to `value` (null: as if not given); for a command that hands
    /// part of its line to another reader (eval builds its model through ModelRun with one method at a time).</summary>
    public Args With(string name, string? value)
    {
        var v = new Dictionary<string, string>(values);
        var rep = new Dictionary<string, List<string>>(repeated);
        rep.Remove(name);
        if (value is null) v.Remove(name);
        else
        {
            v[name] = value;
            if (Spec.Find(name) is { Repeatable: true }) rep[name] = [value];
        }
        return new(Spec, v, flags, Positional, rep) { Kind = Kind };
    }

    static readonly ParserConfiguration Config = new() { ResponseFileTokenReplacer = null, EnablePosixBundling = false };

    /// <param name="key">the command's entry in CommandTable ("sample", "sample --out-dir", …)</param>
    public static Args Parse(string key, IEnumerable<string> argv)
    {
        var spec = CommandTable.Get(key);
        var list = argv.ToList();
        // --help (or -h) anywhere: the command's options with defaults and ranges, exit 0
        if (list.Any(x => x is "--help" or "-h"))
            throw new HelpRequested(OptionHelp.For(spec, OptionHelp.KindOf(list)));
        var command = spec.Build();
        var result = command.Parse(list, Config);
        var unknown = result.UnmatchedTokens.FirstOrDefault(t => t.StartsWith("--", StringComparison.Ordinal));
        if (unknown != null)
        {
            var name = unknown[2..].Split('=', 2)[0];
            var known = spec.Options.Select(o => o.Name).ToList();
            throw new UsageException($"{spec.Name}: unknown option '--{name}'" +
                (OptionHelp.Suggest(name, known) is string near ? $" (did you mean '--{near}'?)" : "") +
                $"; expected one of {string.Join(", ", known.Order().Select(k => "--" + k))}");
        }
        var positional = result.UnmatchedTokens.ToList();
        if (result.Errors.FirstOrDefault(e => e.SymbolResult is OptionResult) is { } error)
        {
            var option = (OptionResult)error.SymbolResult!;
            throw new UsageException(option.Tokens.Count == 0 ? $"{spec.Name}: option '{option.Option.Name}' expects a value" : error.Message);
        }
        if (positional.Count > spec.Positional)
            throw new UsageException($"{spec.Name}: unexpected argument '{positional[spec.Positional]}'" +
                                     (spec.Positional == 0 ? "; expected only --options" : $"; expected {spec.Positional} argument(s)"));
        var values = new Dictionary<string, string>();
        var flags = new HashSet<string>();
        var repeated = new Dictionary<string, List<string>>();
        foreach (var o in command.Options)
        {
            if (result.GetResult(o) is not { Implicit: false } r) continue;
            var name = o.Name[2..];
            if (r.Tokens.Count == 0) flags.Add(name);
            else values[name] = r.Tokens[^1].Value;
            if (r.Tokens.Count > 0 && spec.Find(name) is { Repeatable: true })
                repeated[name] = r.Tokens.Select(t => t.Value).ToList();
        }
        return new Args(spec, values, flags, positional, repeated);
    }

    /// <summary>The option was given on the command line.</summary>
    /// <summary>The option was given on the command line (false for one the command does not declare).</summary>
    public bool Has(string name) => values.ContainsKey(name) || flags.Contains(name);
    public bool Flag(string name) => flags.Contains(name);

    /// <summary>The text given, else a text option's declared default; null when neither.</summary>
    public string? Get(string name) => values.GetValueOrDefault(name) ?? (Spec.Find(name) is TextOpt { Default: not null } t ? t.DefaultValue(Kind) : null);

    /// <summary>Every value of a Repeatable option in command-line order (one element for a single occurrence); empty when
    /// it was not given.</summary>
    public IReadOnlyList<string> GetAll(string name)
    {
        if (Declared(name) is not { Repeatable: true }) throw new InvalidOperationException($"--{name} is not declared Repeatable");
        return repeated.TryGetValue(name, out var l) ? l : [];
    }

    public int GetInt(string name) => Value<int>(name);
    public int GetInt(string name, int orElse) => Value(name, orElse);
    public double GetDouble(string name) => Value<double>(name);
    public T GetChoice<T>(string name) where T : notnull => Value<T>(name);
    public T GetChoice<T>(string name, T orElse) where T : notnull => Value(name, orElse);
    public List<int> GetIntList(string name) => Value<List<int>>(name);
    public List<double> GetDoubleList(string name) => Value<List<double>>(name);

    T Value<T>(string name) where T : notnull
    {
        var o = (Opt<T>)Declared(name);
        return values.TryGetValue(name, out var s) ? o.Read(s) : o.DefaultValue(Kind);
    }

    /// <summary>A default the run decides (the device, --quick): only for options that declare none. An option the command
    /// does not declare cannot have been given: orElse (encode's device, which reads no --precision).</summary>
    T Value<T>(string name, T orElse) where T : notnull
    {
        if (Spec.Find(name) is null) return orElse;
        var o = (Opt<T>)Declared(name);
        if (o.Default != null) throw new InvalidOperationException($"--{name} declares a default; the command must not pass another");
        return values.TryGetValue(name, out var s) ? o.Read(s) : orElse;
    }

    Opt Declared(string name) => Spec.Find(name) ?? throw new InvalidOperationException($"{Spec.Key}: --{name} is not declared (CommandTable)");
}
