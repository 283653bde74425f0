// blockdance bench: forward latency (median after warm-up), per-kernel time, achieved FLOP/s and
// device memory, then full sampling wall clock with no cache and BlockDance N = 2, 3.
//   --model FILE|DIR      any model kind (ModelRun: a DiT checkpoint, a PixArt-α folder with --prompt-embeds/--prompt,
//                         an Open-Sora 1.0 STDiT with --prompt-embeds/--prompt and the video options), sampled with its
//                         kind's defaults (default: the demo model)
//   --preset XL/2 --image-size 256|512   random DiT weights in the real shapes instead
// The forward runs through the model seam (IBlockModel: Embed, RunBlocks, Final), the sampling through SamplingSession.
// Per-kernel times come from a separate, synchronizing profiled pass (KernelCache.Profiling).
using System.Diagnostics;
using System.Text.Json;
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler.Cli;
using BlockDance.Transformer;

namespace BlockDance.Sampler.Commands;

public static class BenchCommand
{
    public sealed record Result(string Device, string Model, int Batch, int ModelBatch, double ForwardMsMedian, double ForwardMsMin,
        double Gflop, double TflopsPerSecond, double DeviceMiB, Dictionary<string, double> KernelMs,
        Dictionary<string, double> SamplingSeconds, Dictionary<string, double> SpeedupVsNone, Dictionary<string, double> TheoreticalSpeedup);

