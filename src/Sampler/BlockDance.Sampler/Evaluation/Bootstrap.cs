// Bootstrap 95% intervals for eval's quality numbers: the samples are drawn again with replacement
// B times (percentile method), by a seeded SplitMix64 generator, so an interval is the same on every
// run and every machine. Every row of a table uses the same resampled index sets (seed 0 by default):
// the intervals of two methods are paired over the same samples.
//
// The statistic is a function of per-sample values: the mean (SSIM, accuracy), PSNR from the mean of
// per-sample MSEs (as the table's PSNR: one MSE over all samples), or any other (FID over features).
namespace BlockDance.Sampler.Evaluation;

/// <summary>An estimate on all samples and its bootstrap interval [Lo, Hi].</summary>
public readonly record struct Interval(double Value, double Lo, double Hi);

public static class Bootstrap
{
    public const int DefaultReplicates = 1000;
    public const ulong DefaultSeed = 0;

    /// <summary>B index sets of n indices each, drawn with replacement: replicate r, draw i → [r][i].</summary>
    public static int[][] Resamples(int n, int replicates = DefaultReplicates, ulong seed = DefaultSeed)
    {
        if (n < 1) throw new ArgumentException($"bootstrap: expected at least one sample, found {n}");
        ulong state = seed;
        var sets = new int[replicates][];
        for (int r = 0; r < replicates; r++)
        {
            sets[r] = new int[n];
            for (int i = 0; i < n; i++) sets[r][i] = (int)(SplitMix64(ref state) % (ulong)n);   // bias < n / 2^64
        }
        return sets;
    }

    /// <summary>The statistic on all samples and the 2.5th/97.5th percentiles of its replicates (nearest rank on
    /// B − 1: index round(0.025·(B − 1)) and round(0.975·(B − 1)) of the sorted replicates).</summary>
    public static Interval Percentile(int n, Func<IReadOnlyList<int>, double> statistic, int[][] resamples)
    {
        double all = statistic(Enumerable.Range(0, n).ToArray());
        var reps = resamples.Select(s => s.Length == n ? statistic(s)
            : throw new ArgumentException($"bootstrap: resample of {s.Length} indices for {n} samples")).ToArray();
        Array.Sort(reps);   // +∞ (identical samples) sorts last; NaN is not expected
        int b = reps.Length;
        return new Interval(all, reps[(int)Math.Round(0.025 * (b - 1), MidpointRounding.AwayFromZero)],
            reps[(int)Math.Round(0.975 * (b - 1), MidpointRounding.AwayFromZero)]);
    }

    public static Interval Mean(IReadOnlyList<double> values, int[][] resamples) =>
        Percentile(values.Count, idx => idx.Average(i => values[i]), resamples);

    /// <summary>PSNR (data range 1) of the mean squared error over the chosen samples; +∞ when it is 0.</summary>
    public static Interval PsnrOfMse(IReadOnlyList<double> mse, int[][] resamples) =>
        Percentile(mse.Count, idx => Psnr(idx.Average(i => mse[i])), resamples);

    public static double Psnr(double mse) => mse == 0 ? double.PositiveInfinity : 10 * Math.Log10(1.0 / mse);

    /// <summary>Sebastiano Vigna's SplitMix64: the next 64-bit value of `state`.</summary>
    public static ulong SplitMix64(ref ulong state)
    {
        ulong z = state += 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
