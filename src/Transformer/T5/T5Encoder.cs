// The T5 v1.1 encoder (HF T5EncoderModel → last_hidden_state), on the project's kernels:
//   h = shared.weight[ids]                       no √d_model scaling, no absolute positions    (B·L, D)
//   for each block: h = T5Block(h)               position bias from block 0, keys masked
//   out = RMSNorm(h; encoder.final_layer_norm)                                                  (B, L, D)
// Padded positions still get hidden states (they attend to the real keys); their values do not change
// those of the real positions. PixArt ignores them through the mask it is given along with them.
//
// Precision: fp32 throughout. Weights are read as the file stores them (F32, BF16 or F16) and widened to
// fp32 on load. T5 v1.1 must not run with fp16 activations: the feed-forward output (wo) exceeds fp16's
// 65504 and turns into inf/NaN (why HF keeps wo in fp32 and clamps hidden states in fp16). bf16 weights
// in fp32 arithmetic are exact, so a bf16 checkpoint gives the same features as PyTorch running bf16
// weights upcast to fp32.
//
// Memory (fp32 on the device): XXL has 4.76 B parameters; the embedding table (32128 × 4096, 0.53 GB) stays on the
// host (only B·L rows are gathered), the blocks need 4.63 B × 4 B = 18.5 GB on the device. Load it, encode,
// Dispose it (logged) before the transformer loads — the features are a separate tensor that survives.
using System.Diagnostics;
using BlockDance.Kernels;
using ILGPU;
using ILGPU.Runtime;
using BlockDance.Transformer.Tokenizers;

namespace BlockDance.Transformer.T5;

/// <summary>Encoder output: features (B, L, D) and the attention mask (B, L) as 1/0 floats, owned by the caller.</summary>
public sealed record T5Output(Tensor Embeddings, Tensor Mask) : IDisposable
{
    public void Dispose() { Embeddings.Dispose(); Mask.Dispose(); }
}

public sealed class T5Encoder : IDisposable
{
    public const string FolderName = "text_encoder";

    public T5Config Config { get; }
    public ComputeDevice Device { get; }
    public string Origin { get; }
    /// <summary>Device bytes held by the weights (freed by Dispose).</summary>
    public long DeviceBytes { get; }
    readonly float[] embedding;       // (V, D) host; rows gathered per call
    readonly T5Block[] blocks;
    readonly Tensor finalNorm;        // (D)  encoder.final_layer_norm.weight
    readonly T5SharedTensors shared;
    bool disposed;

    /// <summary>Loads text_encoder/ (config.json + sharded or single safetensors), or the one inside a PixArt folder.</summary>
    /// <param name="memoryBudget">bytes the device may hold in all (a command passes its memory plan's budget);
    /// null: all of the device's memory</param>
    public static T5Encoder Load(ComputeDevice dev, string folder, string? variant = null, long? memoryBudget = null)
    {
        string dir = ResolveFolder(folder);
        var cfg = T5Config.FromJson(Path.Combine(dir, "config.json"));
        using var src = ShardedSafeTensors.Open(dir, variant);
        Log.Info($"T5 weights: {src.Shards.Count} shard(s), {src.DataBytes / 1e9:F2} GB stored as {src.DTypes}, computed in fp32");
        return new T5Encoder(dev, src, cfg, memoryBudget);
    }

    /// <summary>Reads config.json and opens every shard's header (no weights): the checks a command runs before the device starts.</summary>
    public static T5Config Probe(string folder, string? variant = null)
    {
        string dir = ResolveFolder(folder);
        var cfg = T5Config.FromJson(Path.Combine(dir, "config.json"));
        using var src = ShardedSafeTensors.Open(dir, variant);
        return cfg;
    }

    public static string ResolveFolder(string folder)
    {
        if (File.Exists(Path.Combine(folder, "config.json")) && !Directory.Exists(Path.Combine(folder, FolderName))) return folder;
        string sub = Path.Combine(folder, FolderName);
        if (File.Exists(Path.Combine(sub, "config.json"))) return sub;
        throw new InvalidValueException("T5 text encoder", $"a folder with config.json (text_encoder/ or a PixArt folder containing it) at {folder}",
            Directory.Exists(folder) ? "no config.json there" : "no such folder");
    }

