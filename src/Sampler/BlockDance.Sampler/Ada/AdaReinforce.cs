// REINFORCE for the BlockDance-Ada decision network, on the host, backprop written out by hand.
//
// Policy: π(u | v) = Π_t m_t^{u_t} (1 − m_t)^{1 − u_t},  m = sigmoid(z),  z = fc2(ReLU(fc1 v)).
//   log π(u | v) = Σ_t [ u_t·log σ(z_t) + (1 − u_t)·log(1 − σ(z_t)) ] = −Σ_t softplus((1 − 2u_t)·z_t)
//   ∂ log π / ∂ z_t = u_t − m_t
// Objective (maximised): J = (1/B)·Σ_i A_i·log π(u_i | v_i), A_i the normalised advantage of episode i.
// Backprop through the MLP (h = ReLU(a), a = fc1 v):
//   dz = A·(u − m)/B;  d fc2.W = dz hᵀ;  d fc2.b = dz;  dh = fc2.Wᵀ dz;  da = dh ⊙ [a > 0];
//   d fc1.W = da vᵀ;  d fc1.b = da.
// Learned boundary: π also draws the candidate k ~ q = softmax(c), c = fc3 h, so log π gains log q_k,
//   ∂ log q_k / ∂ c_j = [j = k] − q_j;  dc = A·(onehot(k) − q)/B;  d fc3.W = dc hᵀ;  d fc3.b = dc;  dh += fc3.Wᵀ dc.
// Everything in double; the network is ~30k parameters and a batch is 16 samples, so this costs
// milliseconds next to the sampling episodes. Checked against finite differences in tests/Cache/AdaTests.cs.
using BlockDance.Cache;

namespace BlockDance.Sampler.Ada;

/// <summary>Gradient buffers shaped like the network's parameters.</summary>
public sealed class AdaGradient(AdaPolicyInfo info)
{
    public double[] Fc1W { get; } = new double[info.Hidden * info.InputDim];
    public double[] Fc1B { get; } = new double[info.Hidden];
    public double[] Fc2W { get; } = new double[info.Decisions * info.Hidden];
    public double[] Fc2B { get; } = new double[info.Decisions];
    public double[] Fc3W { get; } = new double[info.BoundaryChoices * info.Hidden];
    public double[] Fc3B { get; } = new double[info.BoundaryChoices];

    public void Clear()
    {
        Array.Clear(Fc1W); Array.Clear(Fc1B); Array.Clear(Fc2W); Array.Clear(Fc2B); Array.Clear(Fc3W); Array.Clear(Fc3B);
    }
}

public static class AdaReinforce
{
    /// <summary>log(1 + e^x) without overflow.</summary>
    public static double Softplus(double x) => x > 0 ? x + double.LogP1(Math.Exp(-x)) : double.LogP1(Math.Exp(x));

    /// <summary>log π(u, k | v) (u_t = true: cache step; k = the boundary candidate, learned kind only).</summary>
    public static double LogProb(AdaWeights w, float[] v, bool[] u, int? choice = null)
    {
        var (_, z, c) = w.ForwardAll(v);
        double lp = 0;
        for (int t = 0; t < z.Length; t++) lp -= Softplus(u[t] ? -z[t] : z[t]);
        if (choice is int k) lp += Math.Log(AdaWeights.Softmax(c)[k]);
        return lp;
    }

    /// <summary>g += scale · ∇ log π(u, k | v) (scale = A_i / B for the REINFORCE objective).</summary>
    public static void Accumulate(AdaWeights w, float[] v, bool[] u, double scale, AdaGradient g, int? choice = null)
    {
        var info = w.Info;
        if (info.LearnsBoundary != choice.HasValue)
            throw new ArgumentException($"ada: a {info.Kind} network takes {(info.LearnsBoundary ? "a" : "no")} boundary choice");
        int hN = info.Hidden, k = info.Decisions, d = info.InputDim;
        var (h, z, c) = w.ForwardAll(v);
        var dz = new double[k];
        for (int t = 0; t < k; t++) dz[t] = scale * ((u[t] ? 1 : 0) - AdaWeights.Sigmoid(z[t]));
        var dh = new double[hN];
        for (int t = 0; t < k; t++)
        {
            g.Fc2B[t] += dz[t];
            for (int j = 0; j < hN; j++)
            {
                g.Fc2W[t * hN + j] += dz[t] * h[j];
                dh[j] += w.Fc2W[t * hN + j] * dz[t];
            }
        }
        if (choice is int chosen)
        {
            var q = AdaWeights.Softmax(c);
            for (int m = 0; m < q.Length; m++)
            {
                double dc = scale * ((m == chosen ? 1 : 0) - q[m]);
                g.Fc3B[m] += dc;
                for (int j = 0; j < hN; j++)
                {
                    g.Fc3W[m * hN + j] += dc * h[j];
                    dh[j] += w.Fc3W![m * hN + j] * dc;
                }
            }
        }
        for (int j = 0; j < hN; j++)
        {
            if (h[j] <= 0) continue;               // ReLU: no gradient where the unit is off
            g.Fc1B[j] += dh[j];
            for (int p = 0; p < d; p++) g.Fc1W[j * d + p] += dh[j] * v[p];
        }
    }

    /// <summary>Advantages: reward minus the leave-one-out batch mean (a baseline that does not depend on the
    /// episode's own action, so the gradient stays unbiased), divided by the batch's standard deviation.</summary>
    public static double[] Advantages(IReadOnlyList<double> rewards)
    {
        int n = rewards.Count;
        double sum = rewards.Sum(), mean = sum / n;
        double std = Math.Sqrt(rewards.Sum(r => (r - mean) * (r - mean)) / n);
        var a = new double[n];
        if (n < 2 || std < 1e-12) return a;      // no contrast within the batch: no update
        for (int i = 0; i < n; i++) a[i] = (rewards[i] - (sum - rewards[i]) / (n - 1)) / std;
        return a;
    }
}

/// <summary>Adam (Kingma &amp; Ba), ascending the objective: θ += lr · m̂ / (√v̂ + ε).</summary>
public sealed class Adam(double lr, double beta1 = 0.9, double beta2 = 0.999, double eps = 1e-8)
{
    readonly Dictionary<float[], (double[] M, double[] V)> state = new(ReferenceEqualityComparer.Instance);
    int t;

    public double LearningRate => lr;

    /// <summary>Call once per update, before the Ascend calls of that update.</summary>
    public void Tick() => t++;

    public void Ascend(float[] param, double[] grad)
    {
        if (!state.TryGetValue(param, out var s)) state[param] = s = (new double[param.Length], new double[param.Length]);
        double c1 = 1 - Math.Pow(beta1, t), c2 = 1 - Math.Pow(beta2, t);
        for (int i = 0; i < param.Length; i++)
        {
            s.M[i] = beta1 * s.M[i] + (1 - beta1) * grad[i];
            s.V[i] = beta2 * s.V[i] + (1 - beta2) * grad[i] * grad[i];
            param[i] += (float)(lr * (s.M[i] / c1) / (Math.Sqrt(s.V[i] / c2) + eps));
        }
    }

    public void Step(AdaWeights w, AdaGradient g)
    {
        Tick();
        Ascend(w.Fc1W, g.Fc1W); Ascend(w.Fc1B, g.Fc1B);
        Ascend(w.Fc2W, g.Fc2W); Ascend(w.Fc2B, g.Fc2B);
        if (w.Fc3W is null) return;
        Ascend(w.Fc3W, g.Fc3W); Ascend(w.Fc3B!, g.Fc3B);
    }
}
