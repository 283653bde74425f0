// A PyTorch checkpoint as torch.save writes it since 1.6 (the "zip" format; the released DiT checkpoints
// are in it): a zip archive, entries stored uncompressed, holding `<name>/data.pkl` (the pickled object)
// and `<name>/data/<key>` (one raw little-endian storage per key). data.pkl is read by PickleReader, which
// runs nothing and refuses any import outside a state dict's. What the file holds:
//   a state dict (OrderedDict name → tensor)                         → those tensors
//   train.py's {"model", "ema", "opt", "args"}                       → "ema" (the weights the DiT authors
//     sample with), else "model"; "opt" and "args" are skipped (args is an argparse.Namespace, never built)
//   {"state_dict": …} / {"module": …} (other trainers)               → that dict
// The older format (pickles back to back, before PyTorch 1.6) is refused with a hint: re-save it or convert.
// Layout facts: torch/serialization.py (_save, _load) and torch/_utils.py (_rebuild_tensor_v2).
using System.IO.Compression;
using System.Runtime.InteropServices;
using BlockDance.Kernels;

namespace BlockDance.Transformer.IO;

/// <summary>A bad, hostile or unreadable .pt file: one line naming the file, what was expected and what was found.</summary>
public sealed class TorchCheckpointException(string message) : InputException(SafeTensorsException.OneLine(message));

public sealed class TorchCheckpoint : IDisposable
{
    readonly ZipArchive _zip;
    readonly string _prefix;                       // "<name>/" before data.pkl and data/
    readonly Dictionary<string, TorchTensorRef> _tensors;

    public string Path { get; }
    /// <summary>Which entry of the file the weights came from ("ema", "model", …), or null for a bare state dict.</summary>
    public string? Entry { get; }
    public IReadOnlyList<string> Names { get; }

    /// <summary>True when the file starts like a zip archive (a torch.save checkpoint) rather than safetensors.</summary>
    public static bool LooksLikeTorch(string path)
    {
        Span<byte> head = stackalloc byte[2];
        FileKind.RequireRegular(path, "model file");   // a FIFO would block the open, /dev/zero never ends
        using var f = File.OpenRead(path);
        if (f.Read(head) < 2) return false;
        return (head[0] == (byte)'P' && head[1] == (byte)'K') || (head[0] == 0x80 && head[1] <= 5);
    }

    TorchCheckpoint(string path, ZipArchive zip, string prefix, string? entry, Dictionary<string, TorchTensorRef> tensors, List<string> names)
    {
        Path = path; _zip = zip; _prefix = prefix; Entry = entry; _tensors = tensors; Names = names;
    }

