// PSNR, SSIM and FID against hand-checkable values, and the digit classifier (on the device) against
// a host reference of the same MLP.
using BlockDance.Sampler.Evaluation;
using BlockDance.Transformer.IO;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests.Evaluation;

public class MetricsTests(ITestOutputHelper output)
{
    // ------------------------------------------------------------------ PSNR
    [Fact]
    public void Psnr_OfKnownMse()
    {
        // 0.5 vs 0.625 everywhere: MSE = (1/8)² = 1/64 exactly in float → PSNR = 10·log10(64)
        var a = Enumerable.Repeat(0.5f, 196).ToArray();
        var b = Enumerable.Repeat(0.625f, 196).ToArray();
        Assert.Equal(10 * Math.Log10(64), ImageMetrics.Psnr(a, b), 12);
        // half the pixels off by 0.25: MSE = 0.5·(1/16) = 1/32
        var c = a.Select((v, i) => i % 2 == 0 ? v + 0.25f : v).ToArray();
        Assert.Equal(10 * Math.Log10(32), ImageMetrics.Psnr(a, c), 12);
        Assert.Equal(double.PositiveInfinity, ImageMetrics.Psnr(a, a));
    }

    [Fact]
    public void Psnr_OfASet_UsesThePooledMse()
    {
        // image 0: MSE 1/64, image 1: MSE 1/16 → pooled MSE 5/128 (eval's PSNR of a set; one identical
        // image must not make it +∞ as a mean of per-image PSNRs would)
        var a = new float[2 * 4];
        var b = new float[] { 0.125f, 0.125f, 0.125f, 0.125f, 0.25f, 0.25f, 0.25f, 0.25f };
        Assert.Equal(10 * Math.Log10(128.0 / 5), ImageMetrics.Psnr(a, b), 12);
        b[4] = b[5] = b[6] = b[7] = 0;   // image 1 identical now: MSE 1/128
        Assert.Equal(10 * Math.Log10(128), ImageMetrics.Psnr(a, b), 12);
    }

    [Fact]
    public void ToUnitRange_MapsAndClamps()
    {
        Assert.Equal([0f, 0f, 0.5f, 1f, 1f, 0.75f], ImageMetrics.ToUnitRange([-3f, -1f, 0f, 1f, 2f, 0.5f]));
    }

    // ------------------------------------------------------------------ SSIM
    static float[] Image(int c, int h, int w, Func<int, int, int, int> f)
    {
        var a = new float[c * h * w];
        for (int k = 0; k < c; k++)
            for (int i = 0; i < h; i++)
                for (int j = 0; j < w; j++) a[(k * h + i) * w + j] = f(k, i, j) / 15f;
        return a;
    }

    [Fact]
    public void Ssim_OfIdenticalImages_IsOne()
    {
        var x = Image(1, 14, 14, (c, i, j) => (3 * i + 5 * j) % 16);
        Assert.Equal(1.0, ImageMetrics.Ssim(x, x, 1, 14, 14), 12);
        var flat = Enumerable.Repeat(0.3f, 196).ToArray(); // constant image: σ = 0, still 1 thanks to C1, C2
        Assert.Equal(1.0, ImageMetrics.Ssim(flat, flat, 1, 14, 14), 12);
    }

    // Expected values from an independent numpy implementation, run once (python3, numpy 1.24):
    //   g = exp(-d²/4.5) for d = −5..5, normalised; w = outer(g, g); windows = sliding_window_view(img, (11, 11))
    //   moments = (windows·w).sum((-1, -2)); map = standard SSIM formula with C1 = 0.01², C2 = 0.03²;
    //   mean over the valid positions and channels; pixels = k / 15 in float32 (same formulas as below).
    [Fact]
    public void Ssim_MatchesNumpyReference()
    {
        var x = Image(1, 14, 14, (c, i, j) => (3 * i + 5 * j) % 16);
        var y = Image(1, 14, 14, (c, i, j) => (3 * i + 5 * j + i * j % 3) % 16);
        Assert.Equal(0.711060196041, ImageMetrics.Ssim(x, y, 1, 14, 14), 9);

        var x2 = Image(3, 16, 16, (c, i, j) => (i + 2 * j + 5 * c) % 16);
        var y2 = Image(3, 16, 16, (c, i, j) => Math.Min(15, (i + 2 * j + 5 * c) % 16 + (i + c) % 2));
        Assert.Equal(0.990589745722, ImageMetrics.Ssim(x2, y2, 3, 16, 16), 9);
        Assert.Equal(27.112044154526, ImageMetrics.Psnr(x2, y2), 9);
        Assert.Equal(0.990589745722, ImageMetrics.MeanSsim(x2, y2, [1, 3, 16, 16]), 9);
    }

