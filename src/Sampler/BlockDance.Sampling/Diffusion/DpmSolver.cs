// DPM-Solver++ (2M) — Lu et al., "DPM-Solver++" (2022), multistep, data prediction, midpoint second-order
// term — with the settings PixArt-α ships in scheduler/scheduler_config.json (diffusers
// DPMSolverMultistepScheduler: linear betas 1e-4…0.02 over 1000 steps, "linspace" timesteps, solver order 2,
// lower_order_final, final sigma 0). docs/pixart.md has the derivation; the formulas:
//
//   timesteps  t_k the schedule's, in sampling order (PixArt-α's: Spacing.Linspace,
//              round_half_even(linspace(0, 999, K + 1)) reversed, last dropped)                (k = 0 … K−1)
//   s_k = √((1 − ᾱ_{t_k}) / ᾱ_{t_k}),  α_k = 1/√(1 + s_k²),  σ_k = s_k·α_k,  λ_k = −ln s_k;  step K: α = 1, σ = 0, λ = ∞
//   x0_k = (x − σ_k·ε_k)/α_k,  h = λ_{k+1} − λ_k
//   first order (k = 0, and the last step):   x ← (σ_{k+1}/σ_k)·x − α_{k+1}·expm1(−h)·x0_k
//   second order (otherwise), r = (λ_k − λ_{k−1})/h:
//                  x ← (σ_{k+1}/σ_k)·x − α_{k+1}·expm1(−h)·x0_k − ½·α_{k+1}·expm1(−h)·(x0_k − x0_{k−1})/r
// The last step is exactly x ← x0. Every constant is float64 here and float32 in the update kernel
// (src/Kernels/Diffusion/DpmSolverStep.cs). It needs no noise after x_T and works for any ε model (DiT or PixArt).
using BlockDance.Kernels;

namespace BlockDance.Sampling;

public sealed class DpmSolver
{
    public int Steps { get; }
    /// <summary>Timesteps fed to the model, in sampling order (999 first).</summary>
    public int[] Timesteps { get; }
    readonly double[] alpha, sigma, lambda;   // K + 1 entries: step k, and the end (α 1, σ 0, λ ∞)

    /// <summary>The solver over PixArt-α's own schedule of `steps` steps (Spacing.Linspace).</summary>
    public DpmSolver(int steps) : this(new Schedule(steps, Spacing.Linspace)) { }

    /// <summary>The solver over the timesteps of `schedule` (any spacing), visited from the largest.</summary>
    public DpmSolver(Schedule schedule)
    {
        int steps = schedule.Steps;
        Steps = steps;
        var betas = Schedule.BaseBetas();
        var acp = new double[Schedule.TrainSteps];
        double a = 1;
        for (int i = 0; i < acp.Length; i++) { a *= 1 - betas[i]; acp[i] = a; }
        Timesteps = schedule.Timesteps.Reverse().ToArray();
        alpha = new double[steps + 1];
        sigma = new double[steps + 1];
        lambda = new double[steps + 1];
        for (int k = 0; k < steps; k++)
        {
            double s = Math.Sqrt((1 - acp[Timesteps[k]]) / acp[Timesteps[k]]);
            alpha[k] = 1 / Math.Sqrt(1 + s * s);
            sigma[k] = s * alpha[k];
            lambda[k] = -Math.Log(s);
        }
        (alpha[steps], sigma[steps], lambda[steps]) = (1, 0, double.PositiveInfinity);
    }

    /// <summary>round(linspace(0, 999, K + 1)) reversed without its last element (numpy rounds halves to even).</summary>
    public static int[] LinspaceTimesteps(int steps) => Schedule.SpaceLinspace(steps).Reverse().ToArray();

    /// <summary>α and σ of step k's timestep (k = Steps: the end, α 1, σ 0).</summary>
    public double Alpha(int k) => alpha[k];
    public double Sigma(int k) => sigma[k];

    /// <summary>Whether step k uses the first-order update (no history yet, or the lower-order final step).</summary>
    public bool FirstOrder(int k) => k == 0 || k == Steps - 1;

    /// <summary>The float32 update constants of step k.</summary>
    public DpmCoefficients Coefficients(int k)
    {
        double h = lambda[k + 1] - lambda[k];
        double em = double.IsPositiveInfinity(h) ? -1 : Math.Exp(-h) - 1;   // e^{−h} − 1; h ≥ 1e-3 for ≤ 1000 steps, so no cancellation worth a series
        double b = -alpha[k + 1] * em;
        double d = 0;
        if (!FirstOrder(k))
        {
            double r = (lambda[k] - lambda[k - 1]) / h;
            d = 0.5 * b / r;
        }
        return new DpmCoefficients((float)alpha[k], (float)sigma[k], (float)(sigma[k + 1] / sigma[k]), (float)b, (float)d);
    }
}
