// The engine side of `tools/bench/side_by_side.sh cpu` for what `blockdance bench` does not time:
//   CpuBench gemm --shapes xl|demo [--threads N] [--iters I] [--json FILE]
//       the host GEMM (packed weights, epilogue None) at the shapes of bench_torch.py --gemm
//   CpuBench vae --model FILE [--latent 32] [--threads N] [--iters I] [--json FILE]
//       SD-VAE decode of one latent (1, 4, S, S) on the host backend
// Each figure: median, min and max of --iters timed runs after one warm-up run, in ms.
using System.Diagnostics;
using System.Text.Json;
using BlockDance.Kernels;
using BlockDance.Transformer.Vae;

static string Arg(string[] a, string name, string dflt)
{
    int i = Array.IndexOf(a, "--" + name);
    return i >= 0 && i + 1 < a.Length ? a[i + 1] : dflt;
}

static (double Median, double Min, double Max) Time(int iters, Action run)
{
    run();
    var t = new List<double>();
    for (int i = 0; i < iters; i++)
    {
        var sw = Stopwatch.StartNew();
        run();
        t.Add(sw.Elapsed.TotalMilliseconds);
    }
    t.Sort();
    return (t[t.Count / 2], t[0], t[^1]);
}

static float[] Random(int seed, long n, float scale)
{
    var r = new Random(seed);
    var a = new float[n];
    for (long i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1) * scale;
    return a;
}

var what = args.Length > 0 ? args[0] : "";
int? threads = Arg(args, "threads", "") is { Length: > 0 } t0 ? int.Parse(t0) : null;
int iters = int.Parse(Arg(args, "iters", "5"));
Log.Quiet = true;
using var dev = ComputeDevice.Create(DeviceKind.Cpu, threads: threads);
var results = new List<Dictionary<string, object>>();
if (what == "gemm")
{
    // The shapes of GemmOp's "xl" and "demo" sets (blockdance kernels) and of bench_torch.py --gemm.
    var shapes = Arg(args, "shapes", "xl") == "xl"
        ? new[] { ("qkv", 4096, 3456, 1152), ("proj", 4096, 1152, 1152), ("fc1", 4096, 4608, 1152), ("fc2", 4096, 1152, 4608), ("adaLN", 16, 6912, 1152) }
        : new[] { ("qkv", 980, 288, 96), ("proj", 980, 96, 96), ("fc1", 980, 384, 96), ("fc2", 980, 96, 384), ("adaLN", 20, 576, 96) };
    foreach (var (label, m, n, k) in shapes)
    {
        using var x = Tensor.FromHost(dev, "x", Random(1, (long)m * k, 1f), m * k);
        using var b = Tensor.FromHost(dev, "b", Random(3, n, 1f), n);
        using var y = Tensor.Allocate(dev, "y", m * n);
        using var w = GemmHost.PackToDevice(dev, "w", Random(2, (long)n * k, 0.3f), n, k);
        var (med, min, max) = Time(iters, () => GemmHost.Run(dev, x.View, w.View, b.View, y.View, m, n, k));
        double gflops = Gemm.Flops(m, n, k) / (med / 1e3) / 1e9;
        Console.WriteLine($"gemm {label,-6} {m}x{n}x{k}: median {med:F2} ms (min {min:F2}, max {max:F2}), {gflops:F1} GFLOP/s, {dev.Threads} threads");
        results.Add(new() { ["label"] = $"{label} {m}x{n}x{k}", ["ms_median"] = med, ["ms_min"] = min, ["ms_max"] = max, ["gflops"] = gflops, ["threads"] = dev.Threads });
    }
}
else if (what == "vae")
{
    int s = int.Parse(Arg(args, "latent", "32"));
    using var vae = VaeDecoder.Load(dev, Arg(args, "model", "vae.safetensors"));
    using var z = Tensor.FromHost(dev, "z", Random(5, 4L * s * s, 1f), 1, 4, s, s);
    var (med, min, max) = Time(iters, () => { vae.Decode(z); dev.Synchronize(); });
    Console.WriteLine($"vae decode 1x4x{s}x{s}: median {med:F1} ms (min {min:F1}, max {max:F1}), {dev.Threads} threads");
    results.Add(new() { ["label"] = $"vae decode {s}x{s}", ["ms_median"] = med, ["ms_min"] = min, ["ms_max"] = max, ["threads"] = dev.Threads });
}
else
{
    Console.Error.WriteLine("usage: CpuBench gemm --shapes xl|demo | vae --model FILE [--latent 32]  [--threads N] [--iters I] [--json FILE]");
    return 2;
}
if (Arg(args, "json", "") is { Length: > 0 } json) File.WriteAllText(json, JsonSerializer.Serialize(results, new JsonSerializerOptions { WriteIndented = true }));
return 0;
