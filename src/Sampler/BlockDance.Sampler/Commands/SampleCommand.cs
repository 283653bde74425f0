// blockdance sample: draw samples from a model (a class-conditional DiT, PixArt-α or Open-Sora 1.0's STDiT from prompt
// embeddings or text) and write a PNG grid, a video (animated PNG, MP4 or a folder of frames) or raw safetensors. One command for every model kind: ModelRun reads and checks the model's
// options before any device work; the device, the memory plan, the sampling session and the outputs are shared.
using System.Text.Json;
using BlockDance.Kernels;
using BlockDance.Sampler.Cli;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;

namespace BlockDance.Sampler.Commands;

public static class SampleCommand
{
    public static int Run(string[] argv)
    {
        if (argv.Any(x => x == "--out-dir" || x.StartsWith("--out-dir=", StringComparison.Ordinal))) return SampleSetCommand.Run(argv);   // many samples, sharded
        var a = Args.Parse("sample", argv);
        if (a.Positional.Count > 0) throw new UsageException($"sample: unexpected argument '{a.Positional[0]}'");
        var outPath = a.Get("out")!;
        var modelPath = CommonOptions.ModelPath(a);
        bool video = STDiTWeights.IsSTDiT(modelPath);
        var ext = Path.GetExtension(outPath).ToLowerInvariant();
        if (video)
        {
            if (ext != ".safetensors" && VideoWriter.KindOf(outPath) is null)
                throw new UsageException($"--out {outPath}: expected clip.png (animated PNG), clip.mp4, a folder/ (one PNG per frame) or latents .safetensors");
            if (ext != ".safetensors") VideoWriter.Preflight(outPath);
            if (!outPath.EndsWith('/') && !Directory.Exists(outPath)) AtomicFile.CheckWritable(outPath, "--out");
        }
        else
        {
            if (ext is not (".png" or ".safetensors"))
                throw new UsageException($"--out {outPath}: expected a .png or .safetensors file name");
            AtomicFile.CheckWritable(outPath, "--out");
        }
        if (a.Get("report") is string rp) AtomicFile.CheckWritable(rp, "--report");
        AtomicFile.CheckDistinct(("--out", outPath), ("--report", a.Get("report")));

        // Everything the user gave is checked against the checkpoint header before any device work.
        var run = ModelRun.For(a, modelPath);
        var cfg = run.Shape;
        var opts = run.Options with { Progress = true, ProfileSteps = a.Flag("profile-steps") };
        int n = run.Samples;
        if (a.Get("noise") is string noisePath) opts = opts with { InitialNoise = ReadNoise(noisePath, "--noise", "noise", [n, .. run.SampleShape]) };
        if (a.Get("step-noise") is string sn) opts = opts with { StepNoise = ReadStepNoise(sn, opts.Steps, [n, .. run.SampleShape]) };
        bool pixels = ext != ".safetensors";
        if (pixels && run.IsVideo && run.Latent && run.VaePath == null)
            throw new UsageException($"--out {outPath}: a video needs the VAE decoder (expected --vae DIR|FILE or a vae/ folder beside the model), found none; " +
                                     "or write the latents with --out FILE.safetensors");
        if (pixels && run.Latent && run.VaePath == null)
            throw new UsageException(run.IsPixArt
                ? $"--out {outPath}: PixArt-α samples latents and no VAE decoder was found (expected a vae/ folder in {modelPath}, or --vae DIR|FILE); " +
                  "or write the latents with --out FILE.safetensors"
                : $"--out {outPath}: this is a {cfg.InChannels}-channel latent model and no VAE decoder was found " +
                  "(expected --vae DIR|FILE, or a vae/ folder next to the model; see docs/real-weights.md); " +
                  "or write the latents with --out FILE.safetensors");

        using var dev = CommonOptions.Device(a);
        var conditioning = run.Conditioning(dev);          // a --prompt is encoded here, on the run's one device
        opts = MemoryPlan.Fit(dev, run.Footprint(dev, conditioning), opts, n, cached: a.Get("cache")! != "none");   // before any allocation
        Console.WriteLine($"model: {modelPath}");
        Console.WriteLine($"       {run.ConfigText}");
        var model = run.Load(dev);
        using var disposeModel = (IDisposable)model;
        var result = SamplingSession.Run(model, conditioning, opts);

        // The outputs appear together after everything is written (or none, on an error or a signal).
        string wrote;
        var summary = Summary.Of(dev, modelPath, run.ConfigText, opts, n, result);
        var reportPath = a.Get("report");
        string classes = run.IsPixArt ? "" : $", {conditioning.Describe()}";
        using (var outputs = AtomicFile.BeginGroup())
        {
            if (pixels && run.IsVideo)
            {
                var (px, shape, seconds) = run.Latent ? VideoDecode.Run(dev, run.VaePath!, result.Samples, result.Shape)
                                                      : VideoDecode.FromPixels(result.Samples, result.Shape);
                wrote = VideoWriter.Write(outPath, px, shape[0], shape[1], shape[3], shape[4], run.Fps) +
                        (run.Latent ? $"; VAE {seconds:F2} s for {shape[0] * shape[1]} frames" : "");
            }
            else if (pixels && run.Latent)
            {
                var px = SampleImages.Decode(dev, run.VaePath!, result.Samples, result.Shape);
                ImageGrid.WritePng(outPath, px.Values, px.Shape, lo: px.Lo, hi: px.Hi, columns: Math.Min(px.Shape[0], 4));
                wrote = $"wrote {outPath}: {px.Shape[0]} images {px.Shape[2]}×{px.Shape[3]} decoded by the VAE in {px.Seconds:F2} s{classes}";
            }
            else if (pixels)
            {
                ImageGrid.WritePng(outPath, result.Samples, result.Shape);
                wrote = $"wrote {outPath}: {result.Shape[0]} samples{classes}";
            }
            else
            {
                var meta = new Dictionary<string, string> { [run.Source.Key] = run.Source.Value, ["seed"] = opts.Seed.ToString(),
                    ["sampler"] = opts.SamplerName, ["steps"] = opts.Steps.ToString(), ["cfg"] = opts.Cfg.ToString("R") };
                if (run.IsVideo) { meta["fps"] = run.Fps.ToString(); meta["layout"] = "(B, C, T, H, W) VAE latents"; }
                AtomicFile.Write(outPath, s => SafeTensorsWriter.Write(s, [("sample", result.Shape.Select(x => (long)x).ToArray(), result.Samples)], meta));
                wrote = $"wrote {outPath}: tensor 'sample' {Tensor.ShapeString(result.Shape)}" +
                        (run.IsVideo ? (run.Latent ? " (B, C, T, H, W latents)" : " (B, C, T, H, W frames in [-1, 1])")
                         : run.Latent ? $" (VAE latents, not pixels: decode with {(run.IsPixArt ? "" : "--vae and ")}a .png output)" : "");
            }
            if (reportPath != null) AtomicFile.Write(reportPath, s => JsonSerializer.Serialize(s, summary, Summary.Json));
            outputs.Commit();
        }
        Console.WriteLine(wrote);
        summary.Print();
        if (reportPath != null) Console.WriteLine($"report: {reportPath}");
        return 0;
    }

