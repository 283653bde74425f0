// blockdance eval: speed and quality of cache policies against the uncached model, in one run.
//
//   blockdance eval [--model FILE] [--device auto|cuda|cpu] [--cache none,bd2,bd3,bd4] [--sweep]
//                   [--per-class K | --quick] [--steps 50] [--cfg 4] [--seed 0] [--batch B]
//                   [--cache-block b] [--cache-window s,e] [--classifier FILE] [--fid-stats FILE] [--out-md FILE]
//                   [--policy models/ada_policy.safetensors] [--plot pareto.png]
//   blockdance eval --plot-from eval.md --plot pareto.png     redraws the figure of a table written by --out-md
//
// Policies (--cache, comma-separated, each NAME[:key=value…] as CacheSpec lists: delta-dit, teacache, fbcache,
// dbcache, taylorseer, magcache, bd-adaptive, bd-taylor, …; --sweep runs each method at every value of its
// main knob instead). Rows on the Pareto frontier of (speedup, PSNR) are marked. `none` (no cache) and `bdN` (alias `blockdanceN`):
// BlockDance-N with the default boundary (⌊0.75·depth⌋ − 1) and window [0.25, 0.95) unless
// --cache-block / --cache-window say otherwise (they apply to every bdN). `none` always runs, and
// runs first: it is the reference for PSNR/SSIM and the baseline of the speedup. `ada`: BlockDance-Ada
// with the trained policy of --policy (default models/ada_policy.safetensors; `blockdance train-ada`).
// --plot writes SSIM and PSNR against the measured latency per sample of every policy (ParetoPlot), as
// PNG and SVG.
//
// Every policy samples the same classes with the same seed, hence the same starting noise: K samples
// of each class (round-robin order), DDIM, cfg 4. Defaults: K = 50 (500 digits for the MNIST demo);
// --quick: K = 3 (30 digits, a smoke test sized for the CPU accelerator). Before the timed runs a
// 2-step warm-up at the same batch compiles the kernels, so that compilation is not billed to `none`.
//
// Accuracy and FID use the MNIST digit classifier (DigitClassifier, on the device) and apply to
// 1-channel 14×14 10-class models only; otherwise, or when the classifier or the FID statistics file
// is missing, those columns read n/a and a note says why.
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler.Ada;
using BlockDance.Sampler.Cli;
using BlockDance.Sampler.Evaluation;
using BlockDance.Transformer;

namespace BlockDance.Sampler.Commands;

public static class EvalCommand
{
    public const int DefaultPerClass = 50, QuickPerClass = 3, WarmupSteps = 2;
    public const string DefaultPolicies = "none,bd2,bd3,bd4";
    public const string DefaultFidStats = "mnist_fid_stats.safetensors";


    /// <summary>A named policy of the comparison: N = null for none.</summary>
    public sealed record PolicySpec(string Name, int? N, CacheSpec? Spec = null);