    public static TorchCheckpoint Open(string path)
    {
        Stream stream;
        FileKind.RequireRegular(path, "PyTorch checkpoint");
        try { stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read | FileShare.Delete); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new TorchCheckpointException($"{path}: cannot open the file: {e.Message}");
        }
        ZipArchive zip;
        try
        {
            var head = new byte[2];
            int got = stream.Read(head);
            stream.Position = 0;
            if (got == 2 && head[0] == 0x80)
                throw new TorchCheckpointException($"{path}: a PyTorch checkpoint in the legacy format (before PyTorch 1.6): expected the zip format; " +
                                                   "re-save it with torch.save in PyTorch ≥ 1.6, or convert it with tools/convert/convert_dit.py");
            zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: false);
        }
        catch (Exception e) when (IsDamagedZip(e))
        {
            stream.Dispose();
            throw Damaged(path, e);
        }
        catch { stream.Dispose(); throw; }
        try { return Parse(path, zip); }
        catch (Exception e) when (IsDamagedZip(e)) { zip.Dispose(); throw Damaged(path, e); }
        catch { zip.Dispose(); throw; }
    }

    /// <summary>What System.IO.Compression throws on a garbled archive (a central directory with impossible offsets,
    /// counts or sizes, an unsupported method): bad input, not an engine fault.</summary>
    static bool IsDamagedZip(Exception e) =>
        e is InvalidDataException or NotSupportedException or ArgumentException or OverflowException or EndOfStreamException or IOException;

    static TorchCheckpointException Damaged(string path, Exception e) =>
        new($"{path}: expected a PyTorch zip checkpoint, found a damaged or truncated zip ({e.GetType().Name}: {e.Message})");

    static TorchCheckpoint Parse(string path, ZipArchive zip)
    {
        if (zip.Entries.FirstOrDefault(e => e.IsEncrypted) is { } enc)
            throw new TorchCheckpointException($"{path}: zip entry '{enc.FullName}' is encrypted: expected a plain torch.save archive");
        var pkl = zip.Entries.Where(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal)
                                         && e.FullName.Count(c => c == '/') == 1).ToList();
        if (pkl.Count != 1)
            throw new TorchCheckpointException($"{path}: expected one <name>/data.pkl in the archive (torch.save zip format), found {pkl.Count}");
        string prefix = pkl[0].FullName[..^"data.pkl".Length];
        const long MaxPickle = 256L << 20;         // the object graph, not the weights: a real state dict's is ~100 KB
        if (pkl[0].Length > MaxPickle)
            throw new TorchCheckpointException($"{path}: data.pkl is {pkl[0].Length} bytes, expected at most {MaxPickle}");
        if (zip.GetEntry(prefix + "byteorder") is { } order && System.Text.Encoding.ASCII.GetString(ReadAll(path, order)).Trim() != "little")
            throw new TorchCheckpointException($"{path}: storages in big-endian byte order: expected little-endian (re-save on a little-endian machine)");
        byte[] data = ReadAll(path, pkl[0]);
        object? root = PickleReader.Load(data, $"{path}: data.pkl");

        (PickleDict sd, string? entry) = SelectStateDict(path, root);
        var tensors = new Dictionary<string, TorchTensorRef>(StringComparer.Ordinal);
        var names = new List<string>();
        foreach (var (k, v) in sd.Items)
        {
            if (k is not string name)
                throw new TorchCheckpointException($"{path}: state dict key {k ?? "None"}: expected a string");
            if (v is not TorchTensorRef t)
                throw new TorchCheckpointException($"{path}: state dict entry '{name}': expected a tensor, found {v?.GetType().Name ?? "None"}");
            if (tensors.ContainsKey(name)) throw new TorchCheckpointException($"{path}: state dict key '{name}' appears twice");
            CheckStorage(path, zip, prefix, name, t);
            tensors[name] = t;
            names.Add(name);
        }
        if (entry != null) Log.Info($"{path}: loading the '{entry}' weights ({names.Count} tensors); other entries skipped: " +
                                    string.Join(", ", ((PickleDict)root!).Items.Select(kv => kv.Key).OfType<string>().Where(s => s != entry)));
        return new TorchCheckpoint(path, zip, prefix, entry, tensors, names);
    }

    /// <summary>The state dict inside `root`: the root itself, or the ema/model/state_dict entry of a training checkpoint.</summary>
    static (PickleDict, string?) SelectStateDict(string path, object? root)
    {
        if (root is not PickleDict d)
            throw new TorchCheckpointException($"{path}: expected a state dict (a dict of tensors), found {root?.GetType().Name ?? "None"}");
        foreach (var entry in new[] { "ema", "model", "state_dict", "module" })
            if (d.Get(entry) is PickleDict inner && !d.Items.All(kv => kv.Value is TorchTensorRef)) return (inner, entry);
        return (d, null);
    }

    /// <summary>Every size a tensor declares is checked against the archive without arithmetic that can overflow: the
    /// storage's element count against its entry's byte length (a division, so 2^61 or 2^62 elements cannot wrap a
    /// product), the view's element count with checked products, and offset + count against the storage as
    /// `count ≤ numel − offset` (an offset near 2^63 cannot wrap around to a small one).</summary>
    static void CheckStorage(string path, ZipArchive zip, string prefix, string name, TorchTensorRef t)
    {
        string where = $"{path}: tensor '{name}'";
        var st = t.Storage;
        var entry = zip.GetEntry(prefix + "data/" + st.Key)
                    ?? throw new TorchCheckpointException($"{where}: storage '{st.Key}' missing from the archive (expected {prefix}data/{st.Key})");
        if (st.Numel < 0 || st.Numel > entry.Length / st.ElementBytes)
        {
            string need = st.Numel >= 0 && st.Numel <= long.MaxValue / st.ElementBytes ? $"{st.Numel * st.ElementBytes}" : "more than 2^63";
            throw new TorchCheckpointException($"{where}: storage '{st.Key}' holds {entry.Length} bytes, expected {need} = {st.Numel} × {st.ElementBytes}");
        }
        if (t.Stride.Length != t.Shape.Length)
            throw new TorchCheckpointException($"{where}: {t.Stride.Length} strides for {t.Shape.Length} dimensions");
        long numel = 1;
        foreach (var s in t.Shape)
        {
            if (s < 0) throw new TorchCheckpointException($"{where}: negative size in shape [{string.Join(", ", t.Shape)}]");
            if (s > 0 && numel > long.MaxValue / s)
                throw new TorchCheckpointException($"{where}: shape [{string.Join(", ", t.Shape)}]: expected an element count within 2^63, found an overflow");
            numel *= s;
        }
        if (t.Offset < 0 || t.Offset > st.Numel || numel > st.Numel - t.Offset)
            throw new TorchCheckpointException($"{where}: elements from offset {t.Offset}, {numel} of them: expected them inside its storage of {st.Numel}");
    }

    public bool Contains(string name) => _tensors.ContainsKey(name);
    public TorchTensorRef Get(string name) => _tensors[name];

    /// <summary>The tensor as float32 (F32, F16 and BF16 storages); its view must be contiguous and inside its storage.</summary>
    public float[] ReadFloat32(string name)
    {
        var t = _tensors[name];
        string where = $"{Path}: tensor '{name}'";
        long numel = t.Shape.Aggregate(1L, (a, b) => a * b);   // checked at Open (CheckStorage): no overflow, inside the storage
        if (numel * t.Storage.ElementBytes > Array.MaxLength) throw new TorchCheckpointException($"{where}: {numel} elements, expected at most {Array.MaxLength}");
        if (t.Stride.Length != t.Shape.Length)
            throw new TorchCheckpointException($"{where}: {t.Stride.Length} strides for {t.Shape.Length} dimensions");
        long expect = 1;
        for (int i = t.Shape.Length - 1; i >= 0; i--)
        {
            if (t.Shape[i] > 1 && t.Stride[i] != expect)
                throw new TorchCheckpointException($"{where}: a non-contiguous view (strides [{string.Join(", ", t.Stride)}]): expected a contiguous tensor; save tensor.contiguous()");
            expect *= t.Shape[i];
        }
        var st = t.Storage;
        if (st.DType is not ("F32" or "F16" or "BF16"))
            throw new TorchCheckpointException($"{where}: storage dtype {st.DType}: expected float32, float16 or bfloat16 weights");
        var entry = _zip.GetEntry(_prefix + "data/" + st.Key)!;   // present and large enough: CheckStorage at Open

        var bytes = new byte[numel * st.ElementBytes];
        try
        {
            using var s = entry.Open();
            Skip(s, t.Offset * st.ElementBytes);
            s.ReadExactly(bytes);
        }
        catch (Exception e) when (IsDamagedZip(e))
        {
            throw new TorchCheckpointException($"{where}: storage '{st.Key}' cannot be read ({e.Message})");
        }
        var result = new float[numel];
        switch (st.DType)
        {
            case "F32": MemoryMarshal.Cast<byte, float>(bytes).CopyTo(result); break;
            case "F16":
                var h = MemoryMarshal.Cast<byte, Half>(bytes);
                for (int i = 0; i < result.Length; i++) result[i] = (float)h[i];
                break;
            default:
                var b = MemoryMarshal.Cast<byte, ushort>(bytes);
                for (int i = 0; i < result.Length; i++) result[i] = Bf16.ToFloat(b[i]);
                break;
        }
        return result;
    }

    static void Skip(Stream s, long n)
    {
        if (n == 0) return;
        if (s.CanSeek) { s.Seek(n, SeekOrigin.Current); return; }
        var buf = new byte[Math.Min(n, 1 << 20)];
        while (n > 0)
        {
            int got = s.Read(buf, 0, (int)Math.Min(n, buf.Length));
            if (got == 0) throw new EndOfStreamException("storage ends before the tensor's offset");
            n -= got;
        }
    }

    static byte[] ReadAll(string path, ZipArchiveEntry e)
    {
        try
        {
            using var s = e.Open();
            var data = new byte[e.Length];
            s.ReadExactly(data);
            return data;
        }
        catch (Exception x) when (IsDamagedZip(x))
        {
            throw new TorchCheckpointException($"{path}: {e.FullName} cannot be read ({x.Message})");
        }
    }

    public void Dispose() => _zip.Dispose();
}
