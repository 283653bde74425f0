// One declaration per option: its name, value type, default (per model kind where they differ), range,
// help text, the core field names it stands for, and its completions. Parsing (a System.CommandLine
// option whose parser is Parse below), `--help` (Describe) and the shell completions all read it, so
// none of them can drift from another. Help texts may hold "{range}", filled from the declared range.
using System.CommandLine;
using System.Globalization;

namespace BlockDance.Sampler.Cli;

/// <summary>The model families whose options or defaults differ: the class-conditional DiT, PixArt-α (text to image) and
/// Open-Sora 1.0's STDiT (text to video).</summary>
public enum ModelKind { DiT, PixArt, STDiT }

public abstract record Opt(string Name, string Value, string Help)
{
    /// <summary>The default as help states it when it depends on the run (the device, --quick, the model file).</summary>
    public string? DefaultText { get; init; }
    /// <summary>The model kinds the option applies to; null: every kind.</summary>
    public ModelKind[]? Models { get; init; }
    /// <summary>Names the core uses for the same value (InputException.Field, InvalidValueException.What): an error
    /// about one of them is reported under this option's flag (FlagErrors).</summary>
    public string[] Fields { get; init; } = [];
    /// <summary>Every occurrence counts (Args.GetAll, in command-line order) instead of the last one winning.</summary>
    public bool Repeatable { get; init; }

    public string Flag => "--" + Name;
    public virtual bool TakesValue => true;
    public bool AppliesTo(ModelKind? kind) => kind is null || Models is null || Models.Contains(kind.Value);

    public static string KindName(ModelKind k) => k switch { ModelKind.PixArt => "PixArt-α", ModelKind.STDiT => "STDiT", _ => "DiT" };

    /// <summary>The value of a token, or a UsageException in the option's words.</summary>
    public abstract object Parse(string text);
    protected virtual string RangeText => "";
    /// <summary>The declared default for a model kind as help prints it; null when there is none.</summary>
    public abstract string? DefaultFor(ModelKind? kind);
    /// <summary>The default value (a T of the typed option); PixArtDefault / STDiTDefault where that kind's differs.</summary>
    public object? Default { get; init; }
    public object? PixArtDefault { get; init; }
    public object? STDiTDefault { get; init; }

    /// <summary>The declared default for a model kind (its own where declared, else the common one).</summary>
    protected object? DefaultObject(ModelKind? kind) => kind switch
    {
        ModelKind.PixArt => PixArtDefault ?? Default,
        ModelKind.STDiT => STDiTDefault ?? Default,
        _ => Default,
    };

    /// <summary>The help line's text for a model kind (null: every kind, defaults that differ listed per kind).</summary>
    public string Describe(ModelKind? kind)
    {
        var text = Help.Replace("{range}", RangeText);
        string? dflt = DefaultText ?? DefaultFor(kind);
        if (kind is null && DefaultText is null && AppliesTo(ModelKind.DiT))
            foreach (var other in new[] { ModelKind.PixArt, ModelKind.STDiT })
            {
                var d = DefaultFor(other);
                if (d != DefaultFor(ModelKind.DiT) && d != null && AppliesTo(other)) dflt = $"{dflt}; {KindName(other)}: {d}";
            }
        return dflt is null ? text : $"{text} (default {dflt})";
    }

    /// <summary>Values a shell may complete (choices); empty: any text.</summary>
    public virtual IEnumerable<string> Completions => [];

    /// <summary>The System.CommandLine option the parser runs: the last occurrence wins (as it always has) unless the
    /// option is Repeatable, each token goes through Parse, a bad value becomes the parse error.</summary>
    internal Option Build()
    {
        var o = new Option<string>(Flag)
        {
            HelpName = Value.Length > 0 ? Value : null,
            Description = Describe(null),
            Arity = TakesValue ? ArgumentArity.OneOrMore : ArgumentArity.Zero,
        };
        if (TakesValue)
            o.CustomParser = r =>
            {
                var s = r.Tokens[^1].Value;
                try { foreach (var t in r.Tokens) Parse(t.Value); }
                catch (UsageException e) { r.AddError(e.Message); }
                return s;
            };
        o.CompletionSources.Add(Completions.ToArray());
        return o;
    }

    internal static string Show(object v) => v switch
    {
        double d => d.ToString(CultureInfo.InvariantCulture),
        IEnumerable<double> l => string.Join(",", l.Select(x => x.ToString(CultureInfo.InvariantCulture))),
        _ => Convert.ToString(v, CultureInfo.InvariantCulture) ?? "",
    };
}

