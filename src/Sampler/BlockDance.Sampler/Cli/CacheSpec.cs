// The cache methods by name, with their options: the one place `sample --cache` and `eval --cache` read them.
//
//   NAME[:key=value[:key=value…]]        e.g. teacache:delta=0.4   dbcache:fn=2:threshold=0.1   bd-adaptive:delta=0.2:max=4
//
// Every method has defaults (below) and one main knob that `eval --sweep` varies. teacache and magcache
// read the model's calibration (CacheCalibration, written by `blockdance calibrate`) and refuse without it.
using System.Globalization;
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Transformer;

namespace BlockDance.Sampler.Cli;

public sealed record CacheSpec(string Name, IReadOnlyDictionary<string, double> Options)
{
    /// <summary>A method: its option keys with defaults, the main knob and the values a sweep tries.</summary>
    public sealed record Method(string Name, string Summary, (string Key, double Default)[] Keys, string? Knob, double[] Sweep);

    // each method's defaults are its config record's (src/Cache); the table only names them for parsing
    static readonly DbCacheConfig Db = new();
    static readonly TaylorSeerConfig Ts = new();
    static readonly MagCacheConfig Mag = new([]);
    static readonly BlockDanceAdaptiveConfig Bda = new();
    static readonly PabConfig Pab = new();
    static readonly ToCaConfig ToCa = new();
    static readonly AdaCacheConfig AdaC = new();

    public static readonly Method[] Methods =
    [
        new("none", "no cache", [], null, []),
        new("fora", "FORA: every block's attention and MLP outputs recomputed every n steps, reused with the current gates",
            [("n", new ForaConfig().N)], "n", [2, 3, 4]),
        new("delta-dit", "Δ-DiT: cached deviation of the rear blocks early, the front blocks late; refresh every n steps",
            [("n", new DeltaDitConfig().N), ("k", new DeltaDitConfig().Blocks ?? 0), ("cutoff", new DeltaDitConfig().Cutoff)], "n", [2, 3, 4]),
        new("teacache", "TeaCache: accumulated rescaled change of block 0's modulated input; whole-stack residual (calibrated)",
            [("delta", TeaCacheConfig.DefaultThreshold)], "delta", [0.02, 0.04, 0.08, 0.15]),
        new("fbcache", "First-Block Cache: block 0's residual change gates blocks 1..L−1",
            [("threshold", new FirstBlockCacheConfig().Threshold)], "threshold", [0.02, 0.05, 0.1, 0.2]),
        new("dbcache", "DBCache: first fn blocks probe, residual gate on the middle, last bn blocks computed; warm-up and caps",
            [("fn", Db.Fn), ("bn", Db.Bn), ("threshold", Db.Threshold), ("warmup", Db.Warmup), ("max-consecutive", Db.MaxConsecutive), ("max-cached", Db.MaxCached)],
            "threshold", [0.04, 0.08, 0.15, 0.3]),
        new("taylorseer", "TaylorSeer: whole-stack residual forecast from finite differences every interval steps",
            [("interval", Ts.Interval), ("order", Ts.Order), ("warmup", Ts.Warmup)], "interval", [2, 3, 5, 8]),
        new("magcache", "MagCache: calibrated residual-magnitude ratio curve, accumulated error, skip cap k",
            [("delta", Mag.Threshold), ("k", Mag.MaxConsecutive), ("warmup", Mag.Warmup)], "delta", [0.02, 0.04, 0.06, 0.1]),
        new("bd", "BlockDance-N (bd2, bd3, …): blocks 0..b reused on fixed steps of the window",
            [("n", new BlockDanceConfig().N), ("block", -1)], "n", [2, 3, 4, 5]),
        new("bd-adaptive", "BlockDance, reuse decided per sample by the accumulated change rate of the boundary feature",
            [("delta", Bda.Threshold), ("max", Bda.MaxConsecutive), ("block", -1), ("order", Bda.Order)], "delta", [0.05, 0.1, 0.2, 0.3, 0.5]),
        new("bd-taylor", "BlockDance-N with the boundary feature forecast (Taylor order 1/2) on reuse steps",
            [("n", BlockDanceTaylorConfig.DefaultN), ("order", new BlockDanceTaylorConfig(new()).Order), ("block", -1)], "n", [2, 3, 4, 5]),
        new("pab", "PAB: self-/temporal/cross-attention outputs broadcast over ranges spatial < temporal < cross inside the t window (from, to); optional MLP broadcast",
            [("spatial", Pab.Spatial), ("temporal", Pab.Temporal), ("cross", Pab.Cross), ("from", Pab.From), ("to", Pab.To), ("mlp", Pab.Mlp ? 1 : 0),
             ("mlp-blocks", Pab.MlpBlocks), ("mlp-skip", Pab.MlpSkip), ("scale", Pab.ScaleRanges ? 1 : 0)], "spatial", [2, 3, 4, 6]),
        new("toca", "ToCa: fresh step every n; between, per block only the top ratio of tokens (cache-frequency + spatial score) recompute cross-attention and MLP",
            [("n", ToCa.N), ("ratio", ToCa.Ratio), ("weight", ToCa.Weight), ("bonus", ToCa.Bonus), ("grid", ToCa.Grid), ("schedule", ToCa.Schedule ? 1 : 0)],
            "n", [2, 3, 4, 5]),
        new("adacache", "AdaCache: per-block residuals reused; the next recompute step from a codebook over the probe residual's change (thresholds × scale)",
            [("scale", AdaC.Scale)], "scale", [0.5, 1, 2, 4]),
        new("l2c", "Learning-to-Cache: a trained router per (step, block, branch); branches with θ < threshold reuse the previous step's output (--policy FILE, default models/l2c_router.safetensors)",
            [("threshold", 0.5)], "threshold", [0.05, 0.2, 0.5, 0.8, 0.95]),
        new("ada", "BlockDance-Ada: learned per-sample decisions (--policy FILE)", [], null, []),
    ];

