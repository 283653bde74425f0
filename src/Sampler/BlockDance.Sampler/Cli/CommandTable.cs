// The commands and the options each accepts: the one list that parsing (Args.Parse), `--help`
// (OptionHelp), the program's usage (Program.Usage) and the shell completions (Completions) read.
// `sample --out-dir` is its own entry: the sharded many-PNG run accepts a different set.
using System.CommandLine;
using O = BlockDance.Sampler.Cli.Opts;

namespace BlockDance.Sampler.Cli;

/// <param name="Name">the word on the command line (and in messages); Key tells variants apart</param>
/// <param name="Synopsis">the usage line after the name</param>
/// <param name="Summary">what it does, for help (first line also for the program's usage)</param>
/// <param name="Positional">how many plain arguments it takes (inspect: its FILE)</param>
public sealed record CommandSpec(string Key, string Name, string Synopsis, string Summary, Opt[] Options, int Positional = 0)
{
    public Opt? Find(string name) => Options.FirstOrDefault(o => o.Name == name);

    /// <summary>The System.CommandLine command the parser runs (options only: plain arguments are counted by Args).</summary>
    public Command Build()
    {
        var c = new Command(Name, Summary.Split('\n')[0]);
        foreach (var o in Options) c.Options.Add(o.Build());
        return c;
    }
}

public static class CommandTable
{
    static readonly Opt[] ModelOpts = [O.Model, O.Device, O.Threads, O.Heads, O.Precision];
    static readonly Opt[] SamplingOpts = [O.Class, O.Seed, O.Steps, O.Sampler, O.Spacing, O.Eta, O.Cfg, O.CfgChannels, O.Batch];
    static readonly Opt[] CacheOpts = [O.Cache, O.CacheN, O.CacheBlock, O.CacheWindow, O.Policy];
    static readonly Opt[] CaptionOpts = [O.PromptEmbeds, O.Negative, O.Prompt, O.NegativePrompt, O.MaxLength, O.Variant];
    static readonly Opt[] VideoOpts = [O.Frames, O.VideoSize, O.SpaceScale, O.TimeScale];