    [Fact]
    public void Ssim_RejectsImagesSmallerThanTheWindow()
    {
        var x = new float[10 * 10];
        Assert.Throws<ArgumentException>(() => ImageMetrics.Ssim(x, x, 1, 10, 10));
    }

    // ------------------------------------------------------------------ FID
    static FidStats Stats(double[] mu, double[,] sigma) => new(mu, sigma, 0);

    static double[,] Diag(params double[] d)
    {
        var m = new double[d.Length, d.Length];
        for (int i = 0; i < d.Length; i++) m[i, i] = d[i];
        return m;
    }

    [Fact]
    public void Fid_OfIdenticalStats_IsZero()
    {
        var s = Stats([0.5, -1, 2], new double[,] { { 2, 1, 0 }, { 1, 2, 0.5 }, { 0, 0.5, 1 } });
        Assert.Equal(0, Fid.Distance(s, s), 9);
    }

    [Fact]
    public void Fid_OfDiagonalGaussians_MatchesClosedForm()
    {
        // Commuting covariances: d² = ‖μ1 − μ2‖² + Σ (√a_i − √b_i)² = 5 + (1−2)² + (2−1)² + (3−1)² = 11
        var p = Stats([0, 0, 0], Diag(1, 4, 9));
        var q = Stats([1, 0, 2], Diag(4, 1, 1));
        Assert.Equal(11, Fid.Distance(p, q), 9);
        Assert.Equal(11, Fid.Distance(q, p), 9);
    }

    [Fact]
    public void Fid_OfNonCommuting2x2_MatchesClosedForm()
    {
        // For 2×2: Tr √A = √(tr A + 2√det A). A = Σ1Σ2 = [[2,3],[1,6]], tr 8, det 9 → Tr √A = √14.
        // d² = Tr Σ1 + Tr Σ2 − 2√14 = 4 + 4 − 2√14
        var p = Stats([1, 1], new double[,] { { 2, 1 }, { 1, 2 } });
        var q = Stats([1, 1], new double[,] { { 1, 0 }, { 0, 3 } });
        Assert.Equal(8 - 2 * Math.Sqrt(14), Fid.Distance(p, q), 9);
    }

    [Fact]
    public void FidStats_FromFeatures_IsUnbiasedMeanAndCovariance()
    {
        // three 2-d points: (0,0), (2,0), (1,3): mean (1,1); deviations (−1,−1), (1,−1), (0,2)
        // cov = [[2, 0], [0, 6]] / (3 − 1) = [[1, 0], [0, 3]]
        var s = FidStats.FromFeatures([0, 0, 2, 0, 1, 3], 3, 2);
        Assert.Equal([1.0, 1.0], s.Mu);
        Assert.Equal(new double[,] { { 1, 0 }, { 0, 3 } }, s.Sigma);
    }

    [Fact]
    public void Fid_OfSingularCovariances_IsFiniteAndZeroForItself()
    {
        // 4 samples in 8 dimensions: rank-3 covariance, eigenvalues ≈ 0 (some slightly negative in rounding)
        var f = Tolerance.Random(3, 4 * 8);
        var s = FidStats.FromFeatures(f, 4, 8);
        Assert.Equal(0, Fid.Distance(s, s), 9);
        var t = FidStats.FromFeatures(Tolerance.Random(4, 4 * 8), 4, 8);
        double d = Fid.Distance(s, t);
        output.WriteLine($"fid of two 4-sample sets in 8-d: {d}");
        Assert.True(double.IsFinite(d) && d > 0);
    }

