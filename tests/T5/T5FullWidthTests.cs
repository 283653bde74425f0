// A full-size-shaped synthetic T5 (XXL widths: d_model 4096, 64 heads × 64, d_ff 10240, vocab 32128; depth 1)
// loads and runs on the CPU accelerator, checked against a host reference built from the kernels' plain
// references (float64 GEMM accumulation). Costs ~1.3 GB of memory and tens of seconds on a loaded 2-core
// machine, so it runs only with BLOCKDANCE_T5_FULLWIDTH=1 (skipped visibly otherwise); the tiny fixture
// tests cover the same code paths at every commit.
using BlockDance.Kernels;
using BlockDance.Transformer;
using BlockDance.Transformer.T5;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests.T5;

public class T5FullWidthTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void XxlWidthsDepth1_RunsAndMatchesHostReference()
    {
        Skip.IfNot(Environment.GetEnvironmentVariable("BLOCKDANCE_T5_FULLWIDTH") == "1",
            "full-width synthetic T5 (1.3 GB, slow on the CPU accelerator): set BLOCKDANCE_T5_FULLWIDTH=1 to run it");
        var dev = TestDevices.Get("cpu");
        var cfg = T5Config.Xxl with { Layers = 1 };
        var src = new T5RandomWeights(cfg, seed: 3);
        int[] ids = [37, 1000, 32099, 5, 1, 0];
        int[] mask = [1, 1, 1, 1, 1, 0];
        var sw = System.Diagnostics.Stopwatch.StartNew();
        using var enc = new T5Encoder(dev, src, cfg);
        double load = sw.Elapsed.TotalSeconds;
        using var o = enc.Encode(ids, mask, 1, ids.Length);
        var got = o.Embeddings.ToHost();
        double run = sw.Elapsed.TotalSeconds - load;
        var expected = T5HostReference.Encode(src, cfg, ids, mask, 1, ids.Length);
        output.WriteLine($"XXL widths, depth 1, 6 tokens: load {load:F1} s, encode {run:F1} s on {dev.Name}");
        // K up to 10240 in fp32 vs float64 accumulation, O(1) outputs: measured 1.4e-5, checked at 1e-4.
        Tolerance.AssertClose(expected, got, 1e-4, 1e-4, "t5 xxl-width last_hidden_state", output);
    }
}

/// <summary>The encoder on the host from the kernels' references (slow; for checks only).</summary>
public static class T5HostReference
{
    public static float[] Encode(IWeightSource src, T5Config cfg, int[] ids, int[] mask, int b, int l)
    {
        int d = cfg.DModel, inner = cfg.Inner, f = cfg.DFf, rows = b * l;
        float[] W(string k, params long[] s) => src.Read(k, s);
        var emb = W("shared.weight", cfg.Vocab, d);
        var h = new float[rows * d];
        for (int r = 0; r < rows; r++) Array.Copy(emb, (long)ids[r] * d, h, (long)r * d, d);
        var table = W("encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight", cfg.NumBuckets, cfg.Heads);
        var buckets = T5RelativePosition.Buckets(l, cfg.NumBuckets, cfg.MaxDistance);
        var maskF = Array.ConvertAll(mask, m => (float)m);
        var x = new float[rows * d];
        for (int i = 0; i < cfg.Layers; i++)
        {
            string p = $"encoder.block.{i}.layer.";
            RmsNorm.Reference(h, W(p + "0.layer_norm.weight", d), x, rows, d, cfg.Eps);
            var qkv = new float[rows * 3 * inner];
            var part = new float[rows * inner];
            for (int j = 0; j < 3; j++)
            {
                Gemm.Reference(x, W($"{p}0.SelfAttention.{"qkv"[j]}.weight", inner, d), new float[inner], part, rows, inner, d);
                for (int r = 0; r < rows; r++) Array.Copy(part, r * inner, qkv, r * 3 * inner + j * inner, inner);
            }
            var a = new float[rows * inner];
            RelativeBiasAttention.Reference(qkv, table, buckets, maskF, a, b, l, cfg.Heads, cfg.DKv, 1f);
            var y = new float[rows * d];
            Gemm.Reference(a, W(p + "0.SelfAttention.o.weight", d, inner), new float[d], y, rows, d, inner);
            for (int e = 0; e < h.Length; e++) h[e] += y[e];
            RmsNorm.Reference(h, W(p + "1.layer_norm.weight", d), x, rows, d, cfg.Eps);
            var g = new float[rows * f];
            var u = new float[rows * f];
            Gemm.Reference(x, W(p + "1.DenseReluDense.wi_0.weight", f, d), new float[f], g, rows, f, d);
            Gemm.Reference(x, W(p + "1.DenseReluDense.wi_1.weight", f, d), new float[f], u, rows, f, d);
            GatedGelu.Reference(g, u, g);
            Gemm.Reference(g, W(p + "1.DenseReluDense.wo.weight", d, f), new float[d], y, rows, d, f);
            for (int e = 0; e < h.Length; e++) h[e] += y[e];
        }
        var outp = new float[rows * d];
        RmsNorm.Reference(h, W("encoder.final_layer_norm.weight", d), outp, rows, d, cfg.Eps);
        return outp;
    }
}
