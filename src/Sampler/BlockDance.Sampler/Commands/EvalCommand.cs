// blockdance eval: speed and quality of cache methods against the uncached model, in one run, for every model kind.
//
//   blockdance eval [--model FILE|DIR] [--device auto|cuda|cpu] [--cache none,bd2,bd3,bd4] [--sweep] [--repeats 3]
//                   [--per-class K | --quick] [--steps 50] [--cfg 4] [--seed 0] [--batch B] [--cache-block b] [--cache-window s,e]
//                   [--prompt-embeds FILE | --prompt TEXT] (PixArt-α, STDiT) [--classifier FILE] [--fid-stats FILE]
//                   [--policy models/ada_policy.safetensors] [--out-md FILE] [--plot pareto.png]
//                   [--batch-sweep 1,2,4,8,16,32,64 [--batch-cache none,bd2,bd3,…]]
//   blockdance eval --plot-from eval.md --plot pareto.png     redraws the figures of a table written by --out-md
//
// Methods (--cache, comma-separated, each NAME[:key=value…] as CacheSpec lists; --sweep runs each at every value of
// its main knob instead). `none` always runs, first: the reference for PSNR/SSIM and the baseline of the speedups.
// `bdN`: BlockDance-N with --cache-block / --cache-window. `ada`: BlockDance-Ada with the policy of --policy.
//
// Samples: K per class of a DiT (round robin), K per prompt of PixArt-α / STDiT; every setting the same noise.
// Defaults: K = 50; --quick: K = 3 and one timed run. Each setting runs --repeats times, interleaved (repeat r runs
// every setting before repeat r + 1), after an untimed warm-up (a whole uncached run with --repeats > 1, else 2 steps)
// that compiles the kernels and lets the JIT tier up; the wall-clock is the median, and on the CPU backend the
// process's CPU time beside it (a load-insensitive twin); the samples of every repeat must be identical (else an
// internal error). Quality numbers carry bootstrap 95%
// intervals (Bootstrap: 1000 resamples, seeded; FID 200). Fidelity: EvalSubject says what is measured per model
// kind. Accuracy and FID use the MNIST digit classifier on 1-channel 14×14 digits (DigitsSetup): the requested class of a
// 10-class DiT, or, for a text-to-image model sampled from --prompt texts, the digit each prompt names (prompt adherence).
// --plot writes two figures (ParetoPlot): quality over latency per sample, and over the fraction of FLOPs.
using System.Globalization;
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler.Ada;
using BlockDance.Sampler.Cli;
using BlockDance.Sampler.Evaluation;
using BlockDance.Transformer;

namespace BlockDance.Sampler.Commands;

public static class EvalCommand
{
    public const int DefaultPerClass = 50, QuickPerClass = 3, WarmupSteps = 2, FidReplicates = 200;
    public const string DefaultPolicies = "none,bd2,bd3,bd4";
    public const string DefaultFidStats = "mnist_fid_stats.safetensors";