/// <summary>An option with a typed value. Default, PixArtDefault and STDiTDefault hold a T (checked by a test over every declaration).</summary>
public abstract record Opt<T>(string Name, string Value, string Help) : Opt(Name, Value, Help) where T : notnull
{
    public T DefaultValue(ModelKind? kind) => (T)(DefaultObject(kind)
        ?? throw new InvalidOperationException($"{Flag} has no declared default: the command passes one"));
    public override string? DefaultFor(ModelKind? kind) => DefaultObject(kind) is object v ? ShowValue((T)v) : null;
    protected virtual string ShowValue(T v) => Show(v);
    public abstract T Read(string text);
    public override object Parse(string text) => Read(text);
}

public sealed record IntOpt(string Name, string Value, string Help, int Min = int.MinValue, int Max = int.MaxValue) : Opt<int>(Name, Value, Help)
{
    protected override string RangeText => Max == int.MaxValue ? $"≥ {Min}" : $"{Min}..{Max}";
    public override int Read(string s)
    {
        if (!int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
            throw new UsageException($"{Flag}: expected an integer, found '{s}'");
        if (v < Min || v > Max) throw new UsageException($"{Flag}: expected {Min}..{Max}, found {v}");
        return v;
    }
}

public sealed record DoubleOpt(string Name, string Value, string Help, double Min = double.NegativeInfinity, double Max = double.PositiveInfinity)
    : Opt<double>(Name, Value, Help)
{
    protected override string RangeText => $"[{Show(Min)}, {Show(Max)}]";
    public override double Read(string s)
    {
        if (!double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) || !double.IsFinite(v))
            throw new UsageException($"{Flag}: expected a finite number, found '{s}'");
        if (v < Min || v > Max) throw new UsageException($"{Flag}: expected a value in [{Min}, {Max}], found {s}");
        return v;
    }
}

/// <summary>One of a fixed set of words; the value help shows them all ("a|b|c").</summary>
public sealed record ChoiceOpt<T>(string Name, string Help, (string Text, T Value)[] Choices) : Opt<T>(Name, string.Join("|", Choices.Select(c => c.Text)), Help)
    where T : notnull
{
    public override IEnumerable<string> Completions => Choices.Select(c => c.Text);
    protected override string ShowValue(T v) => Choices.First(c => EqualityComparer<T>.Default.Equals(c.Value, v)).Text;
    public override T Read(string s)
    {
        foreach (var (text, value) in Choices) if (text == s) return value;
        throw new UsageException($"{Flag}: expected {string.Join(" or ", Choices.Select(c => c.Text))}, found '{s}'");
    }
}

/// <summary>Free text: a path, a prompt, a method spec; checked by the command that reads it.</summary>
public sealed record TextOpt(string Name, string Value, string Help) : Opt<string>(Name, Value, Help)
{
    public string[] Suggestions { get; init; } = [];
    public override IEnumerable<string> Completions => Suggestions;
    public override string Read(string s) => s;
}

/// <summary>A switch: present or not, no value.</summary>
public sealed record SwitchOpt(string Name, string Help) : Opt(Name, "", Help)
{
    public override bool TakesValue => false;
    public override string? DefaultFor(ModelKind? kind) => null;
    public override object Parse(string text) => true;
}

/// <summary>Comma-separated integers ("1,2,3").</summary>
public sealed record IntListOpt(string Name, string Value, string Help) : Opt<List<int>>(Name, Value, Help)
{
    public override List<int> Read(string s)
    {
        var list = new List<int>();
        foreach (var part in s.Split(',', StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v))
                throw new UsageException($"{Flag}: expected a comma-separated list of integers, found '{part}' in '{s}'");
            list.Add(v);
        }
        return list;
    }
}

/// <summary>Exactly Count comma-separated finite numbers ("0.25,0.95").</summary>
public sealed record DoubleListOpt(string Name, string Value, string Help, int Count) : Opt<List<double>>(Name, Value, Help)
{
    public override List<double> Read(string s)
    {
        var parts = s.Split(',', StringSplitOptions.TrimEntries);
        if (parts.Length != Count) throw new UsageException($"{Flag}: expected {Count} comma-separated numbers, found '{s}'");
        return parts.Select(p => double.TryParse(p, NumberStyles.Float, CultureInfo.InvariantCulture, out var v) && double.IsFinite(v)
            ? v : throw new UsageException($"{Flag}: expected a finite number, found '{p}' in '{s}'")).ToList();
    }
}
