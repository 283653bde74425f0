// blockdance calibrate: fit what the calibrated caches need for a model (CacheCalibration) and write it as
// JSON next to the model (MODEL.cache-calibration.json), from K uncached samples.
//
//   blockdance calibrate [--model FILE|DIR] [--device auto|cuda|cpu] [--samples 10] [--steps N] [--cfg X] [--seed 2000]
//                        [--class …] [--prompt-embeds FILE | --prompt TEXT] [--target-skip 0.5] [--out FILE]
//
// Any model kind (ModelRun: the DiT, a PixArt-α folder, Open-Sora 1.0's STDiT), sampled as `sample` samples it with
// the same options and that kind's defaults (the step count, the sampler, guidance), so that `sample --cache teacache`
// and `--cache magcache` find a calibration for the run they make. The K samples take the classes (--class, else the
// model's default classes) or the prompt rows (--prompt-embeds, --prompt) in turn, each from its own noise.
// TeaCache's polynomial (input change → output change, degree 4, least squares) and MagCache's residual
// magnitude ratio curve (for this step count) come from CalibrationRecorder. Suggested thresholds: the
// δ of teacache and magcache whose rule, replayed on the recorded signals, skips `--target-skip` of the steps.
using BlockDance.Cache;
using BlockDance.Kernels;
using BlockDance.Sampler.Cli;
using BlockDance.Transformer;

namespace BlockDance.Sampler.Commands;

public static class CalibrateCommand
{

    public static int Run(string[] argv)
    {
        var a = Args.Parse("calibrate", argv);
        if (a.Positional.Count > 0) throw new UsageException($"calibrate: unexpected argument '{a.Positional[0]}'");
        int samples = a.GetInt("samples");
        double target = a.GetDouble("target-skip");
        var modelPath = CommonOptions.ModelPath(a);
        var outPath = a.Get("out") ?? CacheCalibration.PathFor(modelPath);
        if (!outPath.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) throw new UsageException($"--out {outPath}: expected a .json file name");
        AtomicFile.CheckWritable(outPath, "--out");
        var run = ModelRun.For(a, modelPath);                // every option checked against the model before the device starts
        var opts = run.Options with { Progress = true };
        int steps = opts.Steps;

        using var dev = CommonOptions.Device(a);
        var conditioning = run.Conditioning(dev).Cycle(samples);
        if (conditioning is ClassLabels labels) opts = opts with { Classes = labels.Labels.ToList() };
        opts = MemoryPlan.Fit(dev, run.Footprint(dev, conditioning), opts, samples, cached: true);
        Console.WriteLine($"model: {modelPath}");
        Console.WriteLine($"       {run.ConfigText}");
        var model = run.Load(dev);
        using var disposeModel = (IDisposable)model;
        var recorders = new List<CalibrationRecorder>();
        SamplingSession.Run(model, conditioning, opts with { Policy = () => { var r = new CalibrationRecorder(); recorders.Add(r); return r; } });
        var all = new CalibrationRecorder();
        foreach (var r in recorders)
        {
            all.TeaPairs.AddRange(r.TeaPairs);
            all.Magnitudes.AddRange(r.Magnitudes);
            all.InputChanges.AddRange(r.InputChanges);
        }
        var cal = all.Fit(Path.GetFileName(Path.TrimEndingDirectorySeparator(modelPath)), steps, samples);
        cal = cal with { SuggestedThresholds = new()
        {
            ["teacache"] = Bisect(d => TeaSkip(cal, all, steps, d), target),
            ["magcache"] = Bisect(d => new MagCacheConfig(cal.MagRatios, d).ReuseSchedule(steps).Count(x => x) / (double)steps, target),
        } };
        AtomicFile.Write(outPath, s => s.Write(System.Text.Encoding.UTF8.GetBytes(cal.ToJson())));
        Console.WriteLine($"calibrate: {all.TeaPairs.Count} TeaCache pairs, polynomial [{string.Join(", ", cal.TeaCacheCoefficients.Select(c => c.ToString("G4")))}]; " +
                          $"MagCache ratios {cal.MagRatios.Min():F3}..{cal.MagRatios.Max():F3} over {steps} steps ({opts.SamplerName})");
        Console.WriteLine($"suggested for {target:P0} skipped steps: teacache δ={cal.SuggestedThresholds["teacache"]:G3}, magcache δ={cal.SuggestedThresholds["magcache"]:G3}");
        Console.WriteLine($"wrote {outPath}");
        return 0;
    }

    /// <summary>Fraction of steps TeaCache's rule skips on the recorded input changes (all samples).</summary>
    static double TeaSkip(CacheCalibration cal, CalibrationRecorder r, int steps, double delta)
    {
        var cfg = new TeaCacheConfig(delta, cal.TeaCacheCoefficients);
        int skipped = 0, total = 0;
        foreach (var g in r.InputChanges.GroupBy(c => c.Sample))
        {
            double acc = 0;
            foreach (var c in g.OrderBy(c => c.Step))
            {
                total++;
                if (!cfg.Compute(ref acc, c.Change, c.Step == steps - 1)) skipped++;
            }
        }
        return total == 0 ? 0 : skipped / (double)total;
    }

    /// <summary>The smallest δ in [0, 10] whose skipped fraction reaches the target (skip grows with δ).</summary>
    static double Bisect(Func<double, double> skip, double target)
    {
        double lo = 0, hi = 10;
        for (int k = 0; k < 40; k++)
        {
            double mid = (lo + hi) / 2;
            if (skip(mid) >= target) hi = mid; else lo = mid;
        }
        return Math.Round(hi, 4);
    }
}