    /// <summary>The shipped Learning-to-Cache router (for models/dit_mnist.safetensors).</summary>
    public const string DefaultRouter = "models/l2c_router.safetensors";

    public static string Names => string.Join(", ", Methods.Select(m => m.Name == "bd" ? "bd<N>" : m.Name));

    public double this[string key] => Options[key];

    /// <summary>A label for tables: the name, and the options that differ from the defaults.</summary>
    public string Label
    {
        get
        {
            if (Name == "bd") return $"bd{(int)Options["n"]}" + (Options["block"] >= 0 ? $":block={Options["block"]}" : "");
            var m = Methods.First(x => x.Name == Name);
            var diff = m.Keys.Where(k => Options[k.Key] != k.Default).Select(k => $"{k.Key}={Options[k.Key].ToString(CultureInfo.InvariantCulture)}");
            return string.Join(":", new[] { Name }.Concat(diff));
        }
    }

    /// <summary>"teacache:delta=0.4" → the spec with every default filled in; unknown names/keys/values exit 2.</summary>
    public static CacheSpec Parse(string text)
    {
        var parts = text.Trim().Split(':');
        var name = parts[0].ToLowerInvariant();
        var opts = new Dictionary<string, double>();
        if (name.StartsWith("blockdance") && name.Length > "blockdance".Length) name = "bd" + name["blockdance".Length..];
        if (name.Length > 2 && name.StartsWith("bd") && char.IsDigit(name[2]))
        {
            if (!int.TryParse(name[2..], out int n) || n < 1 || n > 1000)
                throw new UsageException($"--cache: expected bd<N> with 1 ≤ N ≤ 1000, found '{parts[0]}'");
            opts["n"] = n;
            name = "bd";
        }
        var method = Methods.FirstOrDefault(m => m.Name == name)
            ?? throw new UsageException($"--cache: expected one of {Names} (options as name:key=value), found '{parts[0]}'");
        foreach (var kv in parts.Skip(1))
        {
            var eq = kv.Split('=', 2);
            var key = eq[0].ToLowerInvariant();
            if (eq.Length != 2 || !method.Keys.Any(k => k.Key == key))
                throw new UsageException($"--cache {name}: expected key=value with key one of {(method.Keys.Length == 0 ? "(none)" : string.Join(", ", method.Keys.Select(k => k.Key)))}, found '{kv}'");
            if (!double.TryParse(eq[1], NumberStyles.Float, CultureInfo.InvariantCulture, out double v) || !double.IsFinite(v))
                throw new UsageException($"--cache {name}:{key}: expected a finite number, found '{eq[1]}'");
            opts[key] = v;
        }
        foreach (var (k, d) in method.Keys) opts.TryAdd(k, d);
        return new CacheSpec(method.Name, opts);
    }

