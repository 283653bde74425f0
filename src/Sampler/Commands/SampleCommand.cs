// blockdance sample: draw samples from a DiT checkpoint and write a PNG grid or raw safetensors.
using System.Text.Json;
using BlockDance.Kernels;
using BlockDance.Sampler.Cli;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;
using BlockDance.Transformer.Vae;

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
        if (PixArtConfig.IsPixArtFolder(modelPath)) return PixArtSample.Run(a, modelPath, outPath, ext);
        foreach (var opt in new[] { "prompt-embeds", "negative", "prompt", "negative-prompt", "max-length", "variant" })
            if (a.Has(opt)) throw new UsageException($"--{opt}: expected a text-conditional PixArt-α folder (--model DIR with transformer/config.json), found the class-conditional DiT {modelPath} (use --class)");
        using var src = (IDisposable)ModelLoader.OpenSource(modelPath);
        var weights = (IWeightSource)src;
        var cfg = ModelLoader.DetectConfig(weights, CommonOptions.Heads(a));
        var opts = CommonOptions.Sampling(a, cfg) with { Policy = CommonOptions.Cache(a, cfg), Progress = true,
            ProfileSteps = a.Flag("profile-steps") };
        if (a.Get("noise") is string noisePath) opts = opts with { InitialNoise = ReadNoise(noisePath, opts.Classes.Count, cfg) };
        // Latent models (4 channels, the released DiT-XL/2) need the VAE decoder for pixels.
        bool latent = cfg.InChannels is not (1 or 3);
        string? vaePath = latent ? ModelLoader.FindVae(modelPath, a.Get("vae")) : null;
        if (!latent && a.Has("vae")) throw new UsageException($"--vae: this is a {cfg.InChannels}-channel pixel-space model; it needs no VAE");
        if (ext == ".png" && latent && vaePath == null)
            throw new UsageException($"--out {outPath}: this is a {cfg.InChannels}-channel latent model and no VAE decoder was found " +
                                     "(expected --vae DIR|FILE, or a vae/ folder next to the model; see docs/real-weights.md); " +
                                     "or write the latents with --out FILE.safetensors");

        using var dev = CommonOptions.Device(a);
        opts = MemoryPlan.Fit(dev, cfg, opts, cached: a.Get("cache")! != "none");   // before any allocation
        Console.WriteLine($"model: {modelPath}");
        Console.WriteLine($"       {cfg}");
        using var model = ModelLoader.Create(dev, weights, cfg);
        var result = SamplingSession.Run(model, opts);

        // The outputs appear together after everything is written (or none, on an error or a signal).
        string wrote;
        var summary = Summary.Of(dev, modelPath, cfg, opts, result);
        var reportPath = a.Get("report");
        using (var outputs = AtomicFile.BeginGroup())
        {
            if (ext == ".png" && latent)
            {
                var (pixels, shape, seconds) = Decode(dev, vaePath!, result.Samples, result.Shape);
                ImageGrid.WritePng(outPath, pixels, shape, lo: 0f, hi: 255f, columns: Math.Min(shape[0], 4));
                wrote = $"wrote {outPath}: {shape[0]} images {shape[2]}×{shape[3]} decoded by the VAE in {seconds:F2} s, classes {string.Join(",", opts.Classes)}";
            }
            else if (ext == ".png")
            {
                ImageGrid.WritePng(outPath, result.Samples, result.Shape);
                wrote = $"wrote {outPath}: {result.Shape[0]} samples, classes {string.Join(",", opts.Classes)}";
            }
            else
            {
                AtomicFile.Write(outPath, s => SafeTensorsWriter.Write(s, [("sample", result.Shape.Select(x => (long)x).ToArray(), result.Samples)],
                    new Dictionary<string, string> { ["classes"] = string.Join(",", opts.Classes), ["seed"] = opts.Seed.ToString(),
                        ["sampler"] = opts.SamplerName, ["steps"] = opts.Steps.ToString(), ["cfg"] = opts.Cfg.ToString("R") }));
                wrote = $"wrote {outPath}: tensor 'sample' {Tensor.ShapeString(result.Shape)}" +
                        (latent ? " (VAE latents, not pixels: decode with --vae and a .png output)" : "");
            }
            if (reportPath != null) AtomicFile.Write(reportPath, s => JsonSerializer.Serialize(s, summary, Summary.Json));
            outputs.Commit();
        }
        Console.WriteLine(wrote);
        summary.Print();
        if (reportPath != null) Console.WriteLine($"report: {reportPath}");
        return 0;
    }

    /// <summary>Latents (N, 4, h, w) → images (N, 3, 8h, 8w) in [0, 255], a few samples at a time to bound memory.</summary>
    internal static (float[] pixels, int[] shape, double seconds) Decode(ComputeDevice dev, string vaePath, float[] latents, int[] shape)
    {
        var sw = System.Diagnostics.Stopwatch.StartNew();
        using var vae = VaeDecoder.Load(dev, vaePath);
        Console.WriteLine($"vae: {vaePath}: {vae.Describe()}");
        if (vae.LatentChannels != shape[1])
            throw new ModelException($"{vaePath}: the VAE expects {vae.LatentChannels} latent channels, the model produces {shape[1]}");
        int n = shape[0], chunk = Math.Min(n, 4), per = shape[1] * shape[2] * shape[3];
        int f = vae.UpscaleFactor, outPer = vae.OutChannels * shape[2] * f * shape[3] * f;
        var pixels = new float[(long)n * outPer];
        for (int first = 0; first < n; first += chunk)
        {
            int b = Math.Min(chunk, n - first);
            using var z = Tensor.FromHost(dev, "latent", latents[(first * per)..((first + b) * per)], b, shape[1], shape[2], shape[3]);
            vae.Decode(z).ToHost().CopyTo(pixels, (long)first * outPer);
        }
        return (pixels, [n, vae.OutChannels, shape[2] * f, shape[3] * f], sw.Elapsed.TotalSeconds);
    }

    internal static float[] ReadNoise(string path, int n, DiTConfig cfg)
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
