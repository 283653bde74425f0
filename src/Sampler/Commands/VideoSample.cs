// blockdance sample --model <Open-Sora 1.0 STDiT: .pth | .safetensors | folder with config.json>
//   --prompt-embeds embeds.safetensors | --prompt TEXT   [--frames 16] [--image-size 256|512] [--fps 8]
//   [--steps 100] [--sampler ddpm|ddim|dpm++2m] [--cfg 7] [--seed 0] [--noise x_T.safetensors] [--step-noise z.safetensors]
//   [--cache …] [--vae DIR] --out clip.png | clip.mp4 | frames/ | latents.safetensors
// The video branch of the caption-conditioned path (PixArtSample's prompt handling, PixArtSession, PixArtDenoiser):
// what differs is only what is video — the options, the unconditional captions (Open-Sora 1.0 guides against its
// learned null caption y_embedding with the prompt's mask, not a negative prompt), the latent shape (B, 4, T, H, W)
// and the outputs (VideoWriter after the per-frame VAE, or the latents). Defaults are Open-Sora 1.0's inference
// configs: IDDPM 100 steps, CFG 7.0 on the first 3 ε channels, 8 fps; BlockDance's window is the paper's [0.25, 0.95).
using System.Text.Json;
using BlockDance.Kernels;
using BlockDance.Sampler.Cli;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;

namespace BlockDance.Sampler.Commands;

public static class VideoSample
{
    public static readonly double[] DefaultWindow = [0.25, 0.95];

    /// <summary>The unconditional half of Open-Sora 1.0: y_embedding (L, C) for every prompt, with that prompt's mask.</summary>
    public static CaptionSet NullCaptions(CaptionSet prompts, float[] yEmbedding, STDiTConfig cfg)
    {
        if (prompts.Tokens != cfg.MaxTokens)
            throw new InvalidValueException("prompt embeddings length", $"{cfg.MaxTokens} tokens (model_max_length: the null caption y_embedding has that many rows)", $"{prompts.Tokens}");
        var e = new float[(long)prompts.Count * yEmbedding.Length];
        for (int i = 0; i < prompts.Count; i++) yEmbedding.CopyTo(e, (long)i * yEmbedding.Length);
        return new CaptionSet(e, (float[])prompts.Mask.Clone(), prompts.Count, prompts.Tokens, prompts.Channels);
    }

    /// <summary>--step-noise FILE: tensor 'step_noise' (K, B, C, T, H, W), step k's noise at [k].</summary>
    public static Func<int, float[]> ReadStepNoise(string path, int steps, int[] sample)
    {
        FileKind.RequireRegular(path, "--step-noise");
        using var f = SafeTensorsFile.Open(path);
        long[] expected = [steps, .. sample.Select(v => (long)v)];
        if (!f.Contains("step_noise"))
            throw new UsageException($"--step-noise {path}: expected a tensor 'step_noise' of shape [{string.Join(", ", expected)}], found tensors {string.Join(", ", f.Tensors.Select(t => t.Name))}");
        if (!f.Get("step_noise").Shape.SequenceEqual(expected))
            throw new UsageException($"--step-noise {path}: tensor 'step_noise': expected shape [{string.Join(", ", expected)}] (steps, samples, C, T, H, W), found [{string.Join(", ", f.Get("step_noise").Shape)}]");
        var all = f.ReadFloat32("step_noise");
        long bad = NonFinite.CountReference(all);
        if (bad > 0) throw new UsageException($"--step-noise {path}: expected finite values, found {bad} NaN/Inf");
        long per = all.LongLength / steps;
        return k => all[(int)(k * per)..(int)((k + 1) * per)];
    }

    static float[] ReadTensor(string path, string option, string name, long[] expected)
    {
        FileKind.RequireRegular(path, option);
        using var f = SafeTensorsFile.Open(path);
        if (!f.Contains(name) || !f.Get(name).Shape.SequenceEqual(expected))
            throw new UsageException($"{option} {path}: expected a tensor '{name}' of shape [{string.Join(", ", expected)}], found " +
                                     (f.Contains(name) ? $"[{string.Join(", ", f.Get(name).Shape)}]" : $"tensors {string.Join(", ", f.Tensors.Select(t => t.Name))}"));
        var v = f.ReadFloat32(name);
        if (NonFinite.CountReference(v) > 0) throw new UsageException($"{option} {path}: tensor '{name}': expected finite values, found NaN/Inf");
        return v;
    }

