// Weights of a Hugging Face text_encoder/ folder: one model.safetensors, or shards listed by
// model.safetensors.index.json = {"metadata": {"total_size": bytes}, "weight_map": {tensor: shard file}}.
// A variant (diffusers' name for alternative weights, e.g. "fp16") reads model.safetensors.index.<variant>.json
// or model.<variant>.safetensors instead (PixArt-XL-2-512x512 ships an fp16 variant beside its fp32 shards).
// Every shard the map names must exist and hold the tensors mapped to it; they are opened (and their
// headers validated) before any tensor is read. Tensors are read as stored (F32, BF16 or F16) and
// widened to fp32 by SafeTensorsFile.ReadFloat32 — the kernels take fp32 operands.
using System.Text.Json;
using BlockDance.Kernels;
using BlockDance.Transformer.IO;

namespace BlockDance.Transformer.T5;

public sealed class ShardedSafeTensors : IWeightSource, IDisposable
{
    public const string IndexName = "model.safetensors.index.json";
    public const string SingleName = "model.safetensors";

    readonly Dictionary<string, SafeTensorsFile> fileOf = new(StringComparer.Ordinal);
    readonly List<SafeTensorsFile> shards = new();

    public string Origin { get; }
    public IReadOnlyDictionary<string, string> Metadata { get; } = new Dictionary<string, string>();
    public IEnumerable<string> Keys => fileOf.Keys;
    public IReadOnlyList<SafeTensorsFile> Shards => shards;
    /// <summary>Bytes of tensor data over all shards (what reading everything costs).</summary>
    public long DataBytes => shards.Sum(s => s.Tensors.Sum(t => t.ByteLength));
    /// <summary>The dtypes stored, e.g. "BF16" or "F32, F16".</summary>
    public string DTypes => string.Join(", ", shards.SelectMany(s => s.Tensors.Select(t => t.DType)).Distinct().Order());

    ShardedSafeTensors(string origin) => Origin = origin;

    public static ShardedSafeTensors Open(string folder, string? variant = null)
    {
        string index = Path.Combine(folder, variant is null ? IndexName : $"model.safetensors.index.{variant}.json");
        string single = Path.Combine(folder, variant is null ? SingleName : $"model.{variant}.safetensors");
        var src = new ShardedSafeTensors(folder);
        try
        {
            if (File.Exists(index)) src.OpenIndexed(folder, index);
            else if (File.Exists(single)) src.Add(OpenShard(single), null);
            else
            {
                var others = Directory.Exists(folder)
                    ? Directory.GetFiles(folder, "model*.safetensors*").Select(Path.GetFileName).Order().Take(4).ToList() : [];
                throw new InvalidValueException($"T5 weights in {folder}", $"{Path.GetFileName(index)} (sharded) or {Path.GetFileName(single)}",
                    others.Count == 0 ? "neither file" : $"only {string.Join(", ", others)} (another weight variant?)");
            }
            return src;
        }
        catch
        {
            src.Dispose();
            throw;
        }
    }

    void OpenIndexed(string folder, string index)
    {
        JsonElement map;
        FileKind.RequireRegular(index, "T5 weight index");
        try
        {
            var root = JsonDocument.Parse(InputFile.ReadText(index, "T5 weight index")).RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("weight_map", out map) || map.ValueKind != JsonValueKind.Object)
                throw new InvalidValueException(index, "a JSON object with a \"weight_map\" object", "none");
        }
        catch (JsonException e) { throw new InvalidValueException(index, "valid JSON", $"a parse error ({e.Message})"); }

        var byShard = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        foreach (var entry in map.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw new InvalidValueException($"{index} weight_map[\"{entry.Name}\"]", "a shard file name", entry.Value.GetRawText());
            string shard = entry.Value.GetString()!;
            if (shard.Length == 0 || Path.GetFileName(shard) != shard)
                throw new InvalidValueException($"{index} weight_map[\"{entry.Name}\"]", "a file name inside the folder", $"\"{shard}\"");
            if (!byShard.TryGetValue(shard, out var names)) byShard[shard] = names = new();
            names.Add(entry.Name);
        }
        if (byShard.Count == 0) throw new InvalidValueException(index, "a weight_map naming at least one tensor", "an empty map");
        foreach (var (shard, names) in byShard.OrderBy(kv => kv.Key, StringComparer.Ordinal))
        {
            string path = Path.Combine(folder, shard);
            if (!File.Exists(path))
                throw new InvalidValueException($"{index}", $"shard {shard} (it holds {names.Count} tensors, e.g. '{names[0]}') in {folder}",
                    "no such file (incomplete download?)");
            Add(OpenShard(path), names);
        }
    }

    static SafeTensorsFile OpenShard(string path)
    {
        FileKind.RequireRegular(path, "T5 weight shard");   // a FIFO or device would block or never end
        return SafeTensorsFile.Open(path);
    }

    void Add(SafeTensorsFile file, List<string>? names)
    {
        shards.Add(file);
        foreach (var name in names ?? file.Tensors.Select(t => t.Name).ToList())
        {
            if (!file.Contains(name))
                throw new InvalidValueException($"{file.Path}", $"tensor '{name}' (the index maps it to this shard)", "no such tensor");
            fileOf[name] = file;
        }
    }

    public bool Has(string key) => fileOf.ContainsKey(key);

    public long[] ShapeOf(string key) => FileOf(key).Get(key).Shape;

    public string DTypeOf(string key) => FileOf(key).Get(key).DType;

    /// <summary>Reads a weight as fp32; only float dtypes are weights (an I32/I64 tensor is refused, not converted).</summary>
    public float[] Read(string key, params long[] expectedShape)
    {
        var file = FileOf(key);
        string dtype = file.Get(key).DType;
        if (dtype is not ("F32" or "BF16" or "F16"))
            throw new InvalidValueException($"{file.Path}: tensor '{key}' dtype", "F32, BF16 or F16 (a weight)", dtype);
        return file.ReadFloat32(key, expectedShape);
    }

    SafeTensorsFile FileOf(string key) => fileOf.TryGetValue(key, out var f) ? f
        : throw new ModelException($"{Origin}: no tensor '{key}' in the T5 weights (expected HF T5EncoderModel key names; found {fileOf.Count} tensors)");

    public void Dispose()
    {
        foreach (var s in shards) s.Dispose();
        shards.Clear();
    }
}
