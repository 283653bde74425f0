// Options shared by sample, analyze and eval: model, device, sampling and cache settings.
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Transformer;

namespace BlockDance.Sampler.Cli;

public static class CommonOptions
{
    public const string DefaultModel = "models/dit_mnist.safetensors";

    public static readonly string[] CacheOpts = ["cache", "cache-n", "cache-block", "cache-window", "policy"];
    public const string DefaultAdaPolicy = "models/ada_policy.safetensors";

    /// <summary>--model, else the shipped demo model (looked up from the working folder, then next to the program).</summary>
    public static string ModelPath(Args a)
    {
        if (a.Get("model") is string m) return m;
        return FindShipped(DefaultModel)
            ?? throw new UsageException($"no --model given and the demo model {DefaultModel} was not found (run from the repository, or pass --model FILE)");
    }

    /// <summary>A file shipped in the repository (the demo model, the Ada policy): searched from the working folder
    /// upwards, then from the program's folder upwards — the same rule for every shipped file.</summary>
    public static string? FindShipped(string relative)
    {
        foreach (var root in new[] { Directory.GetCurrentDirectory(), AppContext.BaseDirectory })
        {
            for (var dir = new DirectoryInfo(root); dir != null; dir = dir.Parent)
            {
                var p = Path.Combine(dir.FullName, relative);
                if (File.Exists(p)) return p;
            }
        }
        return null;
    }

    /// <param name="fp32Default">selftest: the fixtures are fp32, so fp32 unless --precision says otherwise.</param>
    public static ComputeDevice Device(Args a, bool fp32Default = false)
    {
        var kind = a.GetChoice<DeviceKind>("device");
        var dev = ComputeDevice.Create(kind, threads: Threads(a));
        Console.WriteLine($"device: {dev.Describe()}");
        dev.Precision = Precision(a, dev, fp32Default);
        return dev;
    }

    /// <summary>--precision fp32|bf16|fp16 for the model's GEMMs; default bf16 on CUDA (tensor cores), fp32 on the
    /// CPU accelerator (where 16-bit operands only cost accuracy). The choice is logged.</summary>
    public static Precision Precision(Args a, ComputeDevice dev, bool fp32Default = false)
    {
        var dflt = fp32Default ? Kernels.Precision.Fp32 : Devices.DefaultPrecision(dev);
        var p = a.GetChoice("precision", dflt);
        Log.Info($"precision: {p.ToString().ToLowerInvariant()}{(a.Has("precision") ? "" : $" (default {(fp32Default ? "of this command" : dev.IsCuda ? "on CUDA" : "on the CPU accelerator")}; --precision fp32|bf16|fp16)")}");
        return p;
    }

    /// <summary>--threads N for the host backend's kernels; null: every core.</summary>
    public static int? Threads(Args a) => a.Has("threads") ? a.GetInt("threads") : null;

    public static int? Heads(Args a) => a.Has("heads") ? a.GetInt("heads") : null;

    /// <summary>ModelLoader.DetectConfig with --heads, its head-count messages in the words of the option.</summary>
    public static DiTConfig DetectConfig(Args a, IWeightSource src, int? heads = null)
    {
        try { return ModelLoader.DetectConfig(src, heads ?? Heads(a)); }
        catch (ModelException e) when (e.Message.StartsWith("head count: ", StringComparison.Ordinal))
        {
            throw new UsageException($"--heads: {e.Message["head count: ".Length..]}");
        }
        catch (ModelException e) when (e.Message.EndsWith("the head count must be given", StringComparison.Ordinal))
        {
            throw new UsageException($"{e.Message}: pass --heads N");
        }
    }

    /// <summary>Default classes: one of each for models with ≤ 10 classes (the MNIST demo), otherwise 8
    /// (the reference sample.py labels for 1000-class ImageNet models, else 0..7).</summary>
    public static List<int> DefaultClasses(DiTConfig cfg) =>
        cfg.NumClasses <= 10 ? Enumerable.Range(0, cfg.NumClasses).ToList()
        : cfg.NumClasses == 1000 ? [207, 360, 387, 974, 88, 979, 417, 279]
        : Enumerable.Range(0, 8).ToList();