    /// <summary>The spec with its main knob set to each of the method's sweep values (itself when it has none).</summary>
    public IEnumerable<CacheSpec> Sweep()
    {
        var m = Methods.First(x => x.Name == Name);
        if (m.Knob is null) return [this];
        return m.Sweep.Select(v => this with { Options = new Dictionary<string, double>(Options) { [m.Knob] = v } });
    }

    int Int(string key, int min)
    {
        double v = Options[key];
        if (v != Math.Floor(v) || v < min || v > 100_000) throw new UsageException($"--cache {Name}:{key}: expected an integer ≥ {min}, found {v.ToString(CultureInfo.InvariantCulture)}");
        return (int)v;
    }

    bool Flag(string key)
    {
        double v = Options[key];
        if (v != 0 && v != 1) throw new UsageException($"--cache {Name}:{key}: expected 0 or 1, found {v.ToString(CultureInfo.InvariantCulture)}");
        return v == 1;
    }

    int? Block(BlockShape cfg)
    {
        int b = Int("block", -1);
        if (b >= cfg.Depth - 1) throw new UsageException($"--cache {Name}:block: expected 0..{cfg.Depth - 2} for a {cfg.Depth}-block model, found {b}");
        return b < 0 ? null : b;
    }

    /// <summary>The policy factory, checked against the model and the run before any sampling (exit 2 when invalid).
    /// ada is built by the caller (it needs its policy file).</summary>
    public Func<ICachePolicy> Build(DiTConfig cfg, string modelPath, int steps, BlockDanceConfig? bdBase = null, string? policyFile = null) =>
        Build(cfg.Shape, modelPath, steps, bdBase, policyFile);

