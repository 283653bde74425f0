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

    public EvalRow Row(EvalCommand.PolicySpec spec, SamplingResult r, IReadOnlyList<double> walls, IReadOnlyList<double> noneWalls, string? detail)
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
        Interval? acc = null, fid = null;
        if (classifier != null && subject.Targets is { } classes)
        {
            var c = classifier.Run(img, n);
            var hit = Enumerable.Range(0, n).Select(i => c.Predicted(i) == classes[i] ? 1.0 : 0.0).ToArray();
            acc = Bootstrap.Mean(hit, resamples);
            if (realStats != null && n >= 2)
                fid = Bootstrap.Percentile(n, idx => Fid.Distance(FidStats.FromFeatures(Gather(c.Features, idx), idx.Count, DigitClassifier.FeatureDim), realStats), fidResamples);
        }
        double wall = BatchSweep.Median(walls), noneWall = BatchSweep.Median(noneWalls);
        string method = spec.Spec?.Name switch { "bd" => "blockdance", null => spec.Name, var m => m };
        string setting = detail ?? (spec.N is int bn ? $"N={bn}, b={bdBoundary}" : r.Policy);
        if (setting == method) setting = "";
        return new EvalRow(method, setting, wall, walls, noneWall / wall, r.FlopsUncached / (double)r.FlopsComputed,
            r.BlocksTotal / r.BlocksComputed, r.BlocksSkipped, r.BlocksTotal, Bootstrap.PsnrOfMse(mse, resamples),
            HasSsim ? Bootstrap.Mean(ssim, resamples) : null, acc, fid, n);
    }

    static float[] Gather(float[] features, IReadOnlyList<int> idx)
    {
        int d = DigitClassifier.FeatureDim;
        var g = new float[idx.Count * d];
        for (int i = 0; i < idx.Count; i++) Array.Copy(features, idx[i] * d, g, i * d, d);
        return g;
    }
}
