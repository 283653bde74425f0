// The change signals of the adaptive caches, per sample, on host copies of device features.
//
// Relative L1 d(a, b) = ‖a − b‖₁ / ‖b‖₁ (‖·‖₁ the mean absolute value; the mean cancels in the ratio).
// With CFG a sample is two model rows (CfgLayout): its signal is taken over both rows together, so the
// conditional and unconditional halves always take one decision, and a sample's signal never depends
// on another sample of the batch (batch = alone).
namespace BlockDance.Cache;

public static class CacheSignals
{
    /// <summary>d(a, b) per sample over its rows; a and b hold (model batch, rowLen).</summary>
    public static double[] RelativeL1(float[] a, float[] b, CfgLayout cfg, int rowLen)
    {
        var d = new double[cfg.Samples];
        for (int i = 0; i < cfg.Samples; i++)
        {
            double num = 0, den = 0;
            for (int h = 0; h < cfg.Halves; h++)
            {
                long o = (long)cfg.Row(i, h) * rowLen;
                for (int e = 0; e < rowLen; e++)
                {
                    num += Math.Abs(a[o + e] - b[o + e]);
                    den += Math.Abs(b[o + e]);
                }
            }
            d[i] = den > 0 ? num / den : (num > 0 ? double.PositiveInfinity : 0);
        }
        return d;
    }

    /// <summary>Mean absolute value per sample over its rows.</summary>
    public static double[] MeanAbs(float[] a, CfgLayout cfg, int rowLen)
    {
        var m = new double[cfg.Samples];
        for (int i = 0; i < cfg.Samples; i++)
        {
            double s = 0;
            for (int h = 0; h < cfg.Halves; h++)
            {
                long o = (long)cfg.Row(i, h) * rowLen;
                for (int e = 0; e < rowLen; e++) s += Math.Abs(a[o + e]);
            }
            m[i] = s / (rowLen * cfg.Halves);
        }
        return m;
    }

    /// <summary>a − b elementwise (host).</summary>
    public static float[] Difference(float[] a, float[] b)
    {
        var d = new float[a.Length];
        for (int e = 0; e < a.Length; e++) d[e] = a[e] - b[e];
        return d;
    }

    /// <summary>The model rows of the listed samples (both CFG halves).</summary>
    public static int[] RowsOf(CfgLayout cfg, IEnumerable<int> samples) => cfg.Rows(samples);
}

/// <summary>Taylor forecast weights of a cached value from its history H_0 (newest), H_1, H_2 (finite differences, TaylorSeer):
/// k steps after H_0, spacing = steps between the computed values.
///   order 0: H_0;   order 1: H_0 + s·(H_0 − H_1);   order 2: + s²/2·(H_0 − 2H_1 + H_2),   s = k / spacing.</summary>
public static class TaylorForecast
{
    public static float[] Weights(int order, int k, int spacing)
    {
        double s = k / (double)Math.Max(1, spacing);
        return order switch
        {
            0 => [1f],
            1 => [(float)(1 + s), (float)-s],
            _ => [(float)(1 + s + s * s / 2), (float)(-s - s * s), (float)(s * s / 2)],
        };
    }

    /// <summary>Applies the weights to host values (the reference the tests compare the device forecast with).</summary>
    public static float[] Apply(float[] w, params float[][] history)
    {
        var o = new float[history[0].Length];
        for (int e = 0; e < o.Length; e++)
        {
            double acc = 0;
            for (int j = 0; j < w.Length; j++) acc += w[j] * history[j][e];
            o[e] = (float)acc;
        }
        return o;
    }
}
