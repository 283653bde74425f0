// blockdance sample: draw samples from a model (a class-conditional DiT, or PixArt-α from prompt embeddings or text)
// and write a PNG grid or raw safetensors. One command for every model kind: ModelRun reads and checks the model's
// options before any device work; the device, the memory plan, the sampling session and the outputs are shared.
using System.Text.Json;
using BlockDance.Kernels;
using BlockDance.Sampler.Cli;
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
        var ext = Path.GetExtension(outPath).ToLowerInvariant();
        if (ext is not (".png" or ".safetensors"))
            throw new UsageException($"--out {outPath}: expected a .png or .safetensors file name");
        AtomicFile.CheckWritable(outPath, "--out");
        if (a.Get("report") is string rp) AtomicFile.CheckWritable(rp, "--report");
        AtomicFile.CheckDistinct(("--out", outPath), ("--report", a.Get("report")));

        // Everything the user gave is checked against the checkpoint header before any device work.
        var modelPath = CommonOptions.ModelPath(a);
        var run = ModelRun.For(a, modelPath);
        var cfg = run.Stack;
        var opts = run.Options with { Progress = true, ProfileSteps = a.Flag("profile-steps") };
        int n = run.Samples;
        if (a.Get("noise") is string noisePath) opts = opts with { InitialNoise = ReadNoise(noisePath, n, cfg) };
        if (ext == ".png" && run.Latent && run.VaePath == null)
            throw new UsageException(run.IsPixArt
                ? $"--out {outPath}: PixArt-α samples latents and no VAE decoder was found (expected a vae/ folder in {modelPath}, or --vae DIR|FILE); " +
                  "or write the latents with --out FILE.safetensors"
                : $"--out {outPath}: this is a {cfg.InChannels}-channel latent model and no VAE decoder was found " +
                  "(expected --vae DIR|FILE, or a vae/ folder next to the model; see docs/real-weights.md); " +
                  "or write the latents with --out FILE.safetensors");

        using var dev = CommonOptions.Device(a);
        var conditioning = run.Conditioning(dev);          // a --prompt is encoded here, on the run's one device
        opts = MemoryPlan.Fit(dev, run.Footprint(conditioning), opts, n, cached: a.Get("cache")! != "none");   // before any allocation
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
            if (ext == ".png" && run.Latent)
            {
                var px = SampleImages.Decode(dev, run.VaePath!, result.Samples, result.Shape);
                ImageGrid.WritePng(outPath, px.Values, px.Shape, lo: px.Lo, hi: px.Hi, columns: Math.Min(px.Shape[0], 4));
                wrote = $"wrote {outPath}: {px.Shape[0]} images {px.Shape[2]}×{px.Shape[3]} decoded by the VAE in {px.Seconds:F2} s{classes}";
            }
            else if (ext == ".png")
            {
                ImageGrid.WritePng(outPath, result.Samples, result.Shape);
                wrote = $"wrote {outPath}: {result.Shape[0]} samples{classes}";
            }
            else
            {
                AtomicFile.Write(outPath, s => SafeTensorsWriter.Write(s, [("sample", result.Shape.Select(x => (long)x).ToArray(), result.Samples)],
                    new Dictionary<string, string> { [run.Source.Key] = run.Source.Value, ["seed"] = opts.Seed.ToString(),
                        ["sampler"] = opts.SamplerName, ["steps"] = opts.Steps.ToString(), ["cfg"] = opts.Cfg.ToString("R") }));
                wrote = $"wrote {outPath}: tensor 'sample' {Tensor.ShapeString(result.Shape)}" +
                        (run.Latent ? $" (VAE latents, not pixels: decode with {(run.IsPixArt ? "" : "--vae and ")}a .png output)" : "");
            }
            if (reportPath != null) AtomicFile.Write(reportPath, s => JsonSerializer.Serialize(s, summary, Summary.Json));
            outputs.Commit();
        }
        Console.WriteLine(wrote);
        summary.Print();
        if (reportPath != null) Console.WriteLine($"report: {reportPath}");
        return 0;
    }

    internal static float[] ReadNoise(string path, int n, Transformer.DiTConfig cfg)
    {
        FileKind.RequireRegular(path, "--noise");
        using var f = SafeTensorsFile.Open(path);
        long[] expected = [n, cfg.InChannels, cfg.InputSize, cfg.InputSize];
        if (!f.Contains("noise"))
            throw new UsageException($"--noise {path}: expected a tensor 'noise' of shape [{string.Join(", ", expected)}], found tensors {string.Join(", ", f.Tensors.Select(t => t.Name))}");
        var shape = f.Get("noise").Shape;
        if (!shape.SequenceEqual(expected))
            throw new UsageException($"--noise {path}: tensor 'noise': expected shape [{string.Join(", ", expected)}] ({n} samples), found [{string.Join(", ", shape)}]");
        var noise = f.ReadFloat32("noise");
        long bad = NonFinite.CountReference(noise);
        if (bad > 0) throw new UsageException($"--noise {path}: tensor 'noise': expected finite values, found {bad} NaN/Inf of {noise.Length}");
        return noise;
    }
}
