// blockdance sample --out-dir DIR: many samples, one PNG each, split over processes and machines.
//
//   blockdance sample --out-dir DIR (--count N | --per-class K | --classes-file FILE) [--class 1,2]
//                     [--shard i/n] [sampling, cache and model options as for sample]
//
// The global list: sample k has class L[k mod |L|] (L = --class, default every class of the model) for
// --count N and --per-class K (N = K·|L|), or the class on line k of --classes-file (one integer a line,
// '#' comments). Sample k is written as DIR/<k, 6+ digits>.png; its noise depends only on (--seed, k)
// (IndexedNoise), so any split gives the same files as one unsharded run. A shard (Cli/Shard.cs: --shard,
// Slurm, Kubernetes) takes k = i, i + n, …; n must divide the count. A rerun skips the PNGs already there
// (each appears whole or not at all: AtomicFile), so a preempted shard resumes. Each shard writes
// DIR/manifest-<i>-of-<n>.csv (index, class, seed, policy, file) under a settings line that a rerun and
// `blockdance merge` require to be the same. The PNGs are 8-bit, unscaled (pixel models: [−1, 1] → [0, 255];
// latent models: decoded by the VAE).
using System.Globalization;
using System.Text;
using BlockDance.Kernels;
using BlockDance.Sampler.Cli;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;
using StbImageWriteSharp;

namespace BlockDance.Sampler.Commands;

public static class SampleSetCommand
{
    const int DefaultChunk = 64;   // samples between writes: a preempted shard loses at most this many
    /// <summary>Most samples one job draws: 10,000,000 (FID uses 50,000); the work list and manifests stay under ~1 GB.</summary>
    public const int MaxSamples = 10_000_000;

    public static int Run(string[] argv)
    {
        var a = Args.Parse("sample --out-dir", argv);
        var dir = a.Get("out-dir")!;
        if (dir.Length == 0) throw new UsageException("--out-dir: expected a folder name, found an empty string");
        var shard = Shard.Resolve(a.Get("shard"), Environment.GetEnvironmentVariable);
        int given = new[] { "count", "per-class", "classes-file" }.Count(a.Has);
        if (given != 1)
            throw new UsageException($"sample --out-dir: expected exactly one of --count N, --per-class K, --classes-file FILE, found {given}");
        if (File.Exists(dir)) throw new UsageException($"--out-dir {dir}: expected a folder, found a file");
        if (Path.GetDirectoryName(Path.GetFullPath(dir)) is string parent && !Directory.Exists(parent))
            throw new UsageException($"--out-dir {dir}: the parent folder {parent} does not exist");

        var modelPath = CommonOptions.ModelPath(a);
        using var src = (IDisposable)ModelLoader.OpenSource(modelPath);
        var weights = (IWeightSource)src;
        var cfg = CommonOptions.DetectConfig(a, weights);
        var opts = CommonOptions.Sampling(a, cfg) with { Policy = CommonOptions.Cache(a, cfg) };
        var classes = WorkList(a, cfg, opts.Classes);
        long total = classes.Count;
        if (total % shard.Count != 0)
            throw new UsageException($"--shard {shard}: expected a shard count that divides the {total} samples, found {shard.Count} (remainder {total % shard.Count})");
        bool latent = cfg.InChannels is not (1 or 3);
        string? vaePath = latent ? ModelLoader.FindVae(modelPath, a.Get("vae")) : null;
        if (vaePath != null) Transformer.Vae.VaeWeights.Preflight(vaePath);   // config and header checked before sampling, not after
        if (latent && vaePath == null)
            throw new UsageException($"sample --out-dir: this is a {cfg.InChannels}-channel latent model and no VAE decoder was found (expected --vae DIR|FILE)");

        string policy = PolicyText(a);
        string settings = $"# blockdance sample: total={total} model={Path.GetFileName(Path.TrimEndingDirectorySeparator(modelPath))} " +
                          $"sampler={opts.SamplerName} steps={opts.Steps} spacing={opts.EffectiveSpacing} cfg={opts.Cfg.ToString("R", CultureInfo.InvariantCulture)} " +
                          $"cfg-channels={opts.CfgChannels} seed={opts.Seed} policy={policy}";
        int digits = Math.Max(6, (total - 1).ToString(CultureInfo.InvariantCulture).Length);
        string manifest = Path.Combine(dir, $"manifest-{shard.Index}-of-{shard.Count}.csv");
        if (FileKind.Of(manifest) != PathKind.Missing && InputFile.ReadLines(manifest, "--out-dir manifest").FirstOrDefault() is var written && written != settings)
            throw new UsageException($"--out-dir {dir}: expected the settings of the run that wrote {Path.GetFileName(manifest)} " +
                                     $"({written}), found {settings}");

        var mine = shard.Indices(total).ToList();
        var todo = mine.Where(k => !Present(Path.Combine(dir, Name(k, digits)))).ToList();
        Console.WriteLine($"shard {shard}: {mine.Count} of {total} samples (k = {shard.Index} + {shard.Count}·j), " +
                          $"{mine.Count - todo.Count} already in {dir}, {todo.Count} to draw");
        Directory.CreateDirectory(dir);
        if (todo.Count > 0)
        {
            using var dev = CommonOptions.Device(a);
            int chunk = opts.Batch > 0 ? opts.Batch : DefaultChunk;
            var fitted = MemoryPlan.Fit(dev, cfg, opts with { Classes = [.. todo.Take(chunk).Select(k => classes[(int)k])] }, cached: policy != "none");
            chunk = Math.Min(chunk, fitted.EffectiveBatch);
            using var pipe = DiTPipeline.Load(modelPath, dev, weights, cfg, vaePath);
            var model = pipe.Model;
            var sw = System.Diagnostics.Stopwatch.StartNew();
            for (int first = 0; first < todo.Count; first += chunk)
            {
                var ks = todo.Skip(first).Take(chunk).ToList();
                var run = opts with { Classes = [.. ks.Select(k => classes[(int)k])], SampleIndices = ks, Batch = ks.Count };
                var result = SamplingSession.Run(model, run);
                var px = SampleImages.ToPixels(dev, vaePath, result);
                var (pixels, shape, lo, hi) = (px.Values, px.Shape, px.Lo, px.Hi);
                using (var group = AtomicFile.BeginGroup())
                {
                    for (int r = 0; r < ks.Count; r++) WritePng(Path.Combine(dir, Name(ks[r], digits)), pixels, shape, r, lo, hi);
                    group.Commit();
                }
                Console.WriteLine($"shard {shard}: {first + ks.Count}/{todo.Count} drawn ({sw.Elapsed.TotalSeconds:F1} s)");
            }
        }
        var sb = new StringBuilder(settings).Append("\nindex,class,seed,policy,file\n");
        foreach (var k in mine) sb.Append(CultureInfo.InvariantCulture, $"{k},{classes[(int)k]},{opts.Seed},{policy},{Name(k, digits)}\n");
        AtomicFile.Write(manifest, s => s.Write(Encoding.UTF8.GetBytes(sb.ToString())));
        Console.WriteLine($"wrote {manifest}: {mine.Count} samples");
        return 0;
    }

