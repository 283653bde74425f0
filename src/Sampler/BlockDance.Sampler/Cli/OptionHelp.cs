// What `blockdance <command> --help` prints: the command's usage line and summary, then every option it
// declares (CommandTable: the list parsing enforces) with its value, default and range (Opt.Describe).
// With --model naming a file or folder, the help is that model kind's: its defaults, and only the
// options that apply to it; without, defaults that differ by kind are listed per kind.
namespace BlockDance.Sampler.Cli;

public static class OptionHelp
{
    public static string For(CommandSpec spec, ModelKind? kind)
    {
        var sb = new System.Text.StringBuilder();
        sb.Append($"usage: blockdance {spec.Name} {spec.Synopsis}\n");
        sb.Append($"  {spec.Summary}\n");
        sb.Append(kind is { } k ? $"options (for a {Opt.KindName(k)} model):\n" : "options:\n");
        foreach (var o in spec.Options.Where(o => o.AppliesTo(kind))) Line(sb, o, kind);
        // the options of the command's other forms (sample --out-dir), so one help shows everything the word accepts
        foreach (var other in CommandTable.All.Where(c => c.Name == spec.Name && c.Key != spec.Key && spec.Key == spec.Name))
        {
            var extra = other.Options.Where(o => spec.Find(o.Name) is null && o.AppliesTo(kind)).ToList();
            if (extra.Count == 0) continue;
            sb.Append($"with {other.Key[(other.Name.Length + 1)..]} (blockdance {other.Name} {other.Synopsis}):\n");
            foreach (var o in extra) Line(sb, o, kind);
        }
        sb.Append("  --help".PadRight(34)).Append(" this text\n");
        sb.Append("global: " + string.Join(", ", Opts.Global.Select(g => $"{g.Flag} ({g.Help})")) + "\n");
        sb.Append("exit codes: 0 ok, 1 a selftest check failed, 2 bad input (one line), 70 internal error, 130/143 SIGINT/SIGTERM");
        return sb.ToString();
    }

    static void Line(System.Text.StringBuilder sb, Opt o, ModelKind? kind)
    {
        var left = $"  {o.Flag}{(o.Value.Length > 0 ? " " + o.Value : "")}";
        var only = kind is null && o.Models is { } m && m.Length < Enum.GetValues<ModelKind>().Length ? $" [{string.Join(", ", m.Select(Opt.KindName))} only]" : "";
        sb.Append(left.PadRight(34)).Append(' ').Append(o.Describe(kind)).Append(only).Append('\n');
    }

    /// <summary>The model kind of `--model X` on the command line, for help; null when no --model is given.</summary>
    public static ModelKind? KindOf(IReadOnlyList<string> argv)
    {
        string? model = null;
        for (int i = 0; i < argv.Count; i++)
        {
            if (argv[i] == "--model" && i + 1 < argv.Count) model = argv[i + 1];
            else if (argv[i].StartsWith("--model=", StringComparison.Ordinal)) model = argv[i]["--model=".Length..];
        }
        if (model is null) return null;
        return Commands.ModelRun.KindOf(model);
    }

    /// <summary>The declared option nearest to a mistyped one (edit distance ≤ 2), for "did you mean".</summary>
    public static string? Suggest(string typed, IEnumerable<string> known) =>
        known.Select(k => (k, d: Distance(typed, k))).Where(x => x.d <= Math.Max(1, Math.Min(2, typed.Length / 3)))
             .OrderBy(x => x.d).Select(x => x.k).FirstOrDefault();

    static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1));
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);  // swap
            }
        return d[a.Length, b.Length];
    }
}

/// <summary>`--help` was given: the help text is printed by Program, exit 0.</summary>
public sealed class HelpRequested(string text) : Exception(text);