    public static int Run(string[] argv)
    {
        var a = Args.Parse("bench", argv);
        if (a.Get("report") is string rp) AtomicFile.CheckWritable(rp, "--report");
        int batch = a.GetInt("batch");
        int iters = a.GetInt("iters"), warmup = a.GetInt("warmup"), steps = a.GetInt("steps");
        float cfgScale = (float)a.GetDouble("cfg");

        if (a.Has("preset") && a.Has("model"))
            throw new UsageException("bench: expected either --model FILE or --preset NAME (random weights), found both");
        if (a.Has("image-size") && !a.Has("preset"))
            throw new UsageException("--image-size: applies to --preset only (a --model file has its own input size)");
        ModelRun? run = null;
        DiTConfig? preset = null;
        string name;
        if (a.Get("preset") is string presetName)
        {
            preset = PresetConfig(presetName, a.GetInt("image-size"));
            name = $"{preset.Name} at {preset.InputSize * 8}px, random weights";
        }
        else
        {
            name = CommonOptions.ModelPath(a);
            run = ModelRun.For(a, name);                   // every option checked against the model before the device starts
        }
        var stack = preset?.Shape ?? run!.Shape;
        bool labelled = run is null || run.Kind == ModelKind.DiT;
        if (batch == 0) batch = !labelled ? run!.Samples : stack.Classes <= 10 ? stack.Classes : 8;
        using var dev = CommonOptions.Device(a);
        var classes = Enumerable.Range(0, batch).Select(i => i % stack.Classes).ToArray();
        Conditioning conditioning = labelled ? new ClassLabels(classes) : run!.Conditioning(dev).Cycle(batch);
        Console.WriteLine($"model: {name}\n       {run?.ConfigText ?? preset!.ToString()}");
        IBlockModel model;
        if (preset != null)
        {
            var src = new RandomWeightSource(preset);
            model = DiTPipeline.Load(name, dev, src, preset, vaePath: null).Model;
        }
        else model = run!.Load(dev);
        using var disposeModel = (IDisposable)model;
        var shape = model.Shape;

        // ---- forward latency at the sampling batch (CFG doubles it)
        int modelBatch = cfgScale > 1 ? 2 * batch : batch;
        var rows = conditioning.Bind(model, guided: cfgScale > 1);   // the conditioning row of each model row
        using var x = Tensor.Allocate(dev, "x", shape.Batch(modelBatch));
        GaussianNoise.Run(dev, x.View, 0, 0);
        using var o = Tensor.Allocate(dev, "out", shape.Output(modelBatch));
        var ts = Enumerable.Repeat(500f, modelBatch).ToArray();
        void Forward() => model.Final(model.RunBlocks(0, shape.Depth, model.Embed(x, ts, rows)!), o);
        for (int i = 0; i < warmup; i++) Forward();
        dev.Synchronize();
        var times = new List<double>();
        for (int i = 0; i < iters; i++)
        {
            var sw = Stopwatch.StartNew();
            Forward();
            dev.Synchronize();
            times.Add(sw.Elapsed.TotalMilliseconds);
        }
        times.Sort();
        double median = times[times.Count / 2], flops = model.ForwardFlops(modelBatch);
        Console.WriteLine($"forward: batch {batch} (model batch {modelBatch}), median {median:F2} ms of {iters} (min {times[0]:F2}), " +
                          $"{flops / 1e9:F2} GFLOP → {flops / (median / 1e3) / 1e12:F4} TFLOP/s; device buffers {dev.AllocatedBytes / 1048576.0:F0} MiB");

        // ---- per-kernel time (profiled, synchronizing after every launch)
        dev.Kernels.ResetProfile();
        dev.Kernels.Profiling = true;
        int profIters = Math.Max(1, Math.Min(iters, 5));
        for (int i = 0; i < profIters; i++) Forward();
        dev.Kernels.EndProfile();
        dev.Kernels.Profiling = false;
        var kernelMs = dev.Kernels.KernelSeconds.OrderByDescending(kv => kv.Value)
            .ToDictionary(kv => kv.Key, kv => kv.Value * 1e3 / profIters);
        double sum = kernelMs.Values.Sum();
        Console.WriteLine("per kernel (ms per forward, synchronized):");
        foreach (var (k, v) in kernelMs) Console.WriteLine($"  {k,-22} {v,9:F3} ms  {v / sum,6:P1}");

        // ---- sampling wall clock: none vs BlockDance N = 2, 3
        var sampling = new Dictionary<string, double>();
        var speedup = new Dictionary<string, double>();
        var theory = new Dictionary<string, double>();
        if (!a.Flag("no-sampling"))
        {
            // the model kind's sampler (DDIM for the DiT and a preset), at --steps and --cfg, uncached and with BlockDance
            var opts = (run?.Options ?? new SamplingOptions()) with { Classes = labelled ? classes : [], Steps = steps, Cfg = cfgScale, Batch = 0, Progress = false };
            // warm-up: compiles the sampler's kernels so that compilation is not billed to "none"
            SamplingSession.Run(model, conditioning, opts with { Steps = 2 });
            foreach (var (label, make) in new (string, Func<ICachePolicy>)[]
                     {
                         ("none", () => new NoCache()),
                         ("blockdance N=2", () => new BlockDancePolicy(new BlockDanceConfig(2))),
                         ("blockdance N=3", () => new BlockDancePolicy(new BlockDanceConfig(3))),
                     })
            {
                var r = SamplingSession.Run(model, conditioning, opts with { Policy = make });
                sampling[label] = r.WallSeconds;
                speedup[label] = sampling["none"] / r.WallSeconds;
                theory[label] = r.BlocksTotal / (double)r.BlocksComputed;
                Console.WriteLine($"sampling {opts.SamplerName} {steps}, {label,-15}: {r.WallSeconds,8:F2} s  speedup {speedup[label]:F3}× " +
                                  $"(block evaluations {r.BlocksTotal} → {r.BlocksComputed}: theoretical {theory[label]:F3}×, reached {speedup[label] / theory[label]:P1}); " +
                                  $"per step {r.LaunchesPerStep:0.#} launches, {r.HostWaitsPerStep:0.##} host waits");
            }
        }
        var result = new Result(dev.Describe(), name, batch, modelBatch, median, times[0], flops / 1e9, flops / (median / 1e3) / 1e12,
            dev.AllocatedBytes / 1048576.0, kernelMs, sampling, speedup, theory);
        if (a.Get("report") is string reportPath)
            AtomicFile.Write(reportPath, s => JsonSerializer.Serialize(s, result, Summary.Json));
        return 0;
    }

    /// <summary>"XL/2" → DiT-XL/2 with 4 latent channels, learned sigma, 1000 classes, latent = image/8.</summary>
    static DiTConfig PresetConfig(string s, int imageSize)
    {
        var parts = s.Replace("DiT-", "").Split('/');
        var preset = parts.Length == 2 ? Preset.All.FirstOrDefault(p => p.Name == "DiT-" + parts[0]) : null;
        if (preset == null || !int.TryParse(parts[1], out int patch) || patch is not (2 or 4 or 8))
            throw new UsageException($"--preset: expected S|B|L|XL/2|4|8 (e.g. XL/2), found '{s}'");
        if (imageSize % 8 != 0) throw new UsageException($"--image-size: expected a multiple of 8, found {imageSize}");
        return new DiTConfig(preset.Depth, preset.Hidden, preset.Heads, patch, 4, 8, imageSize / 8, 1000);
    }
}