    public static int Run(Args a, string modelPath, string outPath)
    {
        bool latents = outPath.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase);
        if (!latents && VideoWriter.KindOf(outPath) is null)
            throw new UsageException($"--out {outPath}: expected clip.png (animated PNG), clip.mp4, a folder/ (one PNG per frame) or latents .safetensors");
        if (!latents) VideoWriter.Preflight(outPath);
        foreach (var opt in new[] { "class", "batch", "negative", "negative-prompt" })
            if (a.Has(opt)) throw new UsageException($"--{opt}: not an Open-Sora 1.0 setting (text-conditional; all prompts in one batch; the unconditional half is the model's null caption)");
        var (src, config) = STDiTWeights.Open(modelPath);
        STDiTConfig cfg;
        using (src as IDisposable) cfg = STDiTWeights.Configure(src, config, VideoOptions.From(a));
        int fps = VideoOptions.Fps(a);
        var prompts = PixArtSample.Prompts(a, modelPath, cfg.CaptionChannels, negative: false).Prompts;
        int n = prompts.Count;
        var opts = PixArtSession.VideoDefaults(n) with
        {
            Steps = a.Has("steps") ? a.GetInt("steps") : 100,
            Sampler = a.Has("sampler") ? a.GetChoice<SamplerKind>("sampler") : SamplerKind.Ddpm,
            Eta = a.GetDouble("eta"),
            Cfg = a.Has("cfg") ? (float)a.GetDouble("cfg") : 7f,
            CfgChannels = a.Has("cfg-channels") ? a.GetChoice<CfgChannels>("cfg-channels") : CfgChannels.Official,
            Seed = (ulong)a.GetInt("seed"),
            Policy = CommonOptions.Cache(a, cfg.Stack),
            Progress = true,
            ProfileSteps = a.Flag("profile-steps"),
        };
        int[] sample = [n, cfg.InChannels, cfg.Frames, cfg.LatentSize, cfg.LatentSize];
        if (a.Get("noise") is string np) opts = opts with { InitialNoise = ReadTensor(np, "--noise", "noise", sample.Select(v => (long)v).ToArray()) };
        if (a.Get("step-noise") is string sn) opts = opts with { StepNoise = ReadStepNoise(sn, opts.Steps, sample) };
        string? vaePath = latents ? null : ModelLoader.FindVae(Directory.Exists(modelPath) ? modelPath : Path.GetDirectoryName(Path.GetFullPath(modelPath))!, a.Get("vae"));
        if (!latents && vaePath == null)
            throw new UsageException($"--out {outPath}: a video needs the VAE decoder (expected --vae DIR|FILE or a vae/ folder beside the model), found none; or write the latents with --out FILE.safetensors");

        using var dev = CommonOptions.Device(a);
        VideoMemoryPlan.Check(dev, cfg, opts, cached: (a.Get("cache") ?? "none") != "none", prompts.Tokens);   // before any allocation
        Console.WriteLine($"model: {modelPath}");
        Console.WriteLine($"       {cfg}");
        using var model = STDiT.Load(dev, modelPath, VideoOptions.From(a));
        var embeds = new PromptEmbeds(prompts, opts.Cfg > 1 ? NullCaptions(prompts, model.NullCaption, cfg) : null);
        var result = PixArtSession.Run(model, embeds, opts);

        string wrote;
        var summary = Summary.Of(dev, modelPath, cfg.Stack, opts, result) with { Config = cfg.ToString() };
        var reportPath = a.Get("report");
        using (var outputs = AtomicFile.BeginGroup())
        {
            if (latents)
            {
                AtomicFile.Write(outPath, s => SafeTensorsWriter.Write(s, [("sample", result.Shape.Select(x => (long)x).ToArray(), result.Samples)],
                    new Dictionary<string, string> { ["seed"] = opts.Seed.ToString(), ["sampler"] = opts.SamplerName, ["steps"] = opts.Steps.ToString(),
                        ["cfg"] = opts.Cfg.ToString("R"), ["fps"] = fps.ToString(), ["layout"] = "(B, C, T, H, W) VAE latents" }));
                wrote = $"wrote {outPath}: tensor 'sample' {Tensor.ShapeString(result.Shape)} (B, C, T, H, W latents)";
            }
            else
            {
                var (px, shape, seconds) = VideoDecode.Run(dev, vaePath!, result.Samples, result.Shape);
                wrote = VideoWriter.Write(outPath, px, shape[0], shape[1], shape[3], shape[4], fps) + $"; VAE {seconds:F2} s for {shape[0] * shape[1]} frames";
            }
            if (reportPath != null) AtomicFile.Write(reportPath, s => JsonSerializer.Serialize(s, summary, Summary.Json));
            outputs.Commit();
        }
        Console.WriteLine(wrote);
        summary.Print();
        if (reportPath != null) Console.WriteLine($"report: {reportPath}");
        return 0;
    }
}