    /// <summary>A sample already drawn: a regular file (written whole by AtomicFile). A FIFO, folder or device under a sample's
    /// name is refused (merge would block on it or read garbage), not skipped as done.</summary>
    static bool Present(string png) => FileKind.Of(png) switch
    {
        PathKind.Missing => false,
        PathKind.Regular or PathKind.Unknown => true,
        var k => throw new UsageException($"--out-dir: {png}: expected a PNG written by an earlier run or nothing, found {FileKind.Describe(k)}"),
    };

    public static string Name(long k, int digits) => k.ToString(new string('0', digits), CultureInfo.InvariantCulture) + ".png";

    /// <summary>The class of every global sample index.</summary>
    static List<int> WorkList(Args a, DiTConfig cfg, IReadOnlyList<int> classList)
    {
        if (a.Get("classes-file") is string file)
        {
            if (!File.Exists(file)) throw new UsageException($"--classes-file {file}: file not found");
            var list = new List<int>();
            int line = 0;
            foreach (var raw in InputFile.ReadLines(file, "--classes-file"))   // a FIFO or device is refused, not read
            {
                line++;
                var s = raw.Split('#')[0].Trim();
                if (s.Length == 0) continue;
                if (!int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var y) || y >= cfg.NumClasses)
                    throw new UsageException($"--classes-file {file}: line {line}: expected a class 0..{cfg.NumClasses - 1}, found '{s}'");
                list.Add(y);
            }
            if (list.Count == 0) throw new UsageException($"--classes-file {file}: expected at least one class, found none");
            if (list.Count > MaxSamples) throw new UsageException($"--classes-file {file}: expected at most {MaxSamples} samples, found {list.Count}");
            return list;
        }
        long n = a.Has("count") ? a.GetInt("count") : (long)a.GetInt("per-class") * classList.Count;
        if (n > MaxSamples)
            throw new UsageException($"--{(a.Has("count") ? "count" : "per-class")}: expected at most {MaxSamples} samples in all ({classList.Count} classes), found {n}");
        return Enumerable.Range(0, (int)n).Select(k => classList[k % classList.Count]).ToList();
    }

    static string PolicyText(Args a)
    {
        var parts = new List<string> { a.Get("cache")! };
        foreach (var o in CommonOptions.CacheOpts.Skip(1))
            if (a.Get(o) is string v) parts.Add($"{o}={(o == "policy" ? Path.GetFileName(v) : v)}");
        return string.Join(" ", parts).Replace(',', ';');   // no commas inside a CSV cell
    }

    /// <summary>Sample r of (N, C, H, W) in [lo, hi] → an 8-bit grey or RGB PNG at its own size.</summary>
    static void WritePng(string path, float[] images, int[] shape, int r, float lo, float hi)
    {
        int c = shape[1], h = shape[2], w = shape[3];
        var px = new byte[h * w * c];
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
                for (int ch = 0; ch < c; ch++)
                    px[(y * w + x) * c + ch] = ImageGrid.ToByte(images[(((long)r * c + ch) * h + y) * w + x], lo, hi);
        AtomicFile.Write(path, s => new ImageWriter().WritePng(px, w, h, c == 1 ? ColorComponents.Grey : ColorComponents.RedGreenBlue, s));
    }
}
