// A DiT-XL/2-shaped model (D 1152, 16 heads of 72, patch 2, 4 → 8 channels, 32×32 latent = 256 tokens,
// 1000 classes) with random weights, written to temp files in BOTH layouts, loads through ModelLoader
// and runs a full forward on the CPU accelerator. Depth is 1 instead of 28 (one block is ~96 MB of
// weights and 8.5 GFLOP per sample, 15–25 s per forward on a 2-core CPU), so this checks every XL shape and the
// 72-wide heads end to end without the real 2.7 GB checkpoint. Both layouts must agree exactly.
using System.Text.Json;
using BlockDance.Kernels;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class XlShapeTests(ITestOutputHelper output)
{
    const int D = 1152, Heads = 16, P = 2, C = 4, Cout = 8, Input = 32, Classes = 1000, Depth = 1;

    [SkippableTheory]
    [InlineData("cpu")]
    [InlineData("cuda")]
    public void XlShapedDiT_LoadsAndRuns_InBothLayouts_WithIdenticalOutputs(string kind)
    {
        var dev = TestDevices.Get(kind);
        var root = Directory.CreateTempSubdirectory("bd_xl_");
        try
        {
            var sd = RandomOfficialWeights(seed: 7);
            var officialPath = Path.Combine(root.FullName, "dit_xl_depth1.safetensors");
            SafeTensorsWriter.Write(officialPath, sd.Select(kv => (kv.Key, kv.Value.shape, kv.Value.data)),
                new Dictionary<string, string> { ["format"] = "official", ["num_heads"] = Heads.ToString() });
            var diffusersPath = Path.Combine(root.FullName, "DiT-XL-depth1");
            WriteDiffusers(diffusersPath, sd);
            sd.Clear();

            var x = Tolerance.Random(11, C * Input * Input);
            float[] t = [500f];
            int[] y = [207];
            float[] Run(string path)
            {
                using var model = ModelLoader.Load(dev, path);
                var cfg = model.Config;
                output.WriteLine($"{path}: {cfg}");
                Assert.Equal((Depth, D, Heads, 72, P, Cout, 256, Classes), (cfg.Depth, cfg.Hidden, cfg.Heads, cfg.HeadDim, cfg.Patch, cfg.OutChannels, cfg.Tokens, cfg.NumClasses));
                using var input = Tensor.FromHost(dev, "x", x, 1, C, Input, Input);
                using var result = Tensor.Allocate(dev, "out", 1, Cout, Input, Input);
                var watch = System.Diagnostics.Stopwatch.StartNew();
                model.Forward(input, t, y, result);
                var o = result.ToHost();
                output.WriteLine($"  forward (embeddings + {Depth} block + final layer, batch 1): {watch.Elapsed.TotalSeconds:F1} s, " +
                                 $"{model.ForwardFlops(1) / 1e9:F1} GFLOP");
                return o;
            }
            var a = Run(officialPath);
            var b = Run(diffusersPath);
            Assert.All(a, v => Assert.True(float.IsFinite(v)));
            double rms = Math.Sqrt(a.Average(v => (double)v * v));
            output.WriteLine($"  output rms {rms:F3}");
            Assert.True(rms > 0.05, $"output rms {rms}: the model output is degenerate");
            Tolerance.AssertClose(a, b, 0, 0, "XL-shaped official vs diffusers", output);
        }
        finally { root.Delete(true); }
    }

    /// <summary>Official keys and shapes of a DiT-XL/2 (docs/formats.md) with Depth blocks; weights uniform with
    /// std 1/√fan_in (biases 0.02, label table 0.7) so activations stay O(1). A xorshift generator: 30M values fast.</summary>
    static Dictionary<string, (long[] shape, float[] data)> RandomOfficialWeights(ulong seed)
    {
        ulong s = seed * 0x9E3779B97F4A7C15UL + 1;
        float[] Uniform(long n, double std)
        {
            var a = new float[n];
            float scale = (float)(std * Math.Sqrt(3) * 2);
            for (long i = 0; i < n; i++)
            {
                s ^= s << 13; s ^= s >> 7; s ^= s << 17;
                a[i] = ((s >> 40) / (float)(1UL << 24) - 0.5f) * scale;
            }
            return a;
        }
        var sd = new Dictionary<string, (long[], float[])>();
        void Lin(string key, int outF, int inF)
        {
            sd[key + ".weight"] = ([outF, inF], Uniform((long)outF * inF, 1 / Math.Sqrt(inF)));
            sd[key + ".bias"] = ([outF], Uniform(outF, 0.02));
        }
        int tokens = (Input / P) * (Input / P);
        sd["pos_embed"] = ([1, tokens, D], PositionEmbedding.SinCos2D(D, Input / P));
        sd["x_embedder.proj.weight"] = ([D, C, P, P], Uniform((long)D * C * P * P, 1 / Math.Sqrt(C * P * P)));
        sd["x_embedder.proj.bias"] = ([D], Uniform(D, 0.02));
        Lin("t_embedder.mlp.0", D, 256);
        Lin("t_embedder.mlp.2", D, D);
        sd["y_embedder.embedding_table.weight"] = ([Classes + 1, D], Uniform((long)(Classes + 1) * D, 0.7));
        for (int i = 0; i < Depth; i++)
        {
            Lin($"blocks.{i}.attn.qkv", 3 * D, D);
            Lin($"blocks.{i}.attn.proj", D, D);
            Lin($"blocks.{i}.mlp.fc1", 4 * D, D);
            Lin($"blocks.{i}.mlp.fc2", D, 4 * D);
            Lin($"blocks.{i}.adaLN_modulation.1", 6 * D, D);
        }
        Lin("final_layer.linear", P * P * Cout, D);
        Lin("final_layer.adaLN_modulation.1", 2 * D, D);
        return sd;
    }

    /// <summary>The same weights as a diffusers DiTTransformer2DModel folder (the mapping in docs/formats.md).</summary>
    static void WriteDiffusers(string folder, Dictionary<string, (long[] shape, float[] data)> sd)
    {
        var dir = Directory.CreateDirectory(Path.Combine(folder, "transformer")).FullName;
        var list = new List<(string, long[], float[])>();
        void Copy(string official, string diffusers)
        {
            foreach (var kind in new[] { ".weight", ".bias" })
                if (sd.TryGetValue(official + kind, out var v)) list.Add((diffusers + kind, v.shape, v.data));
        }
        Copy("x_embedder.proj", "pos_embed.proj");
        for (int i = 0; i < Depth; i++)
        {
            string b = $"blocks.{i}.", d = $"transformer_blocks.{i}.";
            Copy("t_embedder.mlp.0", d + "norm1.emb.timestep_embedder.linear_1");
            Copy("t_embedder.mlp.2", d + "norm1.emb.timestep_embedder.linear_2");
            Copy("y_embedder.embedding_table", d + "norm1.emb.class_embedder.embedding_table");
            Copy(b + "adaLN_modulation.1", d + "norm1.linear");
            foreach (var kind in new[] { "weight", "bias" })
            {
                var (shape, data) = sd[$"{b}attn.qkv.{kind}"];
                long part = data.Length / 3;
                long[] partShape = [.. shape];
                partShape[0] /= 3;
                string[] names = ["to_q", "to_k", "to_v"];
                for (int j = 0; j < 3; j++) list.Add(($"{d}attn1.{names[j]}.{kind}", partShape, data[(int)(j * part)..(int)((j + 1) * part)]));
            }
            Copy(b + "attn.proj", d + "attn1.to_out.0");
            Copy(b + "mlp.fc1", d + "ff.net.0.proj");
            Copy(b + "mlp.fc2", d + "ff.net.2");
        }
        Copy("final_layer.adaLN_modulation.1", "proj_out_1");
        Copy("final_layer.linear", "proj_out_2");
        SafeTensorsWriter.Write(Path.Combine(dir, DiffusersSource.WeightsName), list);
        File.WriteAllText(Path.Combine(dir, "config.json"), JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["_class_name"] = "DiTTransformer2DModel", ["num_attention_heads"] = Heads, ["attention_head_dim"] = D / Heads,
            ["num_layers"] = Depth, ["patch_size"] = P, ["in_channels"] = C, ["out_channels"] = Cout, ["sample_size"] = Input,
            ["num_embeds_ada_norm"] = Classes, ["norm_type"] = "ada_norm_zero",
        }));
    }
}