    public T5Encoder(ComputeDevice dev, IWeightSource src, T5Config cfg, long? memoryBudget = null)
    {
        Config = cfg;
        Device = dev;
        Origin = src.Origin;
        CheckMemory(dev, cfg, memoryBudget);
        WeightChecks.CheckBlocks(src.Origin, src.Keys, "encoder.block.", cfg.Layers, "num_layers");   // none ignored, none missing
        var sw = Stopwatch.StartNew();
        long before = dev.AllocatedBytes;
        string embKey = src.Has("shared.weight") ? "shared.weight" : "encoder.embed_tokens.weight";
        embedding = src.Read(embKey, cfg.Vocab, cfg.DModel);
        long badEmbedding = NonFinite.CountReference(embedding);   // host-side: the table never goes to the device
        if (badEmbedding > 0)
            throw new ModelException($"{src.Origin}: weights: expected finite values, found {badEmbedding} NaN/Inf in '{embKey}'");
        var blockList = new List<T5Block>();
        var checkedSrc = new FiniteWeightCheck(dev, src);   // NaN/Inf counted on the device as weights upload
        try
        {
            string biasKey = "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight";
            var bias = Tensor.FromHost(dev, biasKey, checkedSrc.Read(biasKey, cfg.NumBuckets, cfg.Heads), cfg.NumBuckets, cfg.Heads);
            int zerosLen = Math.Max(3 * cfg.Inner, Math.Max(cfg.DFf, cfg.DModel));
            var ones = new float[cfg.DModel];
            Array.Fill(ones, 1f);
            shared = new T5SharedTensors(bias, Tensor.FromHost(dev, "t5.zeros", new float[zerosLen], zerosLen),
                Tensor.FromHost(dev, "t5.ones", ones, cfg.DModel));
            for (int i = 0; i < cfg.Layers; i++) blockList.Add(new T5Block(dev, checkedSrc, cfg, i));
            finalNorm = Tensor.FromHost(dev, "encoder.final_layer_norm.weight", checkedSrc.Read("encoder.final_layer_norm.weight", cfg.DModel), cfg.DModel);
            checkedSrc.ThrowIfNonFinite();
        }
        catch
        {
            foreach (var b in blockList) b.Dispose();
            shared?.Dispose();
            finalNorm?.Dispose();
            throw;
        }
        finally { checkedSrc.Dispose(); }                     // its scratch buffer is not part of the encoder
        blocks = blockList.ToArray();
        DeviceBytes = dev.AllocatedBytes - before;
        Log.Info($"T5 encoder loaded in {sw.Elapsed.TotalSeconds:F1} s: {cfg.Parameters:N0} parameters, " +
                 $"{DeviceBytes / 1048576.0:F1} MiB on the device + {embedding.LongLength * 4 / 1048576.0:F1} MiB embedding table on the host");
    }

    /// <summary>Refuses (before reading any weight) an encoder whose fp32 weights cannot fit the device: the weights
    /// plus the NaN check's scratch buffer (the largest block tensor) must fit what the budget leaves free.</summary>
    static void CheckMemory(ComputeDevice dev, T5Config cfg, long? budget)
    {
        long largest = Math.Max((long)cfg.DFf * cfg.DModel, 3L * cfg.Inner * cfg.DModel);
        long need = (cfg.DeviceParameters + largest) * 4;
        long free = (budget ?? dev.MemoryBytes) - dev.AllocatedBytes;
        if (need > free)
            throw new InvalidValueException("T5 encoder memory", $"{need / 1073741824.0:F1} GiB of device memory for its fp32 weights ({cfg.DeviceParameters / 1e9:F2} B parameters)",
                $"{free / 1073741824.0:F1} GiB free on {dev.Name}" + (budget is null ? "" : $" within the memory budget of {budget / 1073741824.0:F1} GiB"));
    }

