// Full-reference image metrics: how close a cached sample is to the uncached one from the same noise.
// Images are (N, C, H, W) with values in [0, 1] (data range 1). Host code, in double: eval is not
// the hot path, and a few hundred 14×14 images take milliseconds.
//
//   PSNR = 10·log10(1 / MSE)                      +∞ when identical. eval passes the whole set (the MSE over
//                                                 all samples' pixels): a mean of per-image PSNRs would be +∞
//                                                 as soon as one image is identical (e.g. saturated in both)
//   SSIM (Wang, Bovik, Sheikh, Simoncelli 2004):
//     μx, μy, σx², σy², σxy = Gaussian-weighted moments over an 11×11 window (σ = 1.5, weights sum to 1)
//     SSIM map = (2μxμy + C1)(2σxy + C2) / ((μx² + μy² + C1)(σx² + σy² + C2)),  C1 = (0.01·L)², C2 = (0.03·L)², L = 1
//     Valid region only (the window never leaves the image, as in the authors' MATLAB ssim_index and
//     pytorch_msssim): a 14×14 image has 4×4 window positions. Per image: the mean of the map over
//     positions and channels. Images smaller than the window are rejected (eval reports n/a); the Ada trainer's Q
//     on such samples (the tiny test fixtures) passes a smaller odd window, the largest that fits (SsimWindowFor),
//     with the same σ, its weights renormalised.
// SSIM is reported as the mean over images.
namespace BlockDance.Sampler.Evaluation;

public static class ImageMetrics
{
    public const int SsimWindow = 11;
    public const double SsimSigma = 1.5, SsimK1 = 0.01, SsimK2 = 0.03, DataRange = 1.0;

    /// <summary>Samples in [−1, 1] → [0, 1], clamped (the range the metrics and the classifier read).</summary>
    public static float[] ToUnitRange(float[] x)
    {
        var y = new float[x.Length];
        for (int i = 0; i < x.Length; i++) y[i] = Math.Clamp((x[i] + 1f) * 0.5f, 0f, 1f);
        return y;
    }

    /// <summary>PSNR in dB between two equally long sets of values (one image, or a whole batch); +∞ when identical.</summary>
    public static double Psnr(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"psnr: images have {a.Length} and {b.Length} values");
        double se = 0;
        for (int i = 0; i < a.Length; i++) { double d = (double)a[i] - b[i]; se += d * d; }
        double mse = se / a.Length;
        return mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(DataRange * DataRange / mse);
    }

    /// <summary>Mean per-image SSIM over a batch (N, C, H, W).</summary>
    public static double MeanSsim(float[] a, float[] b, int[] shape) =>
        PerImage(a, b, shape, (x, y) => Ssim(x, y, shape[1], shape[2], shape[3])).Average();

    static double[] PerImage(float[] a, float[] b, int[] shape, Func<float[], float[], double> metric)
    {
        if (shape.Length != 4) throw new ArgumentException($"expected a shape (N, C, H, W), found {shape.Length} dimensions");
        int n = shape[0], per = shape[1] * shape[2] * shape[3];
        if (a.Length != (long)n * per || b.Length != a.Length)
            throw new ArgumentException($"expected {n}×{per} values per batch, found {a.Length} and {b.Length}");
        var r = new double[n];
        for (int i = 0; i < n; i++) r[i] = metric(a[(i * per)..((i + 1) * per)], b[(i * per)..((i + 1) * per)]);
        return r;
    }

    /// <summary>The normalised 1-D Gaussian (length 11, σ 1.5); the 2-D window is its outer product.</summary>
    public static double[] Gaussian1D(int size = SsimWindow, double sigma = SsimSigma)
    {
        var g = new double[size];
        double sum = 0;
        for (int i = 0; i < size; i++)
        {
            double d = i - (size - 1) / 2.0;
            sum += g[i] = Math.Exp(-d * d / (2 * sigma * sigma));
        }
        for (int i = 0; i < size; i++) g[i] /= sum;
        return g;
    }

    /// <summary>The SSIM window for images of h×w: 11, or the largest odd size ≤ min(h, w) below that (at least 1).</summary>
    public static int SsimWindowFor(int h, int w)
    {
        int m = Math.Min(SsimWindow, Math.Min(h, w));
        return Math.Max(1, m % 2 == 1 ? m : m - 1);
    }

    /// <summary>SSIM of one image pair (C, H, W) in [0, 1]: the mean of the valid-region SSIM map over channels, over a
    /// k×k Gaussian window (default 11).</summary>
    public static double Ssim(float[] x, float[] y, int channels, int h, int w, int k = SsimWindow)
    {
        if (h < k || w < k) throw new ArgumentException($"ssim: images must be at least {k}×{k} (the window), found {h}×{w}");
        if (x.Length != (long)channels * h * w || y.Length != x.Length)
            throw new ArgumentException($"ssim: expected {channels}×{h}×{w} values, found {x.Length} and {y.Length}");
        var g = Gaussian1D(k);
        double c1 = Math.Pow(SsimK1 * DataRange, 2), c2 = Math.Pow(SsimK2 * DataRange, 2);
        int oh = h - k + 1, ow = w - k + 1;
        double total = 0;
        for (int c = 0; c < channels; c++)
        {
            int o = c * h * w;
            for (int i = 0; i < oh; i++)
                for (int j = 0; j < ow; j++)
                {
                    // Gaussian-weighted first and second moments over the window at (i, j)
                    double mx = 0, my = 0, xx = 0, yy = 0, xy = 0;
                    for (int u = 0; u < k; u++)
                        for (int v = 0; v < k; v++)
                        {
                            double wt = g[u] * g[v], a = x[o + (i + u) * w + j + v], b = y[o + (i + u) * w + j + v];
                            mx += wt * a; my += wt * b; xx += wt * a * a; yy += wt * b * b; xy += wt * a * b;
                        }
                    double vx = xx - mx * mx, vy = yy - my * my, cxy = xy - mx * my;
                    total += (2 * mx * my + c1) * (2 * cxy + c2) / ((mx * mx + my * my + c1) * (vx + vy + c2));
                }
        }
        return total / (channels * oh * ow);
    }
}
