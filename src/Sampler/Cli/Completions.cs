// Shell completions. System.CommandLine answers `blockdance "[suggest:POS]" "LINE"` with the words that
// may follow at character POS of LINE (commands, the command's options, an option's choices: samplers,
// cache methods, devices, precisions), from the same declarations as parsing (CommandTable.Root).
// `blockdance completions bash|zsh` prints a script that asks it on every TAB; file names fall back to
// the shell's own completion. Install: eval "$(blockdance completions bash)" (zsh: … completions zsh).
using System.CommandLine;

namespace BlockDance.Sampler.Cli;

public static class Completions
{
    /// <summary>A `[suggest]` or `[suggest:N]` directive as the first argument.</summary>
    public static bool IsDirective(string[] args) => args.Length > 0 && args[0].StartsWith("[suggest", StringComparison.Ordinal);

    public static int Suggest(string[] args) =>
        CommandTable.Root().Parse(args, new ParserConfiguration { ResponseFileTokenReplacer = null }).Invoke();

    const string Bash = """
        _blockdance_complete() {
            local IFS=$'\n'
            COMPREPLY=( $(compgen -W "$("${COMP_WORDS[0]}" "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null)" -- "${COMP_WORDS[COMP_CWORD]}") )
        }
        complete -o default -F _blockdance_complete blockdance
        """;

    public static int Run(string[] argv)
    {
        var a = Args.Parse("completions", argv);
        var shell = a.Positional.FirstOrDefault() ?? throw new UsageException("completions: expected a shell, bash or zsh, found none");
        Console.WriteLine(shell switch
        {
            "bash" => Bash,
            "zsh" => "autoload -U +X bashcompinit && bashcompinit\n" + Bash,
            _ => throw new UsageException($"completions: expected bash or zsh, found '{shell}'"),
        });
        return 0;
    }
}
