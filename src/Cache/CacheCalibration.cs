// What the calibrated caches need to know about a model, fitted by `blockdance calibrate` from uncached
// runs and stored as JSON next to the model (MODEL.cache-calibration.json):
//
//   TeaCache  the polynomial p(d) = c0·d⁴ + c1·d³ + c2·d² + c3·d + c4 that maps the relative L1 change of
//             block 0's modulated input between adjacent steps to the change of the whole-stack output
//             (least squares over every (step, sample) pair of the calibration runs)
//   MagCache  γ_i = ‖r_i‖ / ‖r_{i−1}‖, the ratio of whole-stack residual magnitudes (r = stack output − h_0)
//             between adjacent steps, averaged over the samples, for a run of `Steps` steps (γ_0 = 1)
//   Thresholds  per method, the threshold that reached a target share of skipped steps on the calibration runs
using System.Text.Json;

namespace BlockDance.Cache;

public sealed record CacheCalibration(string Model, int Steps, int Samples, double[] TeaCacheCoefficients, double[] MagRatios,
    Dictionary<string, double>? SuggestedThresholds = null)
{
    public static string PathFor(string modelPath) =>
        Path.Combine(Path.GetDirectoryName(Path.GetFullPath(modelPath)) ?? ".", Path.GetFileNameWithoutExtension(modelPath) + ".cache-calibration.json");

    static readonly JsonSerializerOptions Json = new() { WriteIndented = true };

    public string ToJson() => JsonSerializer.Serialize(this, Json);

    /// <summary>The calibration of a model, or a CacheException naming the file and how to make it.</summary>
    /// <param name="read">how the file is read: the program passes its input gate (regular file, size cap; Transformer/IO/InputFile)</param>
    public static CacheCalibration Load(string path, string method, Func<string, string>? read = null)
    {
        if (!File.Exists(path))
            throw new CacheException($"{method} needs a calibration of this model: expected {path}, found none (a calibration run on this model writes it)");
        CacheCalibration? c;
        try { c = JsonSerializer.Deserialize<CacheCalibration>(read?.Invoke(path) ?? File.ReadAllText(path)); }
        catch (JsonException e) { throw new CacheException($"{path}: expected a cache calibration (JSON), found {e.Message}"); }
        if (c == null || c.TeaCacheCoefficients is not { Length: 5 } || c.MagRatios == null || c.MagRatios.Length != c.Steps
            || c.TeaCacheCoefficients.Concat(c.MagRatios).Any(v => !double.IsFinite(v)))
            throw new CacheException($"{path}: expected 5 finite TeaCache coefficients and one finite MagCache ratio per step, found a malformed calibration");
        return c;
    }

    /// <summary>Least-squares polynomial of degree 4, highest power first (TeaCache's convention).</summary>
    public static double[] FitPolynomial(IReadOnlyList<double> x, IReadOnlyList<double> y, int degree = 4)
    {
        int m = degree + 1;
        var a = new double[m, m + 1];
        for (int k = 0; k < x.Count; k++)
        {
            var p = new double[m];
            for (int j = 0; j < m; j++) p[j] = Math.Pow(x[k], degree - j);
            for (int i = 0; i < m; i++)
            {
                for (int j = 0; j < m; j++) a[i, j] += p[i] * p[j];
                a[i, m] += p[i] * y[k];
            }
        }
        for (int i = 0; i < m; i++) a[i, i] += 1e-12 * (1 + a[i, i]);        // ridge: keeps the solve defined for few points
        for (int c = 0; c < m; c++)                                            // Gauss–Jordan with partial pivoting
        {
            int piv = Enumerable.Range(c, m - c).MaxBy(r => Math.Abs(a[r, c]));
            for (int j = 0; j <= m; j++) (a[c, j], a[piv, j]) = (a[piv, j], a[c, j]);
            for (int r = 0; r < m; r++)
            {
                if (r == c || a[c, c] == 0) continue;
                double f = a[r, c] / a[c, c];
                for (int j = c; j <= m; j++) a[r, j] -= f * a[c, j];
            }
        }
        return Enumerable.Range(0, m).Select(i => a[i, i] == 0 ? 0 : a[i, m] / a[i, i]).ToArray();
    }

    public static double Polynomial(double[] c, double x) => c.Aggregate(0.0, (acc, ci) => acc * x + ci);
}
