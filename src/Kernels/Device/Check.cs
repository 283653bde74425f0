namespace BlockDance.Kernels;

/// <summary>Launch-time argument checks. These always run (an out-of-range index inside a kernel
/// aborts the whole process on the CPU accelerator), and cost nothing next to a launch.</summary>
public static class Check
{
    public static void Size(string what, long found, long expected)
    {
        if (found < expected)
            throw new ArgumentException($"{what}: expected at least {expected} elements, found {found}");
    }

    /// <summary>max |expected − actual| in float64; +∞ for a length mismatch or a NaN (fixture comparisons).</summary>
    public static double MaxAbsError(float[] expected, float[] actual)
    {
        if (expected.Length != actual.Length) return double.PositiveInfinity;
        double max = 0;
        for (int i = 0; i < expected.Length; i++)
        {
            double e = Math.Abs((double)expected[i] - actual[i]);
            if (double.IsNaN(e)) return double.PositiveInfinity;
            max = Math.Max(max, e);
        }
        return max;
    }
}
