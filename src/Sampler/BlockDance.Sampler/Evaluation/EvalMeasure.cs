// One eval row from a setting's first run: fidelity to the uncached samples (per-sample MSE → PSNR, per-sample SSIM),
// the digit classifier's accuracy and FID where it applies, each with its bootstrap interval (Bootstrap), and the
// speed columns from the timed runs.
using BlockDance.Kernels;
using BlockDance.Sampler.Commands;

namespace BlockDance.Sampler.Evaluation;

public sealed class EvalMeasure
{
    readonly ComputeDevice dev;
    readonly EvalSubject subject;
    readonly DigitClassifier? classifier;
    readonly FidStats? realStats;
    readonly float[] refImg;
    readonly int[] shape;
    readonly (float, float) range;
    readonly int[][] resamples, fidResamples;
    readonly int bdBoundary;

    public EvalMeasure(ComputeDevice dev, EvalSubject subject, SamplingResult reference, DigitClassifier? classifier, FidStats? realStats, int bdBoundary)
    {
        this.bdBoundary = bdBoundary;
        this.dev = dev; this.subject = subject; this.classifier = classifier; this.realStats = realStats;
        (refImg, shape, range) = subject.Images(dev, reference, null);
        resamples = Bootstrap.Resamples(shape[0]);
        fidResamples = Bootstrap.Resamples(shape[0], EvalCommand.FidReplicates);
    }

    public bool HasSsim => shape[2] >= ImageMetrics.SsimWindow && shape[3] >= ImageMetrics.SsimWindow;
    public int[] ImageShape => shape;

    public EvalRow Row(EvalCommand.PolicySpec spec, SamplingResult r, IReadOnlyList<double> walls, IReadOnlyList<double> noneWalls, string? detail,
        IReadOnlyList<double>? cpus = null, IReadOnlyList<double>? noneCpus = null)
    {
        var (img, _, _) = subject.Images(dev, r, range);
        int n = shape[0], per = shape[1] * shape[2] * shape[3];
        var mse = new double[n];
        var ssim = new double[n];
        for (int i = 0; i < n; i++)
        {
            double se = 0;
            for (int j = i * per; j < (i + 1) * per; j++) { double d = (double)img[j] - refImg[j]; se += d * d; }
            mse[i] = se / per;
            if (HasSsim) ssim[i] = ImageMetrics.Ssim(img[(i * per)..((i + 1) * per)], refImg[(i * per)..((i + 1) * per)], shape[1], shape[2], shape[3]);
        }
        Interval? acc = null, fid = null, motion = null;
        if (classifier != null && subject.Targets is { } classes)
        {
            if (subject.Run.IsVideo) (acc, motion) = VideoScores(img, n, classes);
            else (acc, fid) = ImageScores(img, n, classes);
        }
        double wall = BatchSweep.Median(walls), noneWall = BatchSweep.Median(noneWalls);
        string method = spec.Spec?.Name switch { "bd" => "blockdance", null => spec.Name, var m => m };
        // bdN's boundary: its own block= when given (bd2:block=4), else the run's --cache-block / the model default
        int b = spec.Spec is { } cs && cs.Options.TryGetValue("block", out var blk) && blk >= 0 ? (int)blk : bdBoundary;
        string setting = detail ?? (spec.N is int bn ? $"N={bn}, b={b}" : r.Policy);
        if (setting == method) setting = "";
        return new EvalRow(method, setting, wall, walls, noneWall / wall, r.FlopsUncached / (double)r.FlopsComputed,
            r.BlocksTotal / r.BlocksComputed, r.BlocksSkipped, r.BlocksTotal, Bootstrap.PsnrOfMse(mse, resamples),
            HasSsim ? Bootstrap.Mean(ssim, resamples) : null, acc, fid, n)
        {
            Motion = motion,
            CpuSeconds = cpus is { Count: > 0 } ? BatchSweep.Median(cpus) : null,
            CpuSpeedup = cpus is { Count: > 0 } && noneCpus is { Count: > 0 } ? BatchSweep.Median(noneCpus) / BatchSweep.Median(cpus) : null,
        };
    }

    /// <summary>Accuracy against the targets and, with real-digit statistics, the FID of the classifier's features.</summary>
    (Interval, Interval?) ImageScores(float[] img, int n, IReadOnlyList<int> classes)
    {
        var c = classifier!.Run(img, n);
        var hit = Enumerable.Range(0, n).Select(i => c.Predicted(i) == classes[i] ? 1.0 : 0.0).ToArray();
        Interval? fid = null;
        if (realStats != null && n >= 2)
            fid = Bootstrap.Percentile(n, idx => Fid.Distance(FidStats.FromFeatures(Gather(c.Features, idx), idx.Count, DigitClassifier.FeatureDim), realStats), fidResamples);
        return (Bootstrap.Mean(hit, resamples), fid);
    }

    /// <summary>Per-frame digit accuracy (the mean over each clip's frames, bootstrapped over clips) and, where the prompts
    /// name directions, the fraction of clips moving that way (VideoAdherence).</summary>
    (Interval, Interval?) VideoScores(float[] img, int n, IReadOnlyList<int> classes)
    {
        int frames = shape[1], h = shape[2], w = shape[3];   // (N, C·T, H, W) with C = 1
        var c = classifier!.Run(VideoAdherence.Windows(img, n, frames, h, w), n * frames);
        var perClip = Enumerable.Range(0, n).Select(i => Enumerable.Range(0, frames).Count(f => c.Predicted(i * frames + f) == classes[i]) / (double)frames).ToArray();
        Interval? motion = null;
        if (subject.Directions is { } dirs)
        {
            int len = h * w;
            var hit = Enumerable.Range(0, n).Select(i => VideoAdherence.Direction(img.AsSpan(i * frames * len, len),
                img.AsSpan((i * frames + frames - 1) * len, len), h, w) == dirs[i] ? 1.0 : 0.0).ToArray();
            motion = Bootstrap.Mean(hit, resamples);
        }
        return (Bootstrap.Mean(perClip, resamples), motion);
    }

    static float[] Gather(float[] features, IReadOnlyList<int> idx)
    {
        int d = DigitClassifier.FeatureDim;
        var g = new float[idx.Count * d];
        for (int i = 0; i < idx.Count; i++) Array.Copy(features, idx[i] * d, g, i * d, d);
        return g;
    }
}