    public static SamplingOptions Sampling(Args a, DiTConfig cfg)
    {
        var classes = a.Has("class") ? a.GetIntList("class") : DefaultClasses(cfg);
        foreach (var y in classes)
            if (y < 0 || y >= cfg.NumClasses)
                throw new UsageException($"--class: expected 0..{cfg.NumClasses - 1} for this model, found {y}");
        if (classes.Count == 0) throw new UsageException("--class: expected at least one class");
        return SamplerSettings(a, new SamplingOptions()) with
        {
            Classes = classes,
            Cfg = (float)a.GetDouble("cfg"),
            CfgChannels = a.GetChoice<CfgChannels>("cfg-channels"),
            Seed = (ulong)a.GetInt("seed"),
            Batch = a.GetInt("batch"),
        };
    }

    /// <summary>--sampler, --steps, --spacing, --eta over the model's defaults `dflt`. The spacing defaults to the
    /// sampler's own (even for DDIM/DDPM, linspace for DPM-Solver++); --eta is DDIM's alone and refused with another sampler.</summary>
    public static SamplingOptions SamplerSettings(Args a, SamplingOptions dflt)
    {
        // a command that declares no --sampler samples with one of its own (train-ada: DDIM η 0); only --steps is read
        if (a.Spec.Find("sampler") is null) return dflt with { Steps = a.GetInt("steps") };
        var sampler = a.GetChoice<SamplerKind>("sampler");
        if (a.Has("eta") && sampler != SamplerKind.Ddim)
            throw new UsageException($"--eta: expected with --sampler ddim (η is DDIM's setting), found --sampler {(sampler == SamplerKind.Ddpm ? "ddpm" : "dpm++2m")}, which does not use it");
        return dflt with
        {
            Steps = a.GetInt("steps"),
            Sampler = sampler,
            Spacing = a.Has("spacing") ? a.GetChoice<Spacing>("spacing") : dflt.Spacing,
            Eta = a.GetDouble("eta"),
        };
    }

    /// <summary>--cache none|blockdance|ada|NAME[:key=value…] (CacheSpec) and its settings, validated against the model (exit 2 when invalid).</summary>
    public static Func<ICachePolicy> Cache(Args a, DiTConfig cfg) => Cache(a, cfg.Shape);

    /// <summary>The same for any model's block stack (IBlockModel.Shape, read from its files before the device starts).</summary>
    public static Func<ICachePolicy> Cache(Args a, BlockShape cfg)
    {
        var make = Policy(a, cfg);
        // every method's own check against the model's stack, before any device work
        using var probe = make();
        try { probe.Check(PlanRunner.Stack(cfg, new CfgLayout(1, false)), a.GetInt("steps")); }
        catch (InputException e) when (e is not UsageException) { throw new UsageException($"--cache {a.Get("cache") ?? "none"}: {e.Message}"); }
        return make;
    }

    static Func<ICachePolicy> Policy(Args a, BlockShape cfg)
    {
        var kind = a.Get("cache") ?? "none";   // a command without --cache (analyze) samples uncached
        bool hasBd = a.Has("cache-n") || a.Has("cache-block") || a.Has("cache-window");
        if (a.Has("policy") && kind != "ada" && !kind.StartsWith("l2c", StringComparison.Ordinal)) throw new UsageException("--policy needs --cache ada or --cache l2c");
        switch (kind)
        {
            case "ada":
                if (hasBd) throw new UsageException("--cache-n/--cache-block/--cache-window: --cache ada takes its boundary and steps from the --policy file");
                var (weights, path) = AdaPolicyFile(a.Get("policy"), cfg, a.GetInt("steps"), ModelPath(a));
                return () => new AdaPolicy(weights, path);
            case "none":
                if (hasBd) throw new UsageException("--cache-n/--cache-block/--cache-window need --cache blockdance");
                return () => new NoCache();
            case "blockdance":
                var bd = BlockDance(a, cfg);
                return () => new BlockDancePolicy(bd);
            default:
                // every other method: NAME[:key=value…] (CacheSpec)
                if (hasBd) throw new UsageException($"--cache-n/--cache-block/--cache-window need --cache blockdance (other methods take options as --cache NAME:key=value)");
                var spec = CacheSpec.Parse(kind);
                if (spec.Name == "ada") throw new UsageException("--cache ada takes no key=value options");
                return spec.Build(cfg, ModelPath(a), a.GetInt("steps"), policyFile: a.Get("policy"));
        }
    }