    /// <summary>A named setting of the comparison: N = null unless BlockDance-N.</summary>
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
            Figure.CheckOutput(ParetoPlot.FlopsPath(plot), "--plot");
        }
        if (a.Get("plot-from") is string from)
        {
            if (a.Get("plot") is not string plotTo || argv.Length != 4)
                throw new UsageException("--plot-from FILE: expected exactly --plot-from FILE --plot OUT.png, found other options");
            var (points, title) = EvalTableReader.Read(from);
            var (lat, flops) = ParetoPlot.Write(plotTo, points, title);
            Console.WriteLine($"wrote {lat} and {flops} (and their SVG twins) from {from}");
            return 0;
        }
        AtomicFile.CheckDistinct(("--out-md", a.Get("out-md")), ("--plot", a.Get("plot")));
        if (a.Has("batch-cache") && !a.Has("batch-sweep")) throw new UsageException("--batch-cache: applies with --batch-sweep only");
        var specs = ParsePolicies(a.Get("cache")!, a.Flag("sweep"));
        int[]? batches = a.Get("batch-sweep") is string bs ? BatchSweep.Parse(bs) : null;
        var batchSpecs = batches != null ? ParsePolicies(a.Get("batch-cache")!, option: "--batch-cache") : [];
        int perClass = a.Flag("quick") ? QuickPerClass : a.GetInt("per-class");
        int repeats = a.Has("repeats") ? a.GetInt("repeats") : a.Flag("quick") ? 1 : a.GetInt("repeats");

        // Everything the user gave is checked against the model before any device work.
        var modelPath = CommonOptions.ModelPath(a);
        var subject = EvalSubject.For(a, modelPath, perClass);
        var ka = a.ForModel(subject.Kind);
        var cfg = subject.Shape;
        var run = subject.Run;
        int steps = run.Options.Steps;
        var bdBase = BlockDanceBase(ka, cfg);
        bool anyAda = specs.Concat(batchSpecs).Any(s => s.Name == "ada");
        if (a.Has("policy") && !anyAda) throw new UsageException("--policy needs the method ada in --cache or --batch-cache");
        (AdaWeights Weights, string Path)? ada = anyAda ? CommonOptions.AdaPolicyFile(a.Get("policy"), cfg, steps, modelPath) : null;
        var digits = subject.Classes != null ? DigitsSetup.Resolve(a, modelPath, cfg) : DigitsSetup.ForCaptions(a, modelPath, cfg, subject.KindName, subject.TargetsMissing);
        Func<ICachePolicy> Make(PolicySpec sp) => sp.Name == "ada" ? () => new AdaPolicy(ada!.Value.Weights, ada.Value.Path) : sp.Spec!.Build(cfg, modelPath, steps, bdBase);
        var makers = specs.ToDictionary(sp => sp.Name, Make);   // exit 2 before any device work
        var batchMakers = batchSpecs.Select(sp => (sp.Name, Make(sp))).ToList();

        using var dev = CommonOptions.Device(a);
        var conditioning = subject.Conditioning(dev);
        int n = conditioning.Count;
        var baseOpts = run.Options with { Progress = true, Policy = () => new NoCache() };
        baseOpts = MemoryPlan.Fit(dev, run.Footprint(dev, conditioning), baseOpts, n, cached: specs.Any(sp => sp.Name != "none"));   // before any allocation
        Console.WriteLine($"model: {modelPath}\n       {run.ConfigText}");
        var model = run.Load(dev);
        using var disposeModel = (IDisposable)model;
        using var classifier = digits.ClassifierPath is string cp ? DigitClassifier.Load(dev, cp) : null;

        // Warm-up (not timed): compiles every kernel at the batch the timed runs use. With repeated timed runs it is a whole
        // uncached run: .NET's tiered JIT recompiles the hot host code (tier 1, with profile data) only after many calls, so a
        // 2-step warm-up left the first repeat's early settings slower than the later ones.
        int batch = baseOpts.BatchFor(n), warmSteps = WarmupStepsFor(repeats, steps);
        Log.Info($"warm-up: {warmSteps} steps at batch {batch} (kernel compilation and JIT tiering; not timed)");
        SamplingSession.Run(model, conditioning.Slice(0, batch), baseOpts with { Steps = warmSteps, Progress = false });
        double? adaOverhead = null;
        if (ada is { } aw)
        {
            AdaEval.Warmup(dev, aw.Weights, batch);   // compiles the decision network's kernels
            adaOverhead = AdaEval.OverheadSecondsPerSample(dev, aw.Weights, batch);
        }

        // Timed runs, interleaved over the settings; quality from the first run of each.
        var results = new Dictionary<string, SamplingResult>();
        var walls = specs.ToDictionary(s => s.Name, _ => new List<double>());
        var cpus = specs.ToDictionary(s => s.Name, _ => new List<double>());   // CPU backend only (see EvalRow.CpuSeconds)
        for (int r = 0; r < repeats; r++)
            foreach (var spec in specs)
            {
                Console.WriteLine($"eval: {spec.Name} ({n} samples, {steps} steps, run {r + 1} of {repeats})");
                var res = SamplingSession.Run(model, conditioning, baseOpts with { Policy = makers[spec.Name], Progress = r == 0 });
                walls[spec.Name].Add(res.WallSeconds);
                if (!dev.IsCuda) cpus[spec.Name].Add(res.CpuSeconds);
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"eval: {spec.Name} run {r + 1}: {res.WallSeconds:F3} s wall, {res.CpuSeconds:F3} s CPU"));
                if (!results.TryAdd(spec.Name, res) && !res.Samples.AsSpan().SequenceEqual(results[spec.Name].Samples))
                    throw new InvalidOperationException($"eval: {spec.Name}: run {r + 1} gave other samples than run 1 from the same noise");
            }

        var measure = new EvalMeasure(dev, subject, results["none"], classifier, digits.Stats, bdBase.Boundary ?? BlockDanceConfig.DefaultBoundary(cfg.Depth));
        var rows = specs.Select(sp => measure.Row(sp, results[sp.Name], walls[sp.Name], walls["none"], sp.Name == "ada" ? AdaDetail(ada!.Value, results[sp.Name], adaOverhead) : null,
            cpus[sp.Name], cpus["none"])).ToList();
        // a policy that describes two settings alike (a knob its description omits) gets the setting's name too
        rows = rows.Select((r, i) => rows.Count(o => o.Method == r.Method && o.Setting == r.Setting) > 1 ? r with { Setting = $"{r.Setting} ({specs[i].Name})" } : r).ToList();
        rows = EvalTable.MarkFrontier(rows);
        var caption = Caption(subject, perClass, repeats, baseOpts, results["none"], cfg, dev, modelPath);
        var notes = Notes(subject, digits, bdBase, cfg, n, repeats).ToList();
        if (!dev.IsCuda) notes.Insert(2, CpuNote(rows));
        if (!measure.HasSsim)
            notes.Add($"SSIM: n/a: the measured images are {measure.ImageShape[2]}×{measure.ImageShape[3]}, smaller than the {ImageMetrics.SsimWindow}×{ImageMetrics.SsimWindow} window.");
        if (ada is { } ad) notes.Add(AdaEval.Note(ad.Weights, ad.Path) + OverheadNote(adaOverhead!.Value, rows.First(r => r.Method == "ada")));
        var text = "Command: `blockdance eval " + string.Join(' ', argv.Select(Quote)) + "`\n\n" + EvalTable.Markdown(caption, rows, notes);

        if (batches != null)
        {
            var all = EvalSubject.First(conditioning, batches[^1]);
            var brows = BatchSweep.Run(model, all, baseOpts, batchMakers, batches, repeats);
            text += "\n## Latency against the batch size\n\n" + BatchSweep.Markdown(
                $"**blockdance eval --batch-sweep**: {Path.GetFileName(modelPath)}, {baseOpts.SamplerName} {steps} steps, cfg {baseOpts.Cfg:0.##}; {dev.Describe()}",
                brows, repeats, batches[^1]);
        }
        Console.WriteLine();
        Console.Write(text);
        if (a.Get("out-md") is string outMd)
        {
            AtomicFile.Write(outMd, s => s.Write(System.Text.Encoding.UTF8.GetBytes(text)));
            Console.WriteLine($"wrote {outMd}");
        }
        if (a.Get("plot") is string plotPath)
        {
            var points = rows.Select(r => new ParetoPoint(r.Method, r.Setting, r.SecondsPerSample, 1 / r.FlopSpeedup, r.Ssim?.Value ?? double.NaN, r.Psnr.Value)).ToList();
            var (lat, flops) = ParetoPlot.Write(plotPath, points,
                $"{run.Name}, {baseOpts.SamplerName} {steps} steps, cfg {baseOpts.Cfg:0.##}, {n} samples per setting, wall-clock median of {repeats}, {(dev.IsCuda ? dev.Name : "CPU")}");
            Console.WriteLine($"wrote {lat} and {flops} (and their SVG twins)");
        }
        return 0;
    }

    static string Quote(string s) => s.Length > 0 && s.All(c => char.IsLetterOrDigit(c) || "-_=.,:/+".Contains(c)) ? s : $"'{s.Replace("'", "'\\''")}'";

    /// <summary>"none,bd2,teacache:delta=0.4" → specs with none first (added if missing); with sweep, every method at each
    /// value of its main knob. Bad names, options or duplicates exit 2.</summary>
    public static List<PolicySpec> ParsePolicies(string list, bool sweep = false, string option = "--cache")
    {
        try { return Parse(list, sweep); }
        catch (UsageException e) when (option != "--cache" && e.Message.StartsWith("--cache", StringComparison.Ordinal))
        { throw new UsageException(option + e.Message["--cache".Length..]); }
    }

    static List<PolicySpec> Parse(string list, bool sweep)
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

    static BlockDanceConfig BlockDanceBase(Args a, BlockShape cfg)
    {
        var window = a.GetDoubleList("cache-window");
        var bd = new BlockDanceConfig(N: 2, Boundary: a.Has("cache-block") ? a.GetInt("cache-block") : null,
            WindowStart: window[0], WindowEnd: window[1]);
        CommonOptions.CheckCacheSettings(bd, cfg);
        return bd;
    }

    /// <summary>What the CPU columns mean, and how far the wall-clock strayed from them in this run (other processes' load).</summary>
    static string CpuNote(IReadOnlyList<EvalRow> rows)
    {
        var ratios = rows.Where(r => r.CpuSeconds is > 0).Select(r => r.WallSeconds / r.CpuSeconds!.Value).ToList();
        string spread = ratios.Count == 0 ? "" : string.Create(CultureInfo.InvariantCulture,
            $" In this run wall-clock / CPU time ranged {ratios.Min():F2}–{ratios.Max():F2} over the rows (median {BatchSweep.Median(ratios):F2}).");
        return "CPU s: the process's CPU time (user + system, all its threads) over the same runs, median; speedup CPU = none's median / the setting's. " +
               "It does not grow while the process waits for a core another process holds, so where speedup wall and speedup CPU disagree, other processes " +
               "loaded the machine during some runs. It is not a pure count of the work: it includes the threads of ILGPU's CPU accelerator, which run the " +
               "few kernels without a host version and spin while they wait, so CPU time can exceed the wall-clock even with --threads 1." + spread;
    }

    /// <summary>Steps of the untimed warm-up: the run's own with repeated timed runs, else 2 (one run's timing is rough anyway).</summary>
    static int WarmupStepsFor(int repeats, int steps) => repeats > 1 ? steps : WarmupSteps;

    static string AdaDetail((AdaWeights Weights, string Path) ada, SamplingResult r, double? overhead) =>
        AdaEval.Detail(ada.Weights.Info, r) + (overhead is double o ? $", policy net {1e3 * o:0.###} ms/sample" : "");

    static string OverheadNote(double perSample, EvalRow row) =>
        $" Inference overhead: the decision network takes {1e3 * perSample:0.###} ms per sample (median of 21 synchronized forwards at the run's batch, " +
        $"divided by it), {100 * perSample / row.SecondsPerSample:0.####}% of ada's wall-clock per sample ({row.SecondsPerSample:0.####} s).";

    static string Caption(EvalSubject s, int perClass, int repeats, SamplingOptions o, SamplingResult reference, BlockShape cfg, ComputeDevice dev, string modelPath)
    {
        int conds = s.Classes != null ? s.Samples / perClass : s.Run.Samples;
        string per = s.Classes != null ? $"{perClass} per class × {conds} classes" : $"{perClass} per prompt × {conds} prompt(s)";
        return $"**blockdance eval**: {s.Samples} samples per setting ({per}), " +
               $"{o.SamplerName} {o.Steps} steps, cfg {o.Cfg:0.##}, seed {o.Seed}, model batch {reference.ModelBatch}, wall-clock median of {repeats} run(s); " +
               $"{Path.GetFileName(modelPath)} ({s.KindName}: {s.Run.Name}, depth {cfg.Depth}, {string.Join("×", s.Run.SampleShape)}); {dev.Describe()}";
    }

    static IEnumerable<string> Notes(EvalSubject s, DigitsSetup digits, BlockDanceConfig bd, BlockShape cfg, int count, int repeats)
    {
        yield return "method / setting: the cache method and its settings as the policy describes itself (blockdance = BlockDance-N, bd<N> in --cache; " +
                     $"blocks 0..b reused on the reuse steps of the window [{bd.WindowStart:0.##}, {bd.WindowEnd:0.##}) of the steps, b = {bd.Boundary ?? BlockDanceConfig.DefaultBoundary(cfg.Depth)} of {cfg.Depth} blocks).";
        yield return $"wall-clock: the whole sampling run of all {count} samples, the median of {repeats} run(s) interleaved over the settings in one process on one device, " +
                     $"after an untimed {WarmupStepsFor(repeats, s.Run.Options.Steps)}-step uncached warm-up at the same batch (kernels compiled, host code JIT-tiered); speedup wall = none's median / the setting's. " +
                     "speedup FLOP = the uncached FLOPs / the FLOPs computed (probes and forecasts' own work excluded); speedup blocks = block evaluations without a cache / computed: the ceilings.";
        yield return "methods (defaults; NAME:key=value overrides; --sweep runs the main knob at the listed values): " + string.Join("; ", CacheSpec.Methods.Where(m => m.Keys.Length > 0)
            .Select(m => $"{m.Name} ({string.Join(", ", m.Keys.Select(k => $"{k.Key} {k.Default}"))}{(m.Knob is string kn ? $"; sweep {kn} = {string.Join("/", m.Sweep)}" : "")}): {m.Summary}")) + ".";
        yield return "Pareto ★: no other row has both a higher wall-clock speedup and a higher PSNR.";
        yield return "blocks skipped: block evaluations skipped / block evaluations without a cache, per sample (steps × depth).";
        yield return $"PSNR / SSIM: against the uncached (none) samples from the same noise, measured on {s.Measured}: " +
                     (s.Measured == "pixels" || s.Measured.StartsWith("VAE") ? "[−1, 1] → [0, 1] (clamped)" : "mapped by the uncached latents' range [min, max] → [0, 1]") +
                     "; PSNR from the MSE over all samples (inf = identical), SSIM the mean over samples, with an 11×11 Gaussian window (σ 1.5, K1 0.01, K2 0.03), valid region only" +
                     (s.Run.IsVideo ? "; a video is one image of C·T channels" : "") + ".";
        yield return $"[95% CI]: percentile bootstrap over the samples ({Bootstrap.DefaultReplicates} resamples, FID {FidReplicates}; SplitMix64 seed {Bootstrap.DefaultSeed}, " +
                     "the same resamples for every row); PSNR's from the resampled mean MSE. An interval without width is printed as its value.";
        foreach (var n in digits.Notes(count, prompts: s.Classes is null, video: s.Run.IsVideo)) yield return n;
    }
}
