// What `blockdance eval` samples, for every model kind: the model and its conditioning read through ModelRun (the
// same option reading and checks as `sample`), repeated K times (--per-class K: K samples of each class of a DiT, or
// of each prompt of a PixArt-α / STDiT run), and how a run's samples become images for the fidelity metrics:
//   pixel-space model             samples in [−1, 1] → [0, 1], clamped
//   latent model with a VAE       decoded (image VAE, or the video VAE frame by frame), then as pixels
//   latent model without a VAE    the latents themselves, mapped by the uncached run's own range [lo, hi] → [0, 1]
// A video sample (C, T, H, W) is measured as one image of C·T channels (PSNR over all its values, SSIM the mean over
// its frames and channels).
using BlockDance.Kernels;
using BlockDance.Sampler.Cli;
using BlockDance.Sampler.Commands;
using BlockDance.Transformer;

namespace BlockDance.Sampler.Evaluation;

public sealed class EvalSubject
{
    public required ModelRun Run { get; init; }
    /// <summary>The class-conditional DiT's labels (K per class, round robin); null for a caption model.</summary>
    public IReadOnlyList<int>? Classes { get; init; }
    /// <summary>The digit each sample should show: its class (DiT), or the digit its prompt names (PromptDigits); null
    /// when unknown, and then TargetsMissing says why.</summary>
    public IReadOnlyList<int>? Targets { get; init; }
    public string? TargetsMissing { get; init; }
    public required int PerCondition { get; init; }
    public required ModelKind Kind { get; init; }
    public required string KindName { get; init; }

    public BlockShape Shape => Run.Shape;
    public int Samples => Run.Samples * PerCondition;

    /// <summary>Reads the model's options as `sample` does (exit 2 before any device work); eval's own --cache list,
    /// --cache-block/--cache-window and --policy are left to eval.</summary>
    public static EvalSubject For(Args a, string modelPath, int perCondition)
    {
        var plain = a.With("cache", "none").With("cache-block", null).With("cache-window", null).With("policy", null);
        var run = ModelRun.For(plain, modelPath);
        bool pixart = run.IsPixArt, video = run.IsVideo;
        var kind = pixart ? ModelKind.PixArt : ModelKind.DiT;
        if (!pixart && !video)
        {
            var classes = Enumerable.Range(0, perCondition).SelectMany(_ => run.Options.Classes).ToList();
            run = new ModelRun
            {
                ModelPath = run.ModelPath, Shape = run.Shape, Name = run.Name, ConfigText = run.ConfigText, Options = run.Options with { Classes = classes },
                Samples = classes.Count, Conditioning = _ => new ClassLabels(classes), Footprint = run.Footprint, Load = run.Load,
                VaePath = run.VaePath, Latent = run.Latent, Source = run.Source,
            };
            return new EvalSubject { Run = run, Classes = classes, Targets = classes, PerCondition = 1, Kind = kind, KindName = "DiT" };
        }
        var (targets, missing) = PromptTargets(run.Prompts, run.Samples * perCondition);
        return new EvalSubject
        {
            Run = run, PerCondition = perCondition, Kind = video ? ModelKind.STDiT : kind, KindName = pixart ? "PixArt-α" : "STDiT",
            Targets = targets, TargetsMissing = missing,
        };
    }

    /// <summary>Sample i's digit: the one its prompt (i mod prompts) names; or why there is none.</summary>
    static (IReadOnlyList<int>?, string?) PromptTargets(IReadOnlyList<string>? prompts, int samples)
    {
        if (prompts is null) return (null, "the captions came as features (--prompt-embeds), with no text to read a digit from; pass --prompt");
        if (prompts.FirstOrDefault(p => PromptDigits.Digit(p) is null) is string bad) return (null, $"the prompt \"{bad}\" names no single digit");
        return (Enumerable.Range(0, samples).Select(i => PromptDigits.Digit(prompts[i % prompts.Count])!.Value).ToList(), null);
    }

    /// <summary>The conditioning of all samples, on the device (a --prompt is encoded here).</summary>
    public Conditioning Conditioning(ComputeDevice dev) => Repeat(Run.Conditioning(dev), PerCondition);

    /// <summary>`c` repeated k times, round robin (sample i has condition i mod Count).</summary>
    public static Conditioning Repeat(Conditioning c, int k) => k == 1 ? c : c.Cycle(c.Count * k);

    /// <summary>The first n samples' conditioning (the run's conditions round robin), for --batch-sweep.</summary>
    public static Conditioning First(Conditioning c, int n) => c.Cycle(n);

    /// <summary>What the fidelity metrics read: "pixels", "VAE-decoded pixels" or "latents".</summary>
    public string Measured => !Run.Latent ? "pixels" : Run.VaePath != null ? "VAE-decoded pixels" : "latents (no VAE found)";

    /// <summary>A run's samples as the metrics see them: (N, C', H, W) values in [0, 1]; `range` maps latents (the
    /// uncached run's min and max; null: take them from these samples).</summary>
    public (float[] Values, int[] Shape, (float Lo, float Hi) Range) Images(ComputeDevice dev, SamplingResult r, (float Lo, float Hi)? range)
    {
        float[] v;
        int[] shape;
        if (Run.Latent && Run.VaePath is string vae)
        {
            if (Run.IsVideo) (v, shape, _) = VideoDecode.Run(dev, vae, r.Samples, r.Shape);
            else
            {
                var px = SampleImages.Decode(dev, vae, r.Samples, r.Shape);
                (v, shape) = (px.Values, px.Shape);
            }
        }
        else (v, shape) = (r.Samples, r.Shape);
        int n = shape[0], h = shape[^2], w = shape[^1];
        int[] flat = [n, (int)(v.LongLength / ((long)n * h * w)), h, w];
        if (!Run.Latent || Run.VaePath != null) return (ImageMetrics.ToUnitRange(v), flat, (-1, 1));
        var (lo, hi) = range ?? (v.Min(), v.Max());
        float scale = hi > lo ? 1f / (hi - lo) : 1f;
        var y = new float[v.Length];
        for (int i = 0; i < v.Length; i++) y[i] = Math.Clamp((v[i] - lo) * scale, 0f, 1f);
        return (y, flat, (lo, hi));
    }
}
