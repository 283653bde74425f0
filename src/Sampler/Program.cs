// blockdance: the command-line program.
//   sample    draw images/latents from a DiT checkpoint (DDPM/DDIM, CFG, cache policies)
//   inspect   print a checkpoint's tensors and detected config
//   selftest  compare the engine against the committed PyTorch reference fixtures on a device
//   analyze   STSS analysis: block-output similarity across adjacent steps (CSV + heatmap)
//   eval      quality/speed of cache policies against the uncached samples
//   merge     gather the shards of `sample --out-dir` (manifest, .npz for the ADM FID evaluator)
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
    public const string Usage = """
        usage: blockdance <command> [options]
          sample    --model FILE|DIR [--vae DIR] --class 1,2 --steps 50 --sampler ddim|ddpm|dpm++2m --cfg 4 --out x.png ...
          sample    --model PIXART_DIR --prompt-embeds embeds.safetensors [--negative FILE] --steps 20 --cfg 4.5 --out x.png ...
          sample    --model STDIT.pth|DIR --prompt-embeds embeds.safetensors [--frames 16] [--image-size 512] [--fps 8]
                    [--step-noise z.safetensors] --out clip.png|clip.mp4|frames/|x.safetensors ...   Open-Sora 1.0 video
          sample    --out-dir DIR (--count N | --per-class K | --classes-file F) [--shard i/n]   one PNG per sample, sharded
          merge     DIR [--npz samples.npz]   gather the shards of sample --out-dir (manifest, FID batch)
          inspect   FILE
          selftest  [--device auto|cuda|cpu] [--fixtures DIR]
          analyze   [--model FILE] [sampling options] --csv stss.csv --png stss.png
          eval      [--cache none,blockdance2,...] [--quick]
          bench     [--model FILE | --preset XL/2 --image-size 256] [--batch 8] [--iters 20]
          calibrate [--model FILE] [--samples 10] [--steps 50]   fits TeaCache/MagCache, writes MODEL.cache-calibration.json
          train-ada [--model FILE] [--out models/ada_policy.safetensors] [--samples 32] [--epochs 16] [--quick]
          encode    --model PIXART_DIR --prompt "…" [--negative-prompt "…"] [--max-length 120] --out embeds.safetensors
          ptx       [--out DIR] [--ptxas PATH] [--kernel NAME]      static GPU check: PTX, ptxas sm_80/sm_90, SASS claims
          kernels   [--op gemm] [--version V|all] [--device cpu|cuda] [--shapes small|xl]   validate, then time each version
        run 'blockdance <command> --help' for the options of a command; --verbose (anywhere) prints the stack trace of an error,
        --quiet (anywhere) silences the progress bar
        """;

    public const int ExitBadInput = 2, ExitInternal = 70;   // 70 = EX_SOFTWARE (sysexits.h)

    public static int Main(string[] args)
    {
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
        return args[0] switch
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
            _ => throw new UsageException($"unknown command '{args[0]}'; expected sample, inspect, selftest, analyze, eval, bench, calibrate, train-ada, encode, merge, ptx or kernels"),
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
