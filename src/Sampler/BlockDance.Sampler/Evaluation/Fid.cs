// Fréchet distance between two Gaussians fitted to feature vectors (FID, Heusel et al. 2017):
//
//   d² = ‖μ1 − μ2‖² + Tr Σ1 + Tr Σ2 − 2·Tr (Σ1·Σ2)^½
//
// Σ1·Σ2 is not symmetric, but it is similar to the symmetric positive semi-definite
// M = Σ1^½·Σ2·Σ1^½ (same eigenvalues), so Tr (Σ1·Σ2)^½ = Σ √λ_i(M). Both Σ1^½ and the λ_i come from
// symmetric eigen-decompositions (MathNet.Numerics), which are stable where the general sqrtm of
// pytorch-fid needs a complex Schur form. Covariances estimated from fewer samples than dimensions are
// singular and rounding leaves tiny negative eigenvalues (≈ −1e−12·‖Σ‖): they are clamped to 0 before
// the square root. Features here are the 128-d penultimate layer of the MNIST digit classifier
// (DigitClassifier), so the values are NOT comparable with Inception-FID numbers in papers.
// FID is biased upwards at small sample counts: compare runs at the same count only.
using BlockDance.Transformer.IO;
using MathNet.Numerics.LinearAlgebra;

namespace BlockDance.Sampler.Evaluation;

/// <summary>Mean (d) and covariance (d, d) of a set of feature vectors, in double.</summary>
public sealed record FidStats(double[] Mu, double[,] Sigma, int Count)
{
    public int Dim => Mu.Length;

    /// <summary>Stats of n feature vectors (n, d), row-major; unbiased covariance (divides by n − 1, as numpy.cov).</summary>
    public static FidStats FromFeatures(float[] features, int n, int d)
    {
        if (n < 2) throw new ArgumentException($"fid: expected at least 2 feature vectors for a covariance, found {n}");
        if (features.Length != (long)n * d) throw new ArgumentException($"fid: expected {n}×{d} feature values, found {features.Length}");
        var mu = new double[d];
        for (int i = 0; i < n; i++)
            for (int j = 0; j < d; j++) mu[j] += features[i * d + j];
        for (int j = 0; j < d; j++) mu[j] /= n;
        var sigma = new double[d, d];
        var row = new double[d];
        for (int i = 0; i < n; i++)
        {
            for (int j = 0; j < d; j++) row[j] = features[i * d + j] - mu[j];
            for (int a = 0; a < d; a++)
                for (int b = a; b < d; b++) sigma[a, b] += row[a] * row[b];
        }
        for (int a = 0; a < d; a++)
            for (int b = a; b < d; b++) sigma[b, a] = sigma[a, b] /= n - 1;
        return new FidStats(mu, sigma, n);
    }

    /// <summary>Reads reference stats written by tools/train/train_classifier.py --fid-stats:
    /// tensors `mu` (d) and `sigma` (d, d), __metadata__ `count`.</summary>
    public static FidStats Load(string path, int d)
    {
        using var f = SafeTensorsFile.Open(path);
        var mu = f.ReadFloat32("mu", d);
        var s = f.ReadFloat32("sigma", d, d);
        f.ReadFloatValues("mu");   // the dtype: statistics are real values
        long bad = BlockDance.Kernels.NonFinite.CountReference(mu) + BlockDance.Kernels.NonFinite.CountReference(s);
        if (bad > 0) throw new BlockDance.Kernels.InvalidValueException($"FID statistics {path}", "finite mu and sigma", $"{bad} NaN/Inf values");
        var sigma = new double[d, d];
        for (int a = 0; a < d; a++)
            for (int b = 0; b < d; b++) sigma[a, b] = s[a * d + b];
        int count = f.Metadata.TryGetValue("count", out var c) && int.TryParse(c, out var v) ? v : 0;
        return new FidStats(mu.Select(x => (double)x).ToArray(), sigma, count)
        {
            Metadata = f.Metadata.ToDictionary(kv => kv.Key, kv => kv.Value),
        };
    }

    /// <summary>The file's __metadata__ when loaded from a file (empty otherwise).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; init; } = new Dictionary<string, string>();
}

public static class Fid
{
    /// <summary>Fréchet distance between N(μ1, Σ1) and N(μ2, Σ2); see the file header.</summary>
    public static double Distance(FidStats p, FidStats q)
    {
        if (p.Dim != q.Dim) throw new ArgumentException($"fid: feature dimensions differ ({p.Dim} vs {q.Dim})");
        var s1 = Matrix<double>.Build.DenseOfArray(p.Sigma);
        var s2 = Matrix<double>.Build.DenseOfArray(q.Sigma);
        double meanTerm = 0;
        for (int i = 0; i < p.Dim; i++) { double d = p.Mu[i] - q.Mu[i]; meanTerm += d * d; }

        var sqrt1 = SymmetricSqrt(s1);                       // Σ1^½
        var m = sqrt1 * s2 * sqrt1;                          // Σ1^½ Σ2 Σ1^½, symmetric PSD
        m = (m + m.Transpose()) * 0.5;                       // remove rounding asymmetry before Evd
        var evd = m.Evd(Symmetricity.Symmetric);
        double traceSqrt = evd.EigenValues.Sum(l => Math.Sqrt(Math.Max(0, l.Real)));

        double d2 = meanTerm + s1.Trace() + s2.Trace() - 2 * traceSqrt;
        return Math.Max(0, d2); // ≥ 0 in exact arithmetic; identical stats give ±1e−12 from rounding
    }

    /// <summary>Σ^½ = V·diag(√max(λ, 0))·Vᵀ for a symmetric positive semi-definite Σ.</summary>
    public static Matrix<double> SymmetricSqrt(Matrix<double> s)
    {
        var evd = ((s + s.Transpose()) * 0.5).Evd(Symmetricity.Symmetric);
        var v = evd.EigenVectors;
        var root = Vector<double>.Build.Dense(s.RowCount, i => Math.Sqrt(Math.Max(0, evd.EigenValues[i].Real)));
        return v * Matrix<double>.Build.DiagonalOfDiagonalVector(root) * v.Transpose();
    }
}
