// One T5 encoder block (HF keys encoder.block.{i}.layer.0 = self-attention, layer.1 = feed-forward),
// pre-norm with residuals and no biases anywhere:
//   h += O · SelfAttention(RMSNorm(h; w_attn))            scores = q·kᵀ + position bias + key mask, no 1/√d_kv
//   h += wo · (gelu_new(wi_0 · x) ⊙ (wi_1 · x)),  x = RMSNorm(h; w_ff)
// The position bias is block 0's relative_attention_bias, shared by every block (T5Encoder owns it).
// q, k and v are concatenated into one (3·inner, d_model) weight at load time, so one GEMM produces the
// packed qkv the attention kernel reads. The residual adds use the GEMM's GatedResidual epilogue with a
// gate of ones (y = h + 1·(acc + 0)), writing h in place.
using BlockDance.Kernels;

namespace BlockDance.Transformer.T5;

public sealed class T5Block : IDisposable
{
    readonly T5Config cfg;
    public Tensor AttnNorm { get; }   // (D)            layer.0.layer_norm.weight
    public Tensor Qkv { get; }        // (3·inner, D)   cat(layer.0.SelfAttention.q/k/v.weight)
    public Tensor O { get; }          // (D, inner)     layer.0.SelfAttention.o.weight
    public Tensor FfNorm { get; }     // (D)            layer.1.layer_norm.weight
    public Tensor Wi0 { get; }        // (F, D)         layer.1.DenseReluDense.wi_0.weight (through gelu_new)
    public Tensor Wi1 { get; }        // (F, D)         layer.1.DenseReluDense.wi_1.weight (linear gate partner)
    public Tensor Wo { get; }         // (D, F)         layer.1.DenseReluDense.wo.weight

    public T5Block(ComputeDevice dev, IWeightSource src, T5Config cfg, int index)
    {
        this.cfg = cfg;
        string p = $"encoder.block.{index}.layer.";
        int d = cfg.DModel, inner = cfg.Inner, f = cfg.DFf;
        Tensor Load(string key, params int[] shape) =>
            Tensor.FromHost(dev, key, src.Read(p + key, Array.ConvertAll(shape, s => (long)s)), shape);
        AttnNorm = Load("0.layer_norm.weight", d);
        var qkv = new float[3L * inner * d];
        int at = 0;
        foreach (var part in new[] { "q", "k", "v" })
        {
            var w = src.Read($"{p}0.SelfAttention.{part}.weight", inner, d);
            w.CopyTo(qkv, at);
            at += w.Length;
        }
        Qkv = Tensor.FromHost(dev, p + "0.SelfAttention.qkv", qkv, 3 * inner, d);
        O = Load("0.SelfAttention.o.weight", d, inner);
        FfNorm = Load("1.layer_norm.weight", d);
        Wi0 = Load("1.DenseReluDense.wi_0.weight", f, d);
        Wi1 = Load("1.DenseReluDense.wi_1.weight", f, d);
        Wo = Load("1.DenseReluDense.wo.weight", d, f);
    }

    /// <summary>h (B·L, D) ← block(h), in place.</summary>
    public void Forward(T5Workspace w, T5SharedTensors s)
    {
        var dev = Qkv.Device;
        int rows = w.Rows, d = cfg.DModel, inner = cfg.Inner, f = cfg.DFf;
        var residual = new GateSpec(s.Ones.View, RowsPerSample: rows, GateStride: 0, GateOffset: 0); // gate ≡ 1

        // Self-attention sub-layer.
        RmsNorm.Run(dev, w.H.View, AttnNorm.View, w.X.View, rows, d, cfg.Eps);                          // x   (B·L, D)
        Gemm.Run(dev, w.X.View, Qkv.View, s.Zeros(3 * inner), w.Qkv.View, rows, 3 * inner, d);          // qkv (B·L, 3·inner)
        RelativeBiasAttention.Run(dev, w.Qkv.View, s.BiasTable.View, w.Buckets, w.Mask.View, w.Attn.View,
            w.Batch, w.Length, cfg.Heads, cfg.DKv, scale: 1f, cfg.NumBuckets);                          // a   (B·L, inner)
        Gemm.Run(dev, w.Attn.View, O.View, s.Zeros(d), w.H.View, rows, d, inner,
            Epilogue.GatedResidual, w.H.View, residual);                                                 // h  += a·Oᵀ

        // Gated-GELU feed-forward sub-layer.
        RmsNorm.Run(dev, w.H.View, FfNorm.View, w.X.View, rows, d, cfg.Eps);                            // x    (B·L, D)
        Gemm.Run(dev, w.X.View, Wi0.View, s.Zeros(f), w.Gate.View, rows, f, d);                         // gate (B·L, F)
        Gemm.Run(dev, w.X.View, Wi1.View, s.Zeros(f), w.Up.View, rows, f, d);                           // up   (B·L, F)
        GatedGelu.Run(dev, w.Gate.View, w.Up.View, w.Gate.View, (long)rows * f);                        // gelu_new(gate) ⊙ up
        Gemm.Run(dev, w.Gate.View, Wo.View, s.Zeros(d), w.H.View, rows, d, f,
            Epilogue.GatedResidual, w.H.View, residual);                                                 // h  += ·woᵀ
    }

    public long Flops(long rows, long length, long batch) =>
        Gemm.Flops(rows, 3 * cfg.Inner, cfg.DModel) + RelativeBiasAttention.Flops(batch, length, cfg.Heads, cfg.DKv)
        + Gemm.Flops(rows, cfg.DModel, cfg.Inner) + 2 * Gemm.Flops(rows, cfg.DFf, cfg.DModel) + Gemm.Flops(rows, cfg.DModel, cfg.DFf);

    public void Dispose()
    {
        foreach (var t in new[] { AttnNorm, Qkv, O, FfNorm, Wi0, Wi1, Wo }) t.Dispose();
    }
}
