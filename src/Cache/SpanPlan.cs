// The general plan of the step-level caches (TeaCache, First-Block Cache, DBCache, MagCache, Δ-DiT,
// TaylorSeer, adaptive and forecasting BlockDance): a span of blocks [From, To) that each row of the
// model batch either computes or replaces by a cached value, decided per row *during* the step.
//
//   embed → blocks 0..From−1 on every row                        h_s = "in" slot        (N, T, D)
//   Decide(probe)  → rows that compute the span, forecast weights  (the probe reads h_0, h_s, block From's modulated input)
//   computing rows: blocks From..To−1 (all rows at once, or a gathered sub-batch)
//   other rows:     h_e = h_s + R̂   (Residual: R = h_e − h_s of the span)   or   h_e = F̂ (Feature: F = h_e itself)
//                   R̂ / F̂ = Σ_j w_j · H_j over the row's history H_0 (newest) … H_{History−1}; copy = (1, 0, 0)
//   computing rows push h_e − h_s (or h_e) into their history
//   blocks To..L−1 on every row → final
//
// BlockDance is Feature with From = 0, To = b + 1; the whole-stack residual of TeaCache is Residual with
// From = 0, To = L; FBCache From = 1; DBCache From = Fn, To = L − Bn. A row that computes gets exactly
// the blocks' output (never in + (out − in)), so a policy that computes every row is bit-identical to
// no cache. With CFG a policy lists both rows of a sample (CfgLayout.Rows): the halves decide together.
using BlockDance.Kernels;

namespace BlockDance.Cache;

public enum SpanValue { Residual, Feature }

/// <param name="ComputeRows">Model rows that compute the span this step (the others reuse).</param>
/// <param name="Forecast">Per model row, History weights of the history (newest first) for the rows that reuse;
/// null = copy the newest value.</param>
public sealed record SpanDecision(int[] ComputeRows, float[]? Forecast = null)
{
    public static SpanDecision All(int rows) => new(Enumerable.Range(0, rows).ToArray());
    public static SpanDecision None => new([]);
}

/// <summary>What a span's gate may read, mid-step: the embedded tokens h_0, the span input h_s, and block From's
/// adaLN-modulated input LN(h_s)·(1 + scale) + shift (TeaCache's signal), each (rows, T, D). The runner builds it from
/// the model's parts (modulated computes on demand). The tensors stay on the device (a gate reduces them there:
/// ChangeSignal); the float[] reads copy to the host (a blocking wait each: the calibration recorder's).</summary>
public sealed class SpanProbe(int rows, int rowLength, Tensor tokens, Tensor input, Func<Tensor> modulated)
{
    public int Rows => rows;
    public int RowLength => rowLength;
    public Tensor TokensTensor => tokens;
    public Tensor InputTensor => input;
    public Tensor ModulatedTensor() => modulated();
    public float[] Tokens() => tokens.ToHost();
    public float[] Input() => input.ToHost();
    public float[] ModulatedInput() => modulated().ToHost()[..(Rows * RowLength)];
}

/// <param name="Key">Names the span's history in the store (a policy with two spans uses two keys).</param>
/// <param name="History">How many past values each row keeps (1 = copy, 2 = first-order forecast, 3 = second order).</param>
public sealed record SpanPlan(FeatureStore Store, int From, int To, SpanValue Value, Func<SpanProbe, SpanDecision> Decide,
    string Key = "span", int History = 1)
{
    public string HistoryKey(int j) => $"{Key}.h{j}";
}