    public static readonly CommandSpec[] All =
    [
        new("sample", "sample", "--model FILE|DIR (--class 1,2 | --prompt TEXT | --prompt-embeds FILE) [options] --out x.png",
            "draw samples from a DiT checkpoint (.safetensors, .pt, diffusers folder) or a PixArt-α folder; write a PNG grid or raw tensors.\n" +
            "  with --out-dir: one PNG per sample, sharded over processes (docs/scale-out.md; `sample --out-dir D --help`).\n" +
            "  `sample --model DIR --help` shows the defaults of that model's kind",
            [.. ModelOpts, .. SamplingOpts, .. CacheOpts, O.Out, O.Report, O.Noise, O.Vae, O.PromptEmbeds, O.Negative, O.Prompt, O.NegativePrompt, O.MaxLength, O.Variant,
             O.ProfileSteps, O.OutDir, O.Frames, O.VideoSize, O.SpaceScale, O.TimeScale, O.Fps, O.StepNoise]),
        new("sample --out-dir", "sample", "--out-dir DIR (--count N | --per-class K | --classes-file F) [--shard i/n] [options]",
            "many samples, one PNG each, split over processes and machines (docs/scale-out.md); any split gives the same files",
            [.. ModelOpts, .. SamplingOpts, .. CacheOpts, O.OutDir, O.Count, O.PerClass, O.ClassesFile, O.Shard, O.Vae]),
        new("merge", "merge", "DIR [--npz samples.npz]", "gather the shards of `sample --out-dir DIR` (manifest, the FID evaluator's batch)", [O.Npz], Positional: 1),
        new("inspect", "inspect", "FILE", "print a checkpoint's tensors and the detected DiT config", [O.Heads, O.Frames, O.VideoSize, O.SpaceScale, O.TimeScale, O.Fps], Positional: 1),
        new("selftest", "selftest", "[--device auto|cuda|cpu|sim] [--fixtures DIR]",
            "compare the engine with the committed PyTorch reference fixtures on a device, one line per check", [O.Device, O.Threads, O.Fixtures, O.SelftestPrecision]),
        new("analyze", "analyze", "[--model FILE|DIR] [sampling options] --csv stss.csv --png stss.png",
            "STSS analysis: similarity of each block's output across adjacent steps (CSV + heatmaps)",
            [.. ModelOpts, .. SamplingOpts, O.Csv, O.Png, O.Threshold, O.Window, .. CaptionOpts, .. VideoOpts]),
        new("eval", "eval", "[--model FILE|DIR] [--cache none,bd2,…] [--sweep] [--batch-sweep 1,2,…,64] [--quick]",
            "speed and quality of cache methods against the uncached samples, one run (any model kind: DiT, PixArt-α, STDiT)",
            [.. ModelOpts, O.EvalCache, O.EvalPerClass, O.Steps, O.Sampler, O.Spacing, O.Eta, O.Cfg, O.CfgChannels, O.Seed, O.Batch, O.CacheBlock, O.CacheWindow,
             .. CaptionOpts, O.Vae, .. VideoOpts, O.Classifier, O.FidStats, O.OutMd, O.Policy, O.Plot, O.PlotFrom, O.Quick, O.Sweep, O.Repeats, O.BatchSweep, O.BatchCache]),
        new("bench", "bench", "[--model FILE|DIR | --preset XL/2 --image-size 256] [--batch 8] [--iters 20] [--batch-sweep 1,2,…,64]",
            "latency per forward, per-kernel time and sampling speedups (any model kind: DiT, PixArt-α, STDiT)",
            [O.Model, O.Preset, O.ImageSize, O.Device, O.Threads, O.BenchBatch, O.Iters, O.Warmup, O.BenchSteps, O.Heads, O.Report, O.Cfg, O.Precision, O.NoSampling,
             O.Sampler, O.Spacing, O.Eta, O.CfgChannels, O.Seed, .. CaptionOpts, O.Frames, O.SpaceScale, O.TimeScale, O.BatchSweep, O.BenchBatchCache, O.Repeats]),
        new("calibrate", "calibrate", "[--model FILE|DIR] [--samples 10] [--steps N] [--class 1,2 | --prompt-embeds FILE | --prompt TEXT]",
            "fit TeaCache's coefficients and MagCache's ratio curve for a model (DiT, PixArt-α, STDiT), sampled as `sample` samples it; writes MODEL.cache-calibration.json",
            [.. ModelOpts, O.CalibrateSamples, O.Class, O.CalibrateSteps, O.Sampler, O.Spacing, O.Eta, O.Cfg, O.CfgChannels, O.CalibrateSeed, O.Batch,
             O.TargetSkip, O.CalibrateOut, .. CaptionOpts, .. VideoOpts]),
        new("train-ada", "train-ada", "[--model FILE|DIR] [--prompt TEXT … | --prompt-embeds FILE] [--out FILE] [--samples 32] [--epochs 16] [--quick]",
            "learn BlockDance-Ada's per-sample reuse decisions (with --learn-boundary also its boundary block): REINFORCE on R = C + λ·Q (C = fraction of steps ≥ ρ reused, weighted by the blocks skipped with --learn-boundary; Q = SSIM to the uncached sample); DDIM η 0.\n" +
            "  any model kind: a DiT trains on its classes in turn, a PixArt-α or STDiT model on the prompts in turn (--prompt TEXT, repeatable, or --prompt-embeds FILE);\n" +
            "  the network then reads the caption summary (masked mean of the caption features) instead of the class. `train-ada --model DIR --help` shows that kind's defaults",
            [.. ModelOpts, O.AdaOut, O.AdaSteps, O.Cfg, O.CfgChannels, O.Samples, O.AdaBatch, O.Epochs, O.Lr, O.Lambda, O.Rho, O.Hidden, O.AdaCacheBlock, O.LearnBoundary, O.InitN, O.AdaSeed, O.InitSeed, O.Quick,
             O.AdaPromptEmbeds, O.Negative, O.AdaPrompt, O.NegativePrompt, O.MaxLength, O.Variant, .. VideoOpts]),
        new("encode", "encode", "--model PIXART_DIR --prompt \"…\" [--negative-prompt \"…\"] [--max-length 120] --out embeds.safetensors",
            "T5 prompt embeddings for PixArt-α (the folder's tokenizer/ and text_encoder/)",
            [O.EncodeModel, O.EncodePrompt, O.EncodeNegative, O.EncodeMaxLength, O.EncodeVariant, O.Device, O.Threads, O.EncodeOut]),
        new("ptx", "ptx", "[--out DIR] [--ptxas PATH] [--kernel NAME]",
            "static GPU check without a GPU: every kernel's PTX (sm_80, ISA 7.8), ptxas for sm_80/sm_90, registers, spills, SASS claims",
            [O.PtxOut, O.Ptxas, O.Kernel]),
        new("kernels", "kernels", "[--op gemm] [--version V|all] [--device sim|cpu|cuda] [--shapes small|demo|xl]",
            "the kernel harness: validate each version of an op against its reference, then time it (median µs, TFLOP/s, vs cuBLAS on CUDA)",
            [O.Op, O.Version, O.Device, O.Threads, O.Shapes, O.KernelIters, O.CpuWarps]),
        new("completions", "completions", "bash|zsh",
            "print a shell completion script: eval \"$(blockdance completions bash)\" (README, \"Shell completions\")", [], Positional: 1),
    ];

    public static CommandSpec Get(string key) => All.First(c => c.Key == key);

    /// <summary>The words a user can type after `blockdance`.</summary>
    public static IEnumerable<string> Names => All.Select(c => c.Name).Distinct();

    /// <summary>The whole program for System.CommandLine's completions ([suggest] directive): each command with the
    /// union of its variants' options, plus the global switches.</summary>
    public static RootCommand Root()
    {
        var root = new RootCommand("BlockDance.NET: Diffusion Transformer inference with block-reuse caches");
        foreach (var g in Opts.Global) { var o = g.Build(); o.Recursive = true; root.Options.Add(o); }
        foreach (var name in Names)
        {
            var c = new Command(name, All.First(s => s.Name == name).Summary.Split('\n')[0]);
            foreach (var o in All.Where(s => s.Name == name).SelectMany(s => s.Options).DistinctBy(o => o.Name)) c.Options.Add(o.Build());
            root.Subcommands.Add(c);
        }
        return root;
    }
}