    /// <summary>Encodes tokenized prompts (all of one length) → features (B, L, D) + mask (B, L).</summary>
    public T5Output Encode(IReadOnlyList<T5Tokens> prompts)
    {
        if (prompts.Count == 0) throw new InvalidValueException("T5 encode", "at least one prompt", "none");
        int length = prompts[0].Ids.Length;
        var ids = new int[prompts.Count * length];
        var mask = new int[ids.Length];
        for (int b = 0; b < prompts.Count; b++)
        {
            if (prompts[b].Ids.Length != length)
                throw new InvalidValueException("T5 encode", $"prompts padded to one length ({length})", $"prompt {b} with {prompts[b].Ids.Length}");
            prompts[b].Ids.CopyTo(ids, b * length);
            prompts[b].Mask.CopyTo(mask, b * length);
        }
        return Encode(ids, mask, prompts.Count, length);
    }

    /// <summary>ids, mask (batch·length, row-major) → features (B, L, D) + mask (B, L) as device tensors.</summary>
    public T5Output Encode(int[] ids, int[] mask, int batch, int length)
    {
        ObjectDisposedException.ThrowIf(disposed, this);
        int d = Config.DModel;
        if (batch < 1 || length < 1 || ids.Length != batch * length || mask.Length != ids.Length)
            throw new InvalidValueException("T5 encode", $"ids and mask of {batch}×{length} elements", $"{ids.Length} ids and {mask.Length} mask values");
        var x = new float[(long)ids.Length * d];     // (B·L, D) gathered embedding rows
        var maskF = new float[ids.Length];
        for (int r = 0; r < ids.Length; r++)
        {
            if ((uint)ids[r] >= (uint)Config.Vocab)
                throw new InvalidValueException($"T5 token id at row {r / length}, position {r % length}", $"0..{Config.Vocab - 1}", ids[r].ToString());
            if (mask[r] is not (0 or 1))
                throw new InvalidValueException($"T5 attention mask at row {r / length}, position {r % length}", "0 or 1", mask[r].ToString());
            Array.Copy(embedding, (long)ids[r] * d, x, (long)r * d, d);
            maskF[r] = mask[r];
        }
        for (int b = 0; b < batch; b++)
            if (Array.IndexOf(mask, 1, b * length, length) < 0)
                throw new InvalidValueException($"T5 attention mask of prompt {b}", "at least one real token (the EOS)", "all zeros");

        using var w = new T5Workspace(Device, Config, batch, length, maskF);
        w.H.CopyFromHost(x);
        foreach (var block in blocks) block.Forward(w, shared);                                    // h (B·L, D)
        var output = Tensor.Allocate(Device, "t5.last_hidden_state", batch, length, d);
        RmsNorm.Run(Device, w.H.View, finalNorm.View, output.View, batch * length, d, Config.Eps); // (B, L, D)
        RequireFinite(output);
        var maskOut = Tensor.FromHost(Device, "t5.attention_mask", maskF, batch, length);
        return new T5Output(output, maskOut);
    }

    /// <summary>The features must be finite: weights that overflow fp32 in a GEMM give Inf/NaN features that would be
    /// written out (encode) or sampled with (a NaN image). One count on the device, one read-back.</summary>
    void RequireFinite(Tensor features)
    {
        using var counts = Device.Accelerator.Allocate1D<int>(1);
        counts.MemSetToZero();
        NonFinite.Count(Device, features.View, counts.View, 0);
        int bad = counts.GetAsArray1D()[0];
        if (bad > 0)
        {
            features.Dispose();
            throw new ModelException($"{Origin}: T5 features: expected finite values, found {bad} NaN/Inf of {features.Length} " +
                                     "(weights too large for fp32 or non-finite)");
        }
    }

    public long Flops(int batch, int length) => blocks.Sum(b => b.Flops((long)batch * length, length, batch));

    public void Dispose()
    {
        if (disposed) return;
        disposed = true;
        foreach (var b in blocks) b.Dispose();
        finalNorm.Dispose();
        shared.Dispose();
        Log.Info($"T5 encoder freed: {DeviceBytes / 1048576.0:F1} MiB of device memory released");
    }
}
