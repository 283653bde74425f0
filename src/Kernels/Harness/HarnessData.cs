// Seeded inputs and the per-element comparison the harness entries share:
// |got − ref| ≤ atol + rtol·|ref|, the max error, and the first few mismatches.
namespace BlockDance.Kernels.Harness;

public static class HarnessData
{
    public static float[] Random(int seed, long n, float scale)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1) * scale;
        return a;
    }

    public static Validation Compare(float[] expected, float[] got, double atol, double rtol)
    {
        double max = 0;
        var bad = new List<string>();
        for (int i = 0; i < expected.Length; i++)
        {
            double err = Math.Abs((double)expected[i] - got[i]);
            if (double.IsNaN(err)) err = double.PositiveInfinity;
            max = Math.Max(max, err);
            if (err > atol + rtol * Math.Abs(expected[i]) && bad.Count < 5) bad.Add($"[{i}] expected {expected[i]:G9}, got {got[i]:G9}");
        }
        return new Validation(bad.Count == 0 && expected.Length == got.Length, max, atol, rtol, bad);
    }
}