    /// <summary>The method's policy factory for a model's block stack, its settings checked (exit 2 when invalid).</summary>
    public Func<ICachePolicy> Build(BlockShape cfg, string modelPath, int steps, BlockDanceConfig? bdBase = null, string? policyFile = null)
    {
        var bd = bdBase ?? new BlockDanceConfig();
        try
        {
            switch (Name)
            {
                case "none": return () => new NoCache();
                case "bd":
                {
                    var c = bd with { N = Int("n", 1), Boundary = Block(cfg) ?? bd.Boundary };
                    c.Validate(cfg.Depth);
                    return () => new BlockDancePolicy(c);
                }
                case "bd-taylor":
                {
                    var c = new BlockDanceTaylorConfig(bd with { N = Int("n", 1), Boundary = Block(cfg) ?? bd.Boundary }, Int("order", 0));
                    c.Validate(cfg.Depth);
                    return () => new BlockDanceTaylorPolicy(c);
                }
                case "bd-adaptive":
                {
                    var c = new BlockDanceAdaptiveConfig(this["delta"], Int("max", 0), Block(cfg) ?? bd.Boundary, bd.WindowStart, bd.WindowEnd, Int("order", 0));
                    c.Validate(cfg.Depth);
                    return () => new BlockDanceAdaptivePolicy(c);
                }
                case "fora":
                {
                    var c = new ForaConfig(Int("n", 1));
                    c.Validate();
                    return () => new ForaPolicy(c);
                }
                case "delta-dit":
                {
                    int k = Int("k", 0);
                    var c = new DeltaDitConfig(Int("n", 1), k == 0 ? null : k, this["cutoff"]);
                    c.Validate(cfg.Depth);
                    return () => new DeltaDitPolicy(c);
                }
                case "fbcache":
                {
                    var c = new FirstBlockCacheConfig(this["threshold"]);
                    c.Validate();
                    if (cfg.Depth < 2) throw new UsageException($"--cache fbcache: expected a model of at least 2 blocks, found {cfg.Depth}");
                    return () => new FirstBlockCachePolicy(c);
                }
                case "dbcache":
                {
                    var c = new DbCacheConfig(Int("fn", 1), Int("bn", 0), this["threshold"], Int("warmup", 0), Int("max-consecutive", 0), Int("max-cached", 0));
                    c.Validate(cfg.Depth);
                    return () => new DbCachePolicy(c);
                }
                case "taylorseer":
                {
                    var c = new TaylorSeerConfig(Int("interval", 1), Int("order", 0), Int("warmup", 0));
                    c.Validate();
                    return () => new TaylorSeerPolicy(c);
                }
                case "pab":
                {
                    var c = new PabConfig(Int("spatial", 0), Int("temporal", 0), Int("cross", 0), this["from"], this["to"], Flag("mlp"),
                        Int("mlp-blocks", 0), Int("mlp-skip", 1), Flag("scale"));
                    c.Validate();
                    return () => new PabPolicy(c);
                }
                case "toca":
                {
                    var c = new ToCaConfig(Int("n", 1), this["ratio"], this["weight"], this["bonus"], Int("grid", 1), Flag("schedule"));
                    c.Validate();
                    return () => new ToCaPolicy(c);
                }
                case "adacache":
                {
                    var c = AdaC with { Scale = this["scale"] };
                    c.Validate();
                    return () => new AdaCachePolicy(c);
                }
                case "l2c":
                {
                    var c = Router(policyFile, modelPath, this["threshold"]);
                    c.Validate();
                    return () => new LearningToCachePolicy(c);
                }
                case "teacache":
                {
                    var cal = Calibration(modelPath);
                    var c = new TeaCacheConfig(this["delta"], cal.TeaCacheCoefficients);
                    c.Validate();
                    return () => new TeaCachePolicy(c);
                }
                case "magcache":
                {
                    var cal = Calibration(modelPath);
                    if (cal.Steps != steps)
                        throw new UsageException($"--cache magcache: the calibration {CacheCalibration.PathFor(modelPath)} is for {cal.Steps} steps, " +
                                                 $"the run has {steps} (run 'blockdance calibrate --steps {steps}')");
                    var c = new MagCacheConfig(cal.MagRatios, this["delta"], Int("k", 0), this["warmup"]);
                    c.Validate(steps);
                    return () => new MagCachePolicy(c);
                }
                default: throw new UsageException($"--cache: '{Name}' cannot be built here");
            }
        }
        catch (InvalidValueException e) { throw new UsageException($"--cache {Label}: {e.Message}"); }
    }

    /// <summary>The router file (--policy, or the shipped one), checked to be a router trained for this model file.</summary>
    static LearningToCacheConfig Router(string? given, string modelPath, double threshold)
    {
        var path = given ?? CommonOptions.FindShipped(DefaultRouter) ?? DefaultRouter;
        if (!File.Exists(path))
            throw new UsageException($"--policy {path}: file not found; train a router with tools/train/train_l2c.py (writes {DefaultRouter}) or pass --policy FILE");
        Transformer.IO.FileKind.RequireRegular(path, "--policy");
        try
        {
            if (LearningToCacheFile.Model(path) is string trained && trained != Path.GetFileName(modelPath))
                throw new UsageException($"--cache l2c: the router {path} was trained for {trained}, found the model {Path.GetFileName(modelPath)} " +
                                         "(train one for it with tools/train/train_l2c.py, or pass --policy FILE)");
            return LearningToCacheFile.Load(path, threshold);
        }
        catch (Transformer.IO.SafeTensorsException e) { throw new UsageException($"--policy {path}: {e.Message}"); }
    }

    CacheCalibration Calibration(string modelPath)
    {
        var path = CacheCalibration.PathFor(modelPath);
        try { return CacheCalibration.Load(path, Name, p => Transformer.IO.InputFile.ReadText(p, "calibration file")); }
        catch (CacheException e) when (!File.Exists(path))
        {
            throw new UsageException($"--cache {Name}: {e.Message}; run 'blockdance calibrate --model {modelPath}'");
        }
        catch (CacheException e) { throw new UsageException($"--cache {Name}: {e.Message}"); }
    }
}