    public static int Run(string[] argv)
    {
        var a = Args.Parse("eval", argv);
        if (a.Positional.Count > 0) throw new UsageException($"eval: unexpected argument '{a.Positional[0]}'");
        if (a.Flag("quick") && a.Has("per-class")) throw new UsageException("eval: use either --quick or --per-class K, not both");
        if (a.Get("out-md") is string md) AtomicFile.CheckWritable(md, "--out-md");
        if (a.Get("plot") is string plot)
        {
            Figure.CheckOutput(plot, "--plot");
        }
        if (a.Get("plot-from") is string from)
        {
            if (a.Get("plot") is not string plotTo || argv.Length != 4)
                throw new UsageException("--plot-from FILE: expected exactly --plot-from FILE --plot OUT.png, found other options");
            var (points, caption) = EvalTableReader.Read(from);
            var (png, svg) = ParetoPlot.Write(plotTo, points, caption);
            Console.WriteLine($"wrote {png} and {svg} from {from}");
            return 0;
        }
        AtomicFile.CheckDistinct(("--out-md", a.Get("out-md")), ("--plot", a.Get("plot")));
        var specs = ParsePolicies(a.Get("cache")!, a.Flag("sweep"));
        int perClass = a.Flag("quick") ? QuickPerClass : a.GetInt("per-class");
        int steps = a.GetInt("steps"), batch = a.GetInt("batch");
        float cfgScale = (float)a.GetDouble("cfg");
        ulong seed = (ulong)a.GetInt("seed");

        // Everything the user gave is checked against the checkpoint header before any device work.
        var modelPath = CommonOptions.ModelPath(a);
        using var src = (IDisposable)ModelLoader.OpenSource(modelPath);
        var weights = (IWeightSource)src;
        var cfg = ModelLoader.DetectConfig(weights, CommonOptions.Heads(a));
        if (cfg.InChannels is not (1 or 3))
            throw new UsageException($"eval: expected a pixel-space model (1 or 3 channels), found {cfg.InChannels} channels " +
                                     "(a latent model; eval has no VAE decode step yet)");
        if (cfg.InputSize < ImageMetrics.SsimWindow)
            throw new UsageException($"eval: SSIM needs images of at least {ImageMetrics.SsimWindow}×{ImageMetrics.SsimWindow}, the model makes {cfg.InputSize}×{cfg.InputSize}");
        var bdBase = BlockDanceBase(a, cfg);
        if (a.Has("policy") && !specs.Any(s => s.Name == "ada")) throw new UsageException("--policy needs the policy ada in --cache");
        (AdaWeights Weights, string Path)? ada = specs.Any(s => s.Name == "ada") ? CommonOptions.AdaPolicyFile(a.Get("policy"), cfg, steps) : null;
        var digits = DigitsSetup.Resolve(a, modelPath, cfg);
        var makers = specs.ToDictionary(sp => sp.Name, sp => sp.Name == "ada" ? null : sp.Spec!.Build(cfg, modelPath, steps, bdBase));   // exit 2 before any device work

        var classList = CommonOptions.DefaultClasses(cfg);
        var classes = Enumerable.Range(0, perClass).SelectMany(_ => classList).ToList();
        var baseOpts = new SamplingOptions { Classes = classes, Steps = steps, Cfg = cfgScale, Seed = seed, Batch = batch, Progress = true };

        using var dev = CommonOptions.Device(a);
        baseOpts = MemoryPlan.Fit(dev, cfg, baseOpts, cached: specs.Any(sp => sp.Name != "none"));   // before any allocation
        Console.WriteLine($"model: {modelPath}\n       {cfg}");
        using var model = ModelLoader.Create(dev, weights, cfg);
        using var classifier = digits.ClassifierPath is string cp ? DigitClassifier.Load(dev, cp) : null;

        // Warm-up (not timed): compiles every kernel at the batch the timed runs use.
        Log.Info($"warm-up: {WarmupSteps} steps at batch {baseOpts.EffectiveBatch} (kernel compilation; not timed)");
        SamplingSession.Run(model, baseOpts with { Classes = classes.Take(baseOpts.EffectiveBatch).ToList(), Steps = WarmupSteps, Progress = false });
        if (ada is { } aw) AdaEval.Warmup(dev, aw.Weights, baseOpts.EffectiveBatch);   // compiles the decision network's kernels

        var rows = new List<EvalRow>();
        SamplingResult? reference = null;
        foreach (var spec in specs)
        {
            Console.WriteLine($"eval: policy {spec.Name} ({classes.Count} samples, {steps} steps)");
            Func<ICachePolicy> make = spec.Name == "ada" ? () => new AdaPolicy(ada!.Value.Weights, ada.Value.Path) : makers[spec.Name]!;
            var r = SamplingSession.Run(model, baseOpts with { Policy = make });
            reference ??= r;
            rows.Add(Measure(spec, r, reference, classes, classifier, digits.Stats, bdBase, cfg));
            if (spec.Name == "ada") rows[^1] = rows[^1] with { Detail = AdaEval.Detail(ada!.Value.Weights.Info, r) };
        }

        rows = EvalTable.MarkFrontier(rows);
        var text = EvalTable.Markdown(Caption(classList.Count, perClass, baseOpts, reference!, cfg, dev, modelPath),
            rows, Notes(digits, bdBase, cfg, classes.Count).Concat(ada is { } ad ? [AdaEval.Note(ad.Weights, ad.Path)] : []));
        Console.WriteLine();
        Console.Write(text);
        if (a.Get("out-md") is string outMd)
        {
            AtomicFile.Write(outMd, s => s.Write(System.Text.Encoding.UTF8.GetBytes(text)));
            Console.WriteLine($"wrote {outMd}");
        }
        if (a.Get("plot") is string plotPath)
        {
            var (png, svg) = ParetoPlot.Write(plotPath, rows.Select(r => new ParetoPoint(r.Policy, 1e3 * r.WallSeconds / r.Samples, r.Ssim, r.Psnr)).ToList(),
                $"{cfg.Name}, {baseOpts.SamplerName} {steps} steps, cfg {cfgScale:0.##}, {classes.Count} samples per policy, {(dev.IsCuda ? dev.Name : "CPU accelerator")}");
            Console.WriteLine($"wrote {png} and {svg}");
        }
        return 0;
    }

