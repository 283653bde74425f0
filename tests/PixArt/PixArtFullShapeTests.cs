// PixArt-XL/2-shaped models (D 1152, 16 heads × 72, patch 2, 4 → 8 channels, 4096-wide captions of 120 tokens;
// the 512 config and the 1024-MS config with its micro-conditions and position scale 2) with random weights and
// depth 1, written to temp folders in BOTH key layouts (diffusers, and the official names the converter keeps),
// load and run a forward on the CPU accelerator; both layouts give the same bytes. CI runs them at a 16×16
// latent (64 tokens: the position table interpolated to the trained grid); the trained sizes, 64×64 and
// 128×128 (1024 and 4096 tokens, minutes per forward on 2 CPU cores), run with BLOCKDANCE_PIXART_FULL=1.
using System.Text.Json;
using BlockDance.Kernels;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class PixArtFullShapeTests(ITestOutputHelper output)
{
    const int D = 1152, Heads = 16, Cap = 4096, L = 120;

    static Dictionary<string, (long[] Shape, float[] Data)> OfficialWeights(bool micro, int seed)
    {
        var sd = new Dictionary<string, (long[], float[])>();
        int s = seed;
        void Lin(string k, int o, int i) { sd[k + ".weight"] = ([o, i], Tolerance.Random(s++, (long)o * i, 1f / MathF.Sqrt(i))); sd[k + ".bias"] = ([o], Tolerance.Random(s++, o, 0.1f)); }
        sd["x_embedder.proj.weight"] = ([D, 4, 2, 2], Tolerance.Random(s++, D * 16, 0.25f));
        sd["x_embedder.proj.bias"] = ([D], Tolerance.Random(s++, D, 0.1f));
        Lin("t_embedder.mlp.0", D, 256); Lin("t_embedder.mlp.2", D, D);
        if (micro) { Lin("csize_embedder.mlp.0", D / 3, 256); Lin("csize_embedder.mlp.2", D / 3, D / 3); Lin("ar_embedder.mlp.0", D / 3, 256); Lin("ar_embedder.mlp.2", D / 3, D / 3); }
        Lin("t_block.1", 6 * D, D);
        Lin("y_embedder.y_proj.fc1", D, Cap); Lin("y_embedder.y_proj.fc2", D, D);
        sd["blocks.0.scale_shift_table"] = ([6, D], Tolerance.Random(s++, 6 * D, 0.5f));
        Lin("blocks.0.attn.qkv", 3 * D, D); Lin("blocks.0.attn.proj", D, D);
        Lin("blocks.0.cross_attn.q_linear", D, D); Lin("blocks.0.cross_attn.kv_linear", 2 * D, D); Lin("blocks.0.cross_attn.proj", D, D);
        Lin("blocks.0.mlp.fc1", 4 * D, D); Lin("blocks.0.mlp.fc2", D, 4 * D);
        sd["final_layer.scale_shift_table"] = ([2, D], Tolerance.Random(s++, 2 * D, 0.5f));
        Lin("final_layer.linear", 32, D);
        return sd;
    }

    /// <summary>The diffusers names (split q/k/v and k/v) of an official state dict.</summary>
    static IEnumerable<(string, long[], float[])> ToDiffusers(Dictionary<string, (long[] Shape, float[] Data)> sd)
    {
        string[] parts = ["to_q", "to_k", "to_v"];
        foreach (var (k, (shape, data)) in sd)
        {
            string Rename(string key) => key
                .Replace("x_embedder.proj", "pos_embed.proj").Replace("t_embedder.mlp.0", "adaln_single.emb.timestep_embedder.linear_1")
                .Replace("t_embedder.mlp.2", "adaln_single.emb.timestep_embedder.linear_2")
                .Replace("csize_embedder.mlp.0", "adaln_single.emb.resolution_embedder.linear_1").Replace("csize_embedder.mlp.2", "adaln_single.emb.resolution_embedder.linear_2")
                .Replace("ar_embedder.mlp.0", "adaln_single.emb.aspect_ratio_embedder.linear_1").Replace("ar_embedder.mlp.2", "adaln_single.emb.aspect_ratio_embedder.linear_2")
                .Replace("t_block.1", "adaln_single.linear").Replace("y_embedder.y_proj.fc1", "caption_projection.linear_1").Replace("y_embedder.y_proj.fc2", "caption_projection.linear_2")
                .Replace("blocks.0.attn.proj", "transformer_blocks.0.attn1.to_out.0").Replace("blocks.0.cross_attn.q_linear", "transformer_blocks.0.attn2.to_q")
                .Replace("blocks.0.cross_attn.proj", "transformer_blocks.0.attn2.to_out.0").Replace("blocks.0.mlp.fc1", "transformer_blocks.0.ff.net.0.proj")
                .Replace("blocks.0.mlp.fc2", "transformer_blocks.0.ff.net.2").Replace("blocks.0.scale_shift_table", "transformer_blocks.0.scale_shift_table")
                .Replace("final_layer.scale_shift_table", "scale_shift_table").Replace("final_layer.linear", "proj_out");
            if (k.StartsWith("blocks.0.attn.qkv") || k.StartsWith("blocks.0.cross_attn.kv_linear"))
            {
                bool qkv = k.Contains("qkv");
                int n = qkv ? 3 : 2, len = data.Length / n;
                for (int i = 0; i < n; i++)
                    yield return ($"transformer_blocks.0.{(qkv ? "attn1" : "attn2")}.{parts[qkv ? i : i + 1]}.{k.Split('.')[^1]}",
                        [shape[0] / n, .. shape[1..]], data[(i * len)..((i + 1) * len)]);
            }
            else yield return (Rename(k), shape, data);
        }
    }

    static void WriteFolder(string dir, int sample, bool micro, IEnumerable<(string, long[], float[])> tensors)
    {
        Directory.CreateDirectory(Path.Combine(dir, "transformer"));
        SafeTensorsWriter.Write(Path.Combine(dir, "transformer", "diffusion_pytorch_model.safetensors"), tensors);
        File.WriteAllText(Path.Combine(dir, "transformer", "config.json"), JsonSerializer.Serialize(new Dictionary<string, object>
        {
            ["_class_name"] = "PixArtTransformer2DModel", ["activation_fn"] = "gelu-approximate", ["attention_bias"] = true,
            ["attention_head_dim"] = 72, ["caption_channels"] = Cap, ["cross_attention_dim"] = D, ["in_channels"] = 4,
            ["norm_type"] = "ada_norm_single", ["norm_eps"] = 1e-6, ["num_attention_heads"] = Heads, ["num_layers"] = 1,
            ["out_channels"] = 8, ["patch_size"] = 2, ["sample_size"] = sample,
        }));
    }

    public static IEnumerable<object[]> Cases()
    {
        bool full = Environment.GetEnvironmentVariable("BLOCKDANCE_PIXART_FULL") == "1";
        yield return ["cpu", 64, full ? 64 : 16];
        yield return ["cpu", 128, full ? 128 : 16];
        yield return ["cuda", 64, 64];
        yield return ["cuda", 128, 128];
    }

    [SkippableTheory]
    [MemberData(nameof(Cases))]
    public void XlShapedPixArt_LoadsAndRuns_InBothLayouts_SameOutput(string kind, int sample, int latent)
    {
        var dev = TestDevices.Get(kind);
        bool micro = sample == 128;                        // diffusers' rule: micro-conditions iff sample_size 128
        var root = Directory.CreateTempSubdirectory("bd_pixart_xl_");
        try
        {
            var sd = OfficialWeights(micro, seed: 5);
            WriteFolder(Path.Combine(root.FullName, "official"), sample, micro, sd.Select(kv => (kv.Key, kv.Value.Shape, kv.Value.Data)));
            WriteFolder(Path.Combine(root.FullName, "diffusers"), sample, micro, ToDiffusers(sd));
            sd.Clear();
            var y = Tolerance.Random(21, (long)2 * L * Cap);
            var mask = Enumerable.Range(0, 2 * L).Select(i => i % L < (i < L ? 17 : 1) ? 1f : 0f).ToArray();
            var x = Tolerance.Random(22, 2L * 4 * latent * latent);
            float[] Run(string layout)
            {
                using var model = PixArt.Load(dev, Path.Combine(root.FullName, layout), latent);
                var cfg = model.PixArtConfig;
                Assert.Equal((D, 16, 72, micro, micro ? 2.0 : 1.0), (cfg.Hidden, cfg.Heads, cfg.HeadDim, cfg.MicroConditions, cfg.InterpolationScale));
                model.SetCaptions(y, mask, 2, L);
                using var tx = Tensor.FromHost(dev, "x", x, 2, 4, latent, latent);
                using var o = Tensor.Allocate(dev, "out", 2, 8, latent, latent);
                var sw = System.Diagnostics.Stopwatch.StartNew();
                model.Forward(tx, [999f, 999f], [0, 1], o);
                var r = o.ToHost();
                output.WriteLine($"{layout}, sample_size {sample}, latent {latent}: forward {sw.Elapsed.TotalSeconds:F1} s, {model.ForwardFlops(2) / 1e9:F1} GFLOP");
                return r;
            }
            var a = Run("diffusers");
            Assert.All(a, v => Assert.True(float.IsFinite(v)));
            Assert.True(a.Select(MathF.Abs).Average() > 1e-3);
            Assert.Equal(a, Run("official"));
        }
        finally { root.Delete(recursive: true); }
    }
}
