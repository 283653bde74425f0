// The diffusion process DiT was trained with (guided-diffusion's GaussianDiffusion + respacing):
//   1000 training steps, linear betas linspace(1e-4, 0.02) in float64, ᾱ_t = Π (1 − β_s).
// Sampling with K < 1000 steps keeps a subset of timesteps and recomputes the betas between them:
//   β'_i = 1 − ᾱ[t_i] / ᾱ[t_{i−1}]   (ᾱ before the first kept step = 1)
// All per-step constants are float64 here and cast to float32 once, as the reference does.
// The model is always fed the ORIGINAL timestep t_i (0..999), not the index i.
using BlockDance.Kernels;

namespace BlockDance.Sampling;

public enum Spacing
{
    /// <summary>space_timesteps(1000, "K"): fractional stride (1000−1)/(K−1), round half to even (the reference sample.py).</summary>
    Even,
    /// <summary>space_timesteps(1000, "ddimK"): the integer stride s with len(range(0, 1000, s)) == K (1000 // K when exact).</summary>
    Stride,
    /// <summary>round_half_even(linspace(0, 999, K + 1)) without 0 (diffusers' "linspace", PixArt-α's DPM-Solver++ schedule).</summary>
    Linspace,
}

public sealed class Schedule
{
    public const int TrainSteps = 1000;
    public int[] Timesteps { get; }           // kept original timesteps, ascending
    public double[] Betas { get; }            // respaced β'
    public double[] AlphasCumprod { get; }
    public double[] AlphasCumprodPrev { get; }
    public double[] PosteriorVariance { get; }
    public double[] PosteriorLogVarianceClipped { get; }
    public int Steps => Timesteps.Length;

    public Schedule(int steps, Spacing spacing)
    {
        if (steps < 1 || steps > TrainSteps)
            throw new InvalidValueException("sampling steps", $"1..{TrainSteps}", $"{steps}");
        Timesteps = spacing switch { Spacing.Even => SpaceEven(steps), Spacing.Stride => SpaceStride(steps), _ => SpaceLinspace(steps) };
        var baseAcp = BaseAlphasCumprod();
        var betas = new List<double>();
        double last = 1.0;
        foreach (int t in Timesteps)
        {
            betas.Add(1 - baseAcp[t] / last);
            last = baseAcp[t];
        }
        Betas = betas.ToArray();
        int k = Betas.Length;
        AlphasCumprod = new double[k];
        AlphasCumprodPrev = new double[k];
        double acp = 1.0;
        for (int i = 0; i < k; i++)
        {
            AlphasCumprodPrev[i] = acp;
            acp *= 1 - Betas[i];
            AlphasCumprod[i] = acp;
        }
        PosteriorVariance = new double[k];
        for (int i = 0; i < k; i++)
            PosteriorVariance[i] = Betas[i] * (1 - AlphasCumprodPrev[i]) / (1 - AlphasCumprod[i]);
        // log of the posterior variance, "clipped": index 0 (where it is 0) uses index 1's value. With one kept step
        // there is no index 1 (guided-diffusion would fail there); step 0 adds no noise, so log β' keeps the value finite.
        PosteriorLogVarianceClipped = new double[k];
        for (int i = 0; i < k; i++)
            PosteriorLogVarianceClipped[i] = Math.Log(i == 0 ? (k > 1 ? PosteriorVariance[1] : Betas[0]) : PosteriorVariance[i]);
    }

    public static double[] BaseBetas()
    {
        // np.linspace(1e-4, 0.02, 1000, dtype=float64): i·step + start, step = (stop − start)/(n − 1), last = stop.
        var b = new double[TrainSteps];
        double step = (0.02 - 0.0001) / (TrainSteps - 1);
        for (int i = 0; i < TrainSteps; i++) b[i] = i * step + 0.0001;
        b[TrainSteps - 1] = 0.02;
        return b;
    }

    static double[] BaseAlphasCumprod()
    {
        var b = BaseBetas();
        var acp = new double[TrainSteps];
        double a = 1.0;
        for (int i = 0; i < TrainSteps; i++) { a *= 1 - b[i]; acp[i] = a; }
        return acp;
    }

    /// <summary>"K": one section, fractional stride accumulated as a float, Python round (half to even).</summary>
    public static int[] SpaceEven(int k)
    {
        double stride = k <= 1 ? 1 : (TrainSteps - 1) / (double)(k - 1);
        var set = new SortedSet<int>();
        double cur = 0;
        for (int i = 0; i < k; i++)
        {
            set.Add((int)Math.Round(cur, MidpointRounding.ToEven));
            cur += stride;
        }
        return set.ToArray();
    }

    /// <summary>"linspace": round_half_even(linspace(0, 999, K + 1)) with its first element (0) dropped, ascending.</summary>
    public static int[] SpaceLinspace(int k)
    {
        int last = TrainSteps - 1;
        var t = new int[k];
        for (int i = 1; i <= k; i++)
            t[i - 1] = (int)Math.Round(i == k ? last : i * (last / (double)k), MidpointRounding.ToEven);
        return t;
    }

    /// <summary>"ddimK": the first integer stride giving exactly K steps.</summary>
    public static int[] SpaceStride(int k)
    {
        for (int s = 1; s < TrainSteps; s++)
            if ((TrainSteps + s - 1) / s == k)
                return Enumerable.Range(0, k).Select(i => i * s).ToArray();
        if (k == TrainSteps) return Enumerable.Range(0, k).ToArray();
        throw new InvalidValueException("stride spacing (\"ddimK\")", $"a step count that an integer stride over {TrainSteps} timesteps gives exactly (use even spacing otherwise)", $"{k} steps");
    }

    /// <summary>float32 constants of step i (i = K−1 … 0 while sampling).</summary>
    public StepCoefficients Coefficients(int i, double eta = 0)
    {
        double acp = AlphasCumprod[i], prev = AlphasCumprodPrev[i];
        double sigma = eta * Math.Sqrt((1 - prev) / (1 - acp)) * Math.Sqrt(1 - acp / prev);
        if (i == 0) sigma = 0; // the reference adds no noise at the last step (t = 0)
        return new StepCoefficients(
            SqrtRecipAlpha: (float)Math.Sqrt(1 / acp),
            SqrtRecipM1Alpha: (float)Math.Sqrt(1 / acp - 1),
            A: (float)Math.Sqrt(prev),
            B: (float)Math.Sqrt(1 - prev - sigma * sigma),
            Sigma: (float)sigma,
            Coef1: (float)(Betas[i] * Math.Sqrt(prev) / (1 - acp)),
            Coef2: (float)((1 - prev) * Math.Sqrt(1 - Betas[i]) / (1 - acp)),
            LogBeta: (float)Math.Log(Betas[i]),
            LogPv: (float)PosteriorLogVarianceClipped[i],
            NoiseScale: i != 0 ? 1f : 0f);
    }
}