    /// <summary>"none,bd2,teacache:delta=0.4" → specs with none first (added if missing); with sweep, every method at each
    /// value of its main knob. Bad names, options or duplicates exit 2.</summary>
    public static List<PolicySpec> ParsePolicies(string list, bool sweep = false)
    {
        var specs = new List<PolicySpec>();
        foreach (var raw in list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries))
        {
            var parsed = CacheSpec.Parse(raw);
            foreach (var cs in sweep ? parsed.Sweep() : [parsed])
            {
                var spec = new PolicySpec(cs.Label, cs.Name == "bd" ? (int)cs["n"] : null, cs);
                if (specs.Any(s => s.Name == spec.Name)) throw new UsageException($"--cache: policy '{spec.Name}' is listed twice");
                specs.Add(spec);
            }
        }
        if (specs.Count == 0) throw new UsageException("--cache: expected at least one policy, e.g. none,bd2");
        // none is the reference and the speed baseline: always run it, first.
        specs.RemoveAll(s => s.Name == "none");
        specs.Insert(0, new("none", null, CacheSpec.Parse("none")));
        return specs;
    }

    static BlockDanceConfig BlockDanceBase(Args a, DiTConfig cfg)
    {
        var window = a.GetDoubleList("cache-window");
        var bd = new BlockDanceConfig(N: 2, Boundary: a.Has("cache-block") ? a.GetInt("cache-block") : null,
            WindowStart: window[0], WindowEnd: window[1]);
        CommonOptions.CheckCacheSettings(bd, cfg);
        return bd;
    }

    static EvalRow Measure(PolicySpec spec, SamplingResult r, SamplingResult reference, IReadOnlyList<int> classes,
        DigitClassifier? classifier, FidStats? realStats, BlockDanceConfig bdBase, DiTConfig cfg)
    {
        var img = ImageMetrics.ToUnitRange(r.Samples);
        var refImg = ImageMetrics.ToUnitRange(reference.Samples);
        double psnr = ImageMetrics.Psnr(img, refImg), ssim = ImageMetrics.MeanSsim(img, refImg, r.Shape);
        double? acc = null, fid = null;
        if (classifier != null)
        {
            var c = classifier.Run(img, classes.Count);
            acc = c.Accuracy(classes);
            if (realStats != null && classes.Count >= 2)
                fid = Fid.Distance(FidStats.FromFeatures(c.Features, classes.Count, DigitClassifier.FeatureDim), realStats);
        }
        string detail = spec.N is int n ? $"N={n}, b={bdBase.Boundary ?? BlockDanceConfig.DefaultBoundary(cfg.Depth)}" : r.Policy;
        return new EvalRow(spec.Name, detail, r.WallSeconds, reference.WallSeconds / r.WallSeconds, r.BlocksSkipped, r.BlocksTotal,
            psnr, ssim, acc, fid, classes.Count);
    }

    static string Caption(int numClasses, int perClass, SamplingOptions o, SamplingResult reference, DiTConfig cfg, ComputeDevice dev, string modelPath) =>
        $"**blockdance eval**: {numClasses * perClass} samples per policy ({perClass} per class × {numClasses} classes), " +
        $"{o.SamplerName} {o.Steps} steps, cfg {o.Cfg:0.##}, seed {o.Seed}, model batch {reference.ModelBatch}; " +
        $"{Path.GetFileName(modelPath)} ({cfg.Name}, depth {cfg.Depth}, {cfg.InChannels}×{cfg.InputSize}×{cfg.InputSize}); {dev.Describe()}";

    static IEnumerable<string> Notes(DigitsSetup digits, BlockDanceConfig bd, DiTConfig cfg, int count)
    {
        yield return $"bdN = BlockDance-N: blocks 0..b reused on the reuse steps of the window [{bd.WindowStart:0.##}, {bd.WindowEnd:0.##}) of the steps " +
                     $"(b = {bd.Boundary ?? BlockDanceConfig.DefaultBoundary(cfg.Depth)} of {cfg.Depth} blocks).";
        yield return "wall-clock: the whole sampling run of the policy; speedup = none's wall-clock / the policy's, measured in this run, " +
                     $"one policy after another on the same device, after a {WarmupSteps}-step warm-up that compiles the kernels.";
        yield return "methods (defaults; NAME:key=value overrides): " + string.Join("; ", CacheSpec.Methods.Where(m => m.Keys.Length > 0)
            .Select(m => $"{m.Name} ({string.Join(", ", m.Keys.Select(k => $"{k.Key} {k.Default}"))}): {m.Summary}")) + ".";
        yield return "Pareto ★: no other row has both a higher speedup and a higher PSNR.";
        yield return "blocks skipped: block evaluations skipped / block evaluations without a cache, per sample (steps × depth).";
        yield return "PSNR / SSIM: against the uncached (none) samples from the same noise, images mapped [−1, 1] → [0, 1] (clamped), " +
                     "PSNR from the MSE over all samples (inf = identical), SSIM the mean over samples, with an 11×11 Gaussian window (σ 1.5, K1 0.01, K2 0.03), valid region only.";
        foreach (var n in digits.Notes(count)) yield return n;
    }
}
