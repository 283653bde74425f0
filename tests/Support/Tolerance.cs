// |got − ref| ≤ atol + rtol·|ref| per element; reports the max error and the first mismatches.
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public static class Tolerance
{
    public static double MaxAbsError(float[] expected, float[] actual) => BlockDance.Kernels.Check.MaxAbsError(expected, actual);

    public static void AssertClose(float[] expected, float[] actual, double atol, double rtol, string name, ITestOutputHelper? output = null)
    {
        Assert.Equal(expected.Length, actual.Length);
        double maxErr = 0;
        var bad = new List<string>();
        for (int i = 0; i < expected.Length; i++)
        {
            double e = expected[i], a = actual[i], err = Math.Abs(e - a);
            if (double.IsNaN(a)) err = double.PositiveInfinity;
            maxErr = Math.Max(maxErr, err);
            if (err > atol + rtol * Math.Abs(e) && bad.Count < 5) bad.Add($"[{i}] expected {e:G9}, got {a:G9}");
        }
        output?.WriteLine($"{name}: max abs error {maxErr:E2} over {expected.Length} elements (atol {atol:E0}, rtol {rtol:E0})");
        Assert.True(bad.Count == 0, $"{name}: max abs error {maxErr:E2}; mismatches: {string.Join("; ", bad)}");
    }

    public static float[] Random(int seed, long n, float scale = 1f)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1) * scale;
        return a;
    }
}
