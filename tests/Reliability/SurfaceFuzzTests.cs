// Seeded fuzzing of every input surface besides the DiT file (ModelFuzzTests): the tiny fixtures' configs (PixArt
// transformer, VAE, scheduler, T5), .pt checkpoints and shard folders, mutated one thing at a time and run through the
// command that reads them. The oracle knows which mutations leave a usable input (an unknown extra field, a name the
// engine does not read) and which cannot (a value of the wrong type, out of range, or contradicting the weights):
// usable → exit 0 with the output; unusable → exit 2 with one error line and nothing written. Never a crash, a hang,
// an exit 70 or a file left behind.
using System.IO.Compression;
using System.Text.Json.Nodes;
using BlockDance.Kernels;
using BlockDance.Transformer.IO;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class SurfaceFuzzTests(ITestOutputHelper output)
{
    /// <summary>How a field may be mutated so that the result is surely unusable: Exact (any other value contradicts the
    /// weights or the engine), Ranged (other in-range values may be fine: only wrong types and out-of-range values),
    /// Name (a string naming an implemented variant), True/False (a boolean the engine requires).</summary>
    enum Kind { Exact, Ranged, RangedNumber, Name, True, False }

    static readonly (string File, string Field, Kind Kind)[] PixArtFields =
    [
        ("transformer/config.json", "num_layers", Kind.Exact), ("transformer/config.json", "num_attention_heads", Kind.Exact),
        ("transformer/config.json", "attention_head_dim", Kind.Exact), ("transformer/config.json", "patch_size", Kind.Exact),
        ("transformer/config.json", "in_channels", Kind.Exact), ("transformer/config.json", "out_channels", Kind.Exact),
        ("transformer/config.json", "caption_channels", Kind.Exact), ("transformer/config.json", "sample_size", Kind.Ranged),
        ("transformer/config.json", "norm_type", Kind.Name), ("transformer/config.json", "activation_fn", Kind.Name),
        ("transformer/config.json", "attention_bias", Kind.True), ("transformer/config.json", "norm_elementwise_affine", Kind.False),
        ("transformer/config.json", "norm_eps", Kind.Exact), ("transformer/config.json", "cross_attention_dim", Kind.Exact),
        ("vae/config.json", "norm_num_groups", Kind.Exact), ("vae/config.json", "scaling_factor", Kind.RangedNumber),
        ("vae/config.json", "block_out_channels", Kind.Exact), ("vae/config.json", "layers_per_block", Kind.Exact),
        ("vae/config.json", "latent_channels", Kind.Exact),
        ("scheduler/scheduler_config.json", "num_train_timesteps", Kind.Exact), ("scheduler/scheduler_config.json", "beta_start", Kind.Exact),
        ("scheduler/scheduler_config.json", "beta_end", Kind.Exact), ("scheduler/scheduler_config.json", "beta_schedule", Kind.Name),
        ("scheduler/scheduler_config.json", "prediction_type", Kind.Name), ("scheduler/scheduler_config.json", "solver_order", Kind.Exact),
        ("scheduler/scheduler_config.json", "algorithm_type", Kind.Name), ("scheduler/scheduler_config.json", "lower_order_final", Kind.True),
        ("scheduler/scheduler_config.json", "timestep_spacing", Kind.Name), ("scheduler/scheduler_config.json", "_class_name", Kind.Name),
    ];

    static readonly (string File, string Field, Kind Kind)[] T5Fields =
    [
        ("text_encoder/config.json", "d_model", Kind.Exact), ("text_encoder/config.json", "num_layers", Kind.Exact),
        ("text_encoder/config.json", "num_heads", Kind.Exact), ("text_encoder/config.json", "d_kv", Kind.Exact),
        ("text_encoder/config.json", "d_ff", Kind.Exact), ("text_encoder/config.json", "vocab_size", Kind.Exact),
        ("text_encoder/config.json", "relative_attention_num_buckets", Kind.Exact),
        ("text_encoder/config.json", "relative_attention_max_distance", Kind.Ranged),
        ("text_encoder/config.json", "layer_norm_epsilon", Kind.RangedNumber), ("text_encoder/config.json", "feed_forward_proj", Kind.Name),
    ];

    /// <summary>A value of the field that no usable config has (the original stays out of the pick).</summary>
    static JsonNode? Hostile(Kind kind, JsonNode? original, Random rng)
    {
        JsonNode?[] common = [JsonValue.Create("x"), new JsonArray(), new JsonObject(), JsonValue.Create(1e308)];
        JsonNode?[] pick = kind switch
        {
            Kind.Exact => [.. common, JsonValue.Create(0), JsonValue.Create(-1), JsonValue.Create(2147483647), JsonValue.Create(1L << 40),
                           JsonValue.Create(1.5), JsonValue.Create(true), Bump(original)],
            Kind.Ranged => [.. common, JsonValue.Create(0), JsonValue.Create(-1), JsonValue.Create(2147483647), JsonValue.Create(1.5), JsonValue.Create(true)],
            Kind.RangedNumber => [.. common, JsonValue.Create(0), JsonValue.Create(-1.0), JsonValue.Create(1e-45), JsonValue.Create(true), null],
            Kind.Name => [JsonValue.Create("other"), JsonValue.Create(12), null, JsonValue.Create(true), new JsonArray(), JsonValue.Create("")],
            Kind.True => [JsonValue.Create(false), JsonValue.Create(1), JsonValue.Create("true"), new JsonArray()],
            _ => [JsonValue.Create(true), JsonValue.Create(0), JsonValue.Create("false"), new JsonObject()],
        };
        return pick[rng.Next(pick.Length)]?.DeepClone();
    }

    /// <summary>Another value of the same shape: an integer + 1, a number × 2, an array with its last entry changed.</summary>
    static JsonNode? Bump(JsonNode? v) => v switch
    {
        JsonArray a => new JsonArray([.. a.Take(a.Count - 1).Select(x => x!.DeepClone()), JsonValue.Create((int)a[^1]! * 2)]),
        JsonValue n when n.TryGetValue<int>(out var i) => JsonValue.Create(i + 1),
        JsonValue n when n.TryGetValue<double>(out var d) => JsonValue.Create(d * 2),
        _ => JsonValue.Create(7),
    };

    sealed record Case(string What, string File, Action<JsonObject> Edit, bool Valid);

    static List<Case> Cases((string File, string Field, Kind Kind)[] fields, int count, Random rng, string benignFile)
    {
        var cases = new List<Case>
        {
            new("unknown extra field", benignFile, o => o["zz_not_a_field"] = 1, true),
            new("_diffusers_version changed", benignFile, o => o["_diffusers_version"] = "9.9.9", true),
        };
        for (int i = 0; i < count; i++)
        {
            var (file, field, kind) = fields[rng.Next(fields.Length)];
            var src = Path.Combine(CliRunner.Fixture(file.StartsWith("text_encoder") ? "t5_tiny" : "pixart_tiny"), file);
            var original = JsonNode.Parse(File.ReadAllText(src))![field];
            var value = Hostile(kind, original, rng);
            cases.Add(new($"{file} {field} = {value?.ToJsonString() ?? "null"}", file, o => o[field] = value?.DeepClone(), false));
        }
        return cases;
    }

    void RunCases(List<Case> cases, bool t5, Func<string, string, (int, string, string)> run)
    {
        int valid = 0;
        foreach (var c in cases)
        {
            var dir = CliRunner.TempDir();
            var model = Surfaces.PixArtFolder(dir, t5);
            Surfaces.EditJson(Path.Combine(model, c.File), c.Edit);
            var outPath = Path.Combine(dir, t5 ? "e.safetensors" : "x.png");
            (int code, string _, string err) = Surfaces.Within(60, () => run(model, outPath), c.What);
            output.WriteLine($"{c.What} → exit {code} {err.Split('\n').FirstOrDefault(l => l.StartsWith("error:"))}");
            if (c.Valid)
            {
                Assert.True(code == 0, $"{c.What}: a usable input, expected exit 0, found {code}: {err}");
                Assert.True(File.Exists(outPath), $"{c.What}: no output written");
                valid++;
            }
            else
            {
                HostileFiles.AssertOneLineError(code, err, "");
                Assert.False(File.Exists(outPath), $"{c.What}: an output was written for an unusable input");
            }
            Assert.Empty(Directory.GetFiles(dir, ".bd-*"));
        }
        Assert.Equal(2, valid);
    }

    [Fact]
    public void MutatedPixArtConfigs_GiveOneLineErrors_OrValidSamples()
    {
        var rng = new Random(26);
        RunCases(Cases(PixArtFields, 16, rng, "transformer/config.json"), t5: false, (model, png) => Surfaces.SamplePixArt(model, png));
    }

    [Fact]
    public void MutatedT5Configs_GiveOneLineErrors_OrValidFeatures()
    {
        var rng = new Random(27);
        RunCases(Cases(T5Fields, 10, rng, "text_encoder/config.json"), t5: true,
            (model, outPath) => CliRunner.Run("encode", "--model", model, "--prompt", "a fox", "--device", "cpu", "--out", outPath));
    }

    /// <summary>Reads every tensor of a checkpoint: bad input may only surface as an InputException (one line, exit 2).</summary>
    static string? TryLoad(string path)
    {
        try
        {
            using var ck = TorchCheckpoint.Open(path);
            foreach (var n in ck.Names) ck.ReadFloat32(n);
            return null;
        }
        catch (InputException e) { return e.Message; }
    }

    [Fact]
    public void MutatedTorchCheckpoints_AreReadOrRefused_NeverAnotherException()
    {
        var rng = new Random(28);
        var original = File.ReadAllBytes(CliRunner.Fixture(Path.Combine("torch", "tiny_dit.pt")));
        var dir = CliRunner.TempDir();
        int refused = 0;
        for (int i = 0; i < 120; i++)
        {
            var b = (byte[])original.Clone();
            string what;
            switch (i % 3)
            {
                case 0:   // a byte anywhere (zip headers, central directory, pickle, storages)
                    int at = rng.Next(b.Length);
                    b[at] = (byte)rng.Next(256);
                    what = $"byte {at}";
                    break;
                case 1:   // a byte of the central directory or end record (the last ~10 %)
                    int cd = b.Length - 1 - rng.Next(b.Length / 10);
                    b[cd] ^= (byte)(1 << rng.Next(8));
                    what = $"directory bit at {cd}";
                    break;
                default:  // truncated
                    int len = rng.Next(b.Length);
                    b = b[..len];
                    what = $"truncated to {len}";
                    break;
            }
            var path = Path.Combine(dir, "m.pt");
            File.WriteAllBytes(path, b);
            var msg = TryLoad(path);   // any exception other than InputException fails the test here
            if (msg != null)
            {
                refused++;
                Assert.DoesNotContain('\n', msg);
            }
            if (i < 3) output.WriteLine($"{what}: {msg ?? "read"}");
        }
        Assert.InRange(refused, 20, 120);
    }

    [Fact]
    public void MutatedShardFolders_AreMergedOnlyWhenWhole()
    {
        var rng = new Random(29);
        var baseDir = Path.Combine(CliRunner.TempDir(), "set");
        foreach (var s in new[] { "0/2", "1/2" })
            Assert.Equal(0, CliRunner.Run("sample", "--model", HostileFiles.DemoModel, "--device", "cpu", "--steps", "1",
                "--out-dir", baseDir, "--count", "4", "--shard", s).Code);
        string[] kinds = ["none", "drop row", "duplicate row", "index", "total", "seed", "truncate png", "flip png byte", "png bytes appended"];
        for (int i = 0; i < 12; i++)
        {
            var kind = i == 0 ? "none" : kinds[1 + rng.Next(kinds.Length - 1)];
            var dir = Path.Combine(CliRunner.TempDir(), "set");
            Surfaces.Copy(baseDir, dir);
            var m = Path.Combine(dir, $"manifest-{rng.Next(2)}-of-2.csv");
            var lines = File.ReadAllLines(m).ToList();
            int row = 2 + rng.Next(lines.Count - 2);
            var png = Path.Combine(dir, $"00000{rng.Next(4)}.png");
            var bytes = File.ReadAllBytes(png);
            switch (kind)
            {
                case "drop row": lines.RemoveAt(row); break;
                case "duplicate row": lines.Add(lines[row]); break;
                case "index": lines[row] = (rng.Next(2) == 0 ? "4" : "-1") + lines[row][lines[row].IndexOf(',')..]; break;
                case "total": lines[0] = lines[0].Replace("total=4 ", $"total={new[] { "5", "0", "abc", "4e0" }[rng.Next(4)]} "); break;
                case "seed": lines[row] = lines[row].Replace(",0,none,", ",1,none,"); break;
                case "truncate png": File.WriteAllBytes(png, bytes[..rng.Next(bytes.Length - 1)]); break;
                case "flip png byte": bytes[rng.Next(bytes.Length)] ^= (byte)(1 << rng.Next(8)); File.WriteAllBytes(png, bytes); break;
                case "png bytes appended": File.WriteAllBytes(png, [.. bytes, 0]); break;
            }
            File.WriteAllLines(m, lines);
            var npz = Path.Combine(dir, "all.npz");
            var (code, _, err) = Surfaces.Within(60, () => CliRunner.Run("merge", dir, "--npz", npz), kind);
            output.WriteLine($"{kind} → exit {code} {err.Split('\n').FirstOrDefault(l => l.StartsWith("error:"))}");
            if (kind == "none")
            {
                Assert.True(code == 0, err);
                Assert.True(File.Exists(npz));
            }
            else
            {
                HostileFiles.AssertOneLineError(code, err, "");
                Assert.False(File.Exists(npz));
                Assert.False(File.Exists(Path.Combine(dir, "manifest.csv")));
            }
            Assert.Empty(Directory.GetFiles(dir, ".bd-*"));
        }
    }
}
