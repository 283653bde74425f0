// blockdance: the command-line program.
//   sample    draw images/latents from a DiT checkpoint (DDPM/DDIM, CFG, cache policies)
//   inspect   print a checkpoint's tensors and detected config
//   selftest  compare the engine against the committed PyTorch reference fixtures on a device
//   analyze   STSS analysis: block-output similarity across adjacent steps (CSV + heatmap)
//   eval      quality/speed of cache policies against the uncached samples
// Exit codes: 0 ok, 1 a check failed (selftest), 2 bad input (one line on stderr, no stack trace).
using BlockDance.Kernels;
using BlockDance.Sampler.Cli;
using BlockDance.Sampler.Commands;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;

namespace BlockDance.Sampler;

public static class Program
{
    public const string Usage = """
        usage: blockdance <command> [options]
          sample    --model FILE|DIR [--vae DIR] --class 1,2 --steps 50 --sampler ddim|ddpm --cfg 4 --out x.png ...
          inspect   FILE
          selftest  [--device auto|cuda|cpu] [--fixtures DIR]
          analyze   [--model FILE] [sampling options] --csv stss.csv --png stss.png
          eval      [--cache none,blockdance2,...] [--quick]
          bench     [--model FILE | --preset XL/2 --image-size 256] [--batch 8] [--iters 20]
          train-ada [--model FILE] [--out models/ada_policy.safetensors] [--samples 32] [--epochs 16] [--quick]
          ptx       [--out DIR] [--ptxas PATH] [--kernel NAME]      static GPU check: PTX, ptxas sm_80/sm_90, SASS claims
          kernels   [--op gemm] [--version V|all] [--device cpu|cuda] [--shapes small|xl]   validate, then time each version
        run 'blockdance <command> --help' for the options of a command
        """;

    public static int Main(string[] args)
    {
        try
        {
            if (args.Length == 0 || args[0] is "--help" or "-h" or "help")
            {
                Console.WriteLine(Usage);
                return args.Length == 0 ? 2 : 0;
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
                "ptx" => PtxCommand.Run(rest),
                "kernels" => KernelsCommand.Run(rest),
                _ => throw new UsageException($"unknown command '{args[0]}'; expected sample, inspect, selftest, analyze or eval"),
            };
        }
        catch (Exception e) when (IsBadInput(e))
        {
            Console.Error.WriteLine($"error: {e.Message}");
            return 2;
        }
    }

    /// <summary>Errors caused by what the user gave us (files, options, device): one line, exit 2.</summary>
    public static bool IsBadInput(Exception e) => e is UsageException or SafeTensorsException or ModelException
        or DeviceException or ArgumentException or IOException or UnauthorizedAccessException;
}