    /// <summary>Loads a BlockDance-Ada policy (--policy FILE; default for a DiT models/ada_policy.safetensors found from the
    /// working folder upwards, for a caption model MODEL.ada_policy.safetensors beside it, where train-ada writes it) and
    /// checks it against the model and the step count: any mismatch exits 2.</summary>
    public static (AdaWeights Weights, string Path) AdaPolicyFile(string? given, DiTConfig cfg, int steps) => AdaPolicyFile(given, cfg.Shape, steps);

    public static (AdaWeights Weights, string Path) AdaPolicyFile(string? given, BlockShape cfg, int steps, string? modelPath = null)
    {
        var dflt = cfg.CaptionChannels > 0 && modelPath != null ? AdaPolicyPathFor(modelPath) : FindShipped(DefaultAdaPolicy) ?? DefaultAdaPolicy;
        var path = given ?? dflt;
        if (!File.Exists(path))
            throw new UsageException($"--policy {path}: file not found; train one with 'blockdance train-ada' (writes {(cfg.CaptionChannels > 0 ? "MODEL.ada_policy.safetensors beside the model" : DefaultAdaPolicy)}) or pass --policy FILE");
        Transformer.IO.FileKind.RequireRegular(path, "--policy");
        var w = AdaWeightsFile.Load(path);
        try { w.Info.CheckRun(PlanRunner.Stack(cfg, default), steps); }
        catch (CacheException e) { throw new UsageException($"--policy {path}: {e.Message}"); }
        return (w, path);
    }

    /// <summary>Where train-ada writes a caption model's policy by default and `--cache ada` looks for it: beside the model,
    /// named after it (models/pixart_mnist → models/pixart_mnist.ada_policy.safetensors), as its cache calibration.</summary>
    public static string AdaPolicyPathFor(string modelPath)
    {
        var m = Path.TrimEndingDirectorySeparator(modelPath);
        return Path.Combine(Path.GetDirectoryName(Path.GetFullPath(m)) ?? ".", Path.GetFileNameWithoutExtension(m) + ".ada_policy.safetensors");
    }

    /// <summary>BlockDance settings; the default window is the paper's for the model kind (Opts.CacheWindow: [0.25, 0.95) for DiT, [0.40, 0.95) for PixArt-α).</summary>
    public static BlockDanceConfig BlockDance(Args a, BlockShape cfg)
    {
        var window = a.GetDoubleList("cache-window");
        int steps = a.GetInt("steps"), n = a.GetInt("cache-n");
        // N > steps would never reuse a step: a typo, not a setting
        if (n > steps) throw new UsageException($"--cache-n: expected N ≤ --steps ({steps}), found {n}");
        var bd = new BlockDanceConfig(
            N: n,
            Boundary: a.Has("cache-block") ? a.GetInt("cache-block", orElse: 0) : null,
            WindowStart: window[0], WindowEnd: window[1]);
        CheckCacheSettings(bd, cfg);
        return bd;
    }

    /// <summary>BlockDance settings against the model, in the words of the options they came from.</summary>
    public static void CheckCacheSettings(BlockDanceConfig bd, DiTConfig cfg) => CheckCacheSettings(bd, cfg.Shape);

    public static void CheckCacheSettings(BlockDanceConfig bd, BlockShape cfg)
    {
        if (bd.Problem(cfg.Depth) is not { } p) return;
        var flag = p.Setting switch
        {
            BlockDanceConfig.Setting.N => "--cache-n",
            BlockDanceConfig.Setting.Boundary => "--cache-block",
            _ => "--cache-window",
        };
        throw new UsageException($"{flag}: expected {p.Expected}, found {p.Found}");
    }
}
