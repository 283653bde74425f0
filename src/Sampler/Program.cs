// blockdance: the command-line program.
//   sample    draw images/latents from a DiT checkpoint (DDPM/DDIM, CFG, cache policies)
//   inspect   print a checkpoint's tensors and detected config
//   selftest  compare the engine against the committed PyTorch reference fixtures on a device
//   analyze   STSS analysis: block-output similarity across adjacent steps (CSV + heatmap)
//   eval      quality/speed of cache policies against the uncached samples
//   merge     gather the shards of `sample --out-dir` (manifest, .npz for the ADM FID evaluator)
//   …         every command and its options are declared once in Cli/CommandTable.cs and Cli/Opts.cs
//             (parsing: System.CommandLine; help; completions: `completions bash|zsh`, the [suggest] directive)
// Exit codes: 0 ok, 1 a check failed (selftest), 2 bad input (one line on stderr, no stack trace),
// 130/143 stopped by SIGINT/SIGTERM (Cli/Signals; nothing written),
// 70 an internal error (a bug: one line "internal error: …"; the stack trace with the global --verbose).
// Bad input is every InputException (UsageException, ModelException, DeviceException, SafeTensorsException,
// InvalidValueException: core code states the fact, the commands add the option it came from) and the
// I/O errors of the files the user named.
using BlockDance.Kernels;
using BlockDance.Sampler.Cli;
using BlockDance.Sampler.Commands;

namespace BlockDance.Sampler;

public static class Program
{
    /// <summary>The program's usage: every command of CommandTable with its synopsis.</summary>
    public static string Usage
    {
        get
        {
            var sb = new System.Text.StringBuilder("usage: blockdance <command> [options]\n");
            foreach (var c in CommandTable.All)
                sb.Append($"  {c.Name,-11} {c.Synopsis}\n").Append(' ', 14).Append(c.Summary.Split('\n')[0]).Append('\n');
            sb.Append("run 'blockdance <command> --help' for the options of a command (with --model, that model's defaults);\n");
            sb.Append("--verbose (anywhere) prints the stack trace of an error, --quiet (anywhere) silences the progress bar");
            return sb.ToString();
        }
    }

    public const int ExitBadInput = 2, ExitInternal = 70;   // 70 = EX_SOFTWARE (sysexits.h)

    public static int Main(string[] args)
    {
        if (Completions.IsDirective(args)) return Completions.Suggest(args);
        Signals.Install();
        bool verbose = args.Contains("--verbose");
        ProgressBar.Quiet = args.Contains("--quiet");
        args = args.Where(a => a is not ("--verbose" or "--quiet")).ToArray();
        return Guarded(() => Dispatch(args), verbose);
    }

    static int Dispatch(string[] args)
    {
        if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
        {
            Console.WriteLine(Usage);
            return args.Length == 0 ? ExitBadInput : 0;
        }
        var rest = args[1..];
        try { return Run(args[0], rest); }
        catch (BlockDance.Kernels.InputException e) when (FlagErrors.Attribute(args[0], e) is { } flagged) { throw flagged; }
    }

    static int Run(string command, string[] rest)
    {
        return command switch
        {
            "sample" => SampleCommand.Run(rest),
            "inspect" => InspectCommand.Run(rest),
            "selftest" => SelftestCommand.Run(rest),
            "eval" => EvalCommand.Run(rest),
            "analyze" => AnalyzeCommand.Run(rest),
            "bench" => BenchCommand.Run(rest),
            "train-ada" => TrainAdaCommand.Run(rest),
            "merge" => MergeCommand.Run(rest),
            "calibrate" => CalibrateCommand.Run(rest),
            "encode" => EncodeCommand.Run(rest),
            "ptx" => PtxCommand.Run(rest),
            "kernels" => KernelsCommand.Run(rest),
            "completions" => Completions.Run(rest),
            _ => throw new UsageException($"unknown command '{command}'" +
                (OptionHelp.Suggest(command, CommandTable.Names) is string near ? $" (did you mean '{near}'?)" : "") +
                $"; expected {string.Join(", ", CommandTable.Names)}"),
        };
    }

    /// <summary>Runs a command and maps what escapes it: bad input → one line, exit 2; anything else → one line
    /// "internal error: …", exit 70; the stack trace only when verbose.</summary>
    public static int Guarded(Func<int> command, bool verbose)
    {
        try
        {
            return command();
        }
        catch (HelpRequested h)
        {
            Console.WriteLine(h.Message);
            return 0;
        }
        catch (InterruptedException e)
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return e.ExitCode;
        }
        catch (Exception e) when (IsBadInput(e))
        {
            Console.Error.WriteLine($"error: {OneLine(e.Message)}");
            if (verbose) Console.Error.WriteLine(e);
            return ExitBadInput;
        }
        catch (Exception e)
        {
            Console.Error.WriteLine($"internal error: {e.GetType().Name}: {OneLine(e.Message)}" +
                                    (verbose ? "" : " (run with --verbose for the stack trace)"));
            if (verbose) Console.Error.WriteLine(e);
            return ExitInternal;
        }
    }

    /// <summary>Errors caused by what the user gave us (options, files, values, device): one line, exit 2.</summary>
    public static bool IsBadInput(Exception e) => e is InputException or IOException or UnauthorizedAccessException;

    static string OneLine(string s) => s.Replace("\r\n", " ").Replace('\n', ' ').Replace('\r', ' ');
}