    [SkippableFact]
    public void FidStats_LoadsCommittedReferenceFile()
    {
        var path = RepoFile("models/mnist_fid_stats.safetensors");
        Skip.If(path is null, "models/mnist_fid_stats.safetensors not found above the test folder");
        var s = FidStats.Load(path!, DigitClassifier.FeatureDim);
        Assert.Equal(1000, s.Count);
        Assert.Equal(128, s.Dim);
        Assert.Equal(0, Fid.Distance(s, s), 6);
    }

    // ------------------------------------------------------------------ classifier on the device
    /// <summary>Random weights of the classifier's shapes, scaled like PyTorch's Linear init (±1/√in).</summary>
    static Func<string, long[], float[]> RandomWeights(int seed) => (name, shape) =>
    {
        long n = shape.Aggregate(1L, (x, y) => x * y);
        int layer = name[2] - '0', fanIn = layer switch { 1 => 196, 2 => 256, _ => 128 };
        return Tolerance.Random(seed * 100 + layer * 10 + (name.EndsWith("bias") ? 1 : 0), n, 1f / MathF.Sqrt(fanIn));
    };

    /// <summary>Digit-like inputs in [0, 1]: a bright stroke on a dark background, plus texture.</summary>
    static float[] SyntheticDigits(int n)
    {
        var x = new float[n * 196];
        for (int s = 0; s < n; s++)
            for (int i = 0; i < 14; i++)
                for (int j = 0; j < 14; j++)
                {
                    bool stroke = Math.Abs(j - 4 - s % 6 - (i * (s % 3)) / 4) <= 1 && i > 1 && i < 12;
                    x[s * 196 + i * 14 + j] = stroke ? 0.9f : ((i * 7 + j * 3 + s) % 11) / 40f;
                }
        return x;
    }

    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void DigitClassifier_MatchesHostReference(string kind)
    {
        var dev = TestDevices.Get(kind);
        var x = SyntheticDigits(7);
        var sources = new List<(string, Func<string, long[], float[]>)> { ("random weights", RandomWeights(1)) };
        var path = RepoFile("models/mnist_classifier.safetensors");
        using var file = path is null ? null : SafeTensorsFile.Open(path);
        if (file != null) sources.Add(("models/mnist_classifier", (name, shape) => file.ReadFloat32(name, shape)));
        else output.WriteLine("models/mnist_classifier.safetensors not found: random weights only");
        foreach (var (what, read) in sources)
        {
            using var clf = new DigitClassifier(dev, read);
            var got = clf.Run(x, 7);
            var want = DigitClassifier.Reference(read, x, 7);
            Tolerance.AssertClose(want.Features, got.Features, 1e-5, 1e-4, $"{what} features", output);
            Tolerance.AssertClose(want.Logits, got.Logits, 1e-5, 1e-4, $"{what} logits", output);
            for (int i = 0; i < 7; i++)
            {
                Assert.Equal(want.Predicted(i), got.Predicted(i));
                Assert.Equal(1.0, got.Probabilities(i).Sum(), 9);
            }
            Assert.Contains(got.Features, v => v > 0);   // ReLU features: non-negative, not all zero
            Assert.DoesNotContain(got.Features, v => v < 0);
        }
    }

    [Fact]
    public void ClassifierOutput_Accuracy_CountsArgmaxHits()
    {
        var logits = new float[3 * 10];
        logits[0 * 10 + 2] = 5; logits[1 * 10 + 7] = 1; logits[2 * 10 + 0] = 0.5f; logits[2 * 10 + 9] = 0.7f;
        var o = new ClassifierOutput(logits, new float[3 * 128], 3);
        Assert.Equal(2.0 / 3, o.Accuracy([2, 7, 0]), 12);
    }

    /// <summary>A committed repository file, found by walking up from the test binaries.</summary>
    internal static string? RepoFile(string relative)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d != null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, relative);
            if (File.Exists(p)) return p;
        }
        return null;
    }
}