    /// <summary>--noise FILE: tensor `name` of shape `expected` (n samples first), finite float values.</summary>
    internal static float[] ReadNoise(string path, string option, string name, int[] expected)
    {
        FileKind.RequireRegular(path, option);
        using var f = SafeTensorsFile.Open(path);
        var want = expected.Select(v => (long)v).ToArray();
        if (!f.Contains(name))
            throw new UsageException($"{option} {path}: expected a tensor '{name}' of shape [{string.Join(", ", want)}], found tensors {string.Join(", ", f.Tensors.Select(t => t.Name))}");
        var shape = f.Get(name).Shape;
        if (!shape.SequenceEqual(want))
            throw new UsageException($"{option} {path}: tensor '{name}': expected shape [{string.Join(", ", want)}] ({expected[0]} samples), found [{string.Join(", ", shape)}]");
        var noise = f.ReadFloatValues(name);   // I64/I32/BOOL noise is refused, not converted
        long bad = NonFinite.CountReference(noise);
        if (bad > 0) throw new UsageException($"{option} {path}: tensor '{name}': expected finite values, found {bad} NaN/Inf of {noise.Length}");
        return noise;
    }

    /// <summary>--step-noise FILE: tensor 'step_noise' (K, B, …sample), step k's noise at [k] (reference trajectories).</summary>
    internal static Func<int, float[]> ReadStepNoise(string path, int steps, int[] batch)
    {
        var all = ReadNoise(path, "--step-noise", "step_noise", [steps, .. batch]);
        long per = all.LongLength / steps;
        return k => all[(int)(k * per)..(int)((k + 1) * per)];
    }
}
