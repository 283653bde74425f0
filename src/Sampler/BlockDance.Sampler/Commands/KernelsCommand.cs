// blockdance kernels: the kernel harness (llm.c style). For every op found by KernelOps.All (or --op), every
// version (or --version) and every shape of the set (--shapes small|xl): prepare seeded inputs, validate the
// version against its reference (tolerance, max error and first mismatches printed), then time it as llm.c's
// benchmark_kernel does: warm-up launches, then --iters launches back to back between two synchronizations
// (no host wait between launches), the time per launch = elapsed / iters; the median of 5 such rounds is
// reported in µs with TFLOP/s and GB/s (the shape's bytes moved), and the ratio of throughput to the vendor
// baseline (cuBLAS on CUDA) run on the same shape in the same process. Exit 1 when any validation fails.
using System.Diagnostics;
using BlockDance.Kernels;
using BlockDance.Kernels.Harness;
using BlockDance.Sampler.Cli;

namespace BlockDance.Sampler.Commands;

public static class KernelsCommand
{
    public static int Run(string[] argv)
    {
        var a = Args.Parse("kernels", argv);
        var kind = a.GetChoice<DeviceKind>("device");
        var ops = KernelOps.All.Where(o => a.Get("op") is not string name || o.Name == name).ToList();
        if (ops.Count == 0)
            throw new UsageException($"--op: expected one of {string.Join(", ", KernelOps.All.Select(o => o.Name))}, found '{a.Get("op")}'");
        // 8 warps per group on the CPU accelerator (default) so the 256-thread tiled versions run there too;
        // --cpu-warps 1 is the model's CPU device (faster for the grid-stride versions; tiled ones are skipped).
        using var dev = ComputeDevice.Create(kind, cpuWarpsPerGroup: a.GetInt("cpu-warps"), threads: CommonOptions.Threads(a));
        Console.WriteLine($"device: {dev.Describe()}");
        var set = a.Get("shapes") ?? (dev.IsCuda ? "xl" : "small");
        if (set is not ("xl" or "small" or "demo")) throw new UsageException($"--shapes: expected xl, small or demo, found '{set}'");
        int iters = a.GetInt("iters", orElse: dev.IsCuda ? 50 : 3);
        var versionArg = a.Get("version")!;
        int failed = 0;
        foreach (var op in ops)
        {
            var versions = versionArg == "all" ? op.Versions : versionArg.Split(',').ToList();
            foreach (var v in versions)
                if (!op.Versions.Contains(v))
                    throw new UsageException($"--version: expected all or one of {string.Join(", ", op.Versions)} for {op.Name}, found '{v}'");
            Console.WriteLine($"{"op",-10} {"version",-10} {"shape",-24} {"check",-30} {"µs/launch",11} {"TFLOP/s",9} {"GB/s",8} {"vs baseline",22}");
            foreach (var shape in op.Shapes(set))
            {
                var baselines = new Dictionary<string, (string Name, double Us)?>();
                foreach (var v in versions)
                {
                    if (!op.Supports(dev, v))
                    {
                        Console.WriteLine($"{op.Name,-10} {v,-10} {shape.Label,-24} skipped: not supported on {dev.Name}");
                        continue;
                    }
                    string check;
                    double us;
                    using (var trial = op.Prepare(dev, v, shape))
                    {
                        var val = trial.Validation;
                        check = val.Passed ? $"ok (max err {val.MaxAbsError:E1})" : $"FAIL (max err {val.MaxAbsError:E1})";
                        if (!val.Passed)
                        {
                            failed++;
                            Console.WriteLine($"{op.Name,-10} {v,-10} {shape.Label,-24} {check}: tolerance {val.Atol:E1} + {val.Rtol:E1}·|ref|; " +
                                              string.Join("; ", val.FirstMismatches));
                            continue;
                        }
                        us = Median(dev, trial.Launch, iters);
                    }
                    var baseline = Baseline(dev, op, v, shape, iters, baselines);
                    var ratio = baseline is { } bl ? $"{bl.Us / us:F2}× of {bl.Name}" : dev.IsCuda ? "no baseline" : "-";
                    Console.WriteLine($"{op.Name,-10} {v,-10} {shape.Label,-24} {check,-30} {us,11:F1} {shape.Flops / us / 1e6,9:F3} {shape.Bytes / us / 1e3,8:F1} {ratio,22}");
                }
                foreach (var (key, bl) in baselines)
                    if (bl is { } b) Console.WriteLine($"{op.Name,-10} {"baseline",-10} {shape.Label,-24} {b.Name,-30} {b.Us,11:F1} {shape.Flops / b.Us / 1e6,9:F3} {shape.Bytes / b.Us / 1e3,8:F1}");
            }
        }
        Console.WriteLine(failed == 0 ? "kernels: every version matched its reference" : $"kernels: {failed} validation(s) FAILED");
        return failed == 0 ? 0 : 1;
    }

    /// <summary>The vendor baseline for (op, version, shape), timed once per shape and baseline name.</summary>
    static (string Name, double Us)? Baseline(ComputeDevice dev, IKernelOp op, string version, KernelShape shape, int iters,
        Dictionary<string, (string Name, double Us)?> done)
    {
        string name;
        KernelTrial? trial;
        try
        {
            if (op is IVersionBaseline vb)
            {
                var key = vb.PrepareBaseline(dev, version, shape);
                if (done.TryGetValue(key.Name, out var known)) { key.Trial?.Dispose(); return known; }
                (name, trial) = key;
            }
            else
            {
                name = "baseline";
                if (done.TryGetValue(name, out var known)) return known;
                trial = op.PrepareBaseline(dev, shape);
            }
        }
        catch (Exception e)
        {
            Log.Info($"{op.Name}: vendor baseline unavailable on this machine ({e.GetBaseException().Message})");
            done["unavailable"] = null;
            return null;
        }
        if (trial == null) { done[name] = null; return null; }
        using (trial)
        {
            var result = ((string Name, double Us)?)(name, Median(dev, trial.Launch, iters));
            done[name] = result;
            return result;
        }
    }

    /// <summary>Time per launch in µs: warm-up launches, then 5 rounds of `iters` launches queued back to back
    /// between two synchronizations (elapsed / iters per round); the median round.</summary>
    static double Median(ComputeDevice dev, Action launch, int iters)
    {
        const int rounds = 5;
        for (int i = 0; i < Math.Min(3, iters); i++) launch();
        dev.Synchronize();
        var times = new double[rounds];
        var sw = new Stopwatch();
        for (int r = 0; r < rounds; r++)
        {
            sw.Restart();
            for (int i = 0; i < iters; i++) launch();
            dev.Synchronize();
            times[r] = sw.Elapsed.TotalMicroseconds / iters;
        }
        Array.Sort(times);
        return times[rounds / 2];
    }
}
