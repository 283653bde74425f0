// blockdance merge DIR [--npz out.npz]: gathers the shards of `sample --out-dir DIR`. Reads every
// manifest-<i>-of-<n>.csv, requires one settings line across them and every index 0..N−1 exactly once
// with its PNG present, writes DIR/manifest.csv (all samples by index) and, with --npz, the uint8
// (N, H, W, 3) batch the ADM FID evaluator reads (grey images repeated to 3 channels; PNGs decoded by SkiaSharp).
using System.Globalization;
using System.Text;
using BlockDance.Sampler.Cli;
using BlockDance.Transformer.IO;
using SkiaSharp;

namespace BlockDance.Sampler.Commands;

public static class MergeCommand
{
    public static int Run(string[] argv)
    {
        var a = Args.Parse("merge", argv);
        if (a.Positional.Count != 1) throw new UsageException("merge: expected one folder: blockdance merge DIR [--npz out.npz]");
        var dir = a.Positional[0];
        if (!Directory.Exists(dir)) throw new UsageException($"merge {dir}: expected a folder written by sample --out-dir, found none");
        var npz = a.Get("npz");
        if (npz != null)
        {
            if (!npz.EndsWith(".npz", StringComparison.OrdinalIgnoreCase)) throw new UsageException($"--npz {npz}: expected a .npz file name");
            AtomicFile.CheckWritable(npz, "--npz");
        }
        var manifests = Directory.GetFiles(dir, "manifest-*-of-*.csv").Order(StringComparer.Ordinal).ToList();
        if (manifests.Count == 0) throw new UsageException($"merge {dir}: expected shard manifests manifest-<i>-of-<n>.csv, found none");
        CheckShardSet(dir, manifests);

        string? settings = null;
        var rows = new SortedDictionary<long, string>();
        foreach (var m in manifests)
        {
            var lines = InputFile.ReadLines(m, "merge: shard manifest");   // a FIFO is refused, not read
            if (lines.Length < 2 || !lines[0].StartsWith("# blockdance sample:", StringComparison.Ordinal))
                throw new UsageException($"merge: {m}: expected a settings line and a header, found {lines.Length} lines");
            if (settings != null && lines[0] != settings)
                throw new UsageException($"merge: {m}: expected the same settings as the other shards ({settings}), found {lines[0]}");
            settings = lines[0];
            foreach (var line in lines.Skip(2))
            {
                if (line.Length == 0) continue;
                if (!long.TryParse(line.Split(',')[0], NumberStyles.None, CultureInfo.InvariantCulture, out var k))
                    throw new UsageException($"merge: {m}: expected 'index,class,seed,policy,file' rows, found '{line}'");
                if (!rows.TryAdd(k, line)) throw new UsageException($"merge: {m}: sample {k} is listed by two shards");
            }
        }
        int total = Total(settings!, manifests[0]);
        if (rows.Count > 0 && rows.Keys.Last() >= total)
            throw new UsageException($"merge: expected sample indices 0..{total - 1} (total={total}), found index {rows.Keys.Last()}");
        var missing = Enumerable.Range(0, total).Where(k => !rows.ContainsKey(k)).ToList();
        if (missing.Count > 0)
            throw new UsageException($"merge {dir}: expected all {total} samples, found {rows.Count} (missing {missing.Count}, e.g. index {missing[0]}: a shard has not finished)");
        var files = rows.Select(r => SampleFile(dir, settings!, r.Key, r.Value, total)).ToList();
        if (files.FirstOrDefault(f => FileKind.Of(f) == PathKind.Missing) is string absent)
            throw new UsageException($"merge {dir}: expected every listed PNG, found {absent} missing");
        // Every PNG whole and of one size, before anything is written (a truncated file or a JPEG is refused by name).
        var size = PngFile.Check(files[0], "merge:");
        foreach (var f in files.Skip(1))
            if (PngFile.Check(f, "merge:") is var s && s != size)
                throw new UsageException($"merge: {f}: expected a {size.Width}×{size.Height} PNG like {Path.GetFileName(files[0])} (shards drawn with the same settings), " +
                                         $"found {s.Width}×{s.Height}");
        if (npz != null) CheckNotAnInput(npz, dir, files, manifests);

        var sb = new StringBuilder(settings).Append("\nindex,class,seed,policy,file\n");
        foreach (var r in rows.Values) sb.Append(r).Append('\n');
        using (var group = AtomicFile.BeginGroup())
        {
            AtomicFile.Write(Path.Combine(dir, "manifest.csv"), s => s.Write(Encoding.UTF8.GetBytes(sb.ToString())));
            if (npz != null)
            {
                using var first = SKBitmap.Decode(files[0]) ?? throw new UsageException($"merge: {files[0]}: expected a PNG image");
                int w = first.Width, h = first.Height;
                AtomicFile.Write(npz, s => Npz.Write(s, files.Count, h, w, i => Rgb(files[i], w, h)));
            }
            group.Commit();
        }
        Console.WriteLine($"merged {manifests.Count} shard manifest(s): {total} samples → {Path.Combine(dir, "manifest.csv")}" +
                          (npz != null ? $", {npz} (arr_0: {total} images, uint8 N×H×W×3)" : ""));
        return 0;
    }

    /// <summary>The shard manifests must be one split: all "-of-n" with the same n, indices 0..n−1 each once.</summary>
    static void CheckShardSet(string dir, List<string> manifests)
    {
        var parsed = manifests.Select(m =>
        {
            var parts = Path.GetFileNameWithoutExtension(m)["manifest-".Length..].Split("-of-");
            return parts.Length == 2 && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out int i)
                   && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out int n) && i < n
                ? (I: i, N: n) : throw new UsageException($"merge: {m}: expected a name manifest-<i>-of-<n>.csv with i < n");
        }).ToList();
        int count = parsed[0].N;
        if (parsed.FirstOrDefault(p => p.N != count) is { N: > 0 } other)
            throw new UsageException($"merge {dir}: expected the manifests of one split (all -of-{count}), found manifest-{other.I}-of-{other.N}.csv too");
    }

    /// <summary>total=N of the settings line: an integer in 1..MaxSamples (never parsed into a size it cannot hold).</summary>
    static int Total(string settings, string manifest)
    {
        var parts = settings.Split("total=");
        string text = parts.Length > 1 ? parts[1].Split(' ')[0] : "";
        if (!int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int total) || total < 1 || total > SampleSetCommand.MaxSamples)
            throw new UsageException($"merge: {manifest}: settings total: expected an integer in 1..{SampleSetCommand.MaxSamples}, found '{text}'");
        return total;
    }

    /// <summary>The PNG of row `k`: the name sample --out-dir gives it (no other path: a row cannot point outside the folder),
    /// with the seed and policy of the settings line.</summary>
    static string SampleFile(string dir, string settings, long k, string row, int total)
    {
        var cells = row.Split(',');
        int digits = Math.Max(6, (total - 1).ToString(CultureInfo.InvariantCulture).Length);
        string name = SampleSetCommand.Name(k, digits);
        if (cells.Length != 5 || cells[4] != name)
            throw new UsageException($"merge: sample {k}: expected a row '{k},class,seed,policy,{name}', found '{row}'");
        if (!settings.Contains($" seed={cells[2]} ", StringComparison.Ordinal) || !settings.EndsWith($" policy={cells[3]}", StringComparison.Ordinal))
            throw new UsageException($"merge: sample {k}: expected the seed and policy of the settings line ({settings}), found '{row}'");
        return Path.Combine(dir, name);
    }

    /// <summary>--npz must not replace one of the files merge reads (through a symbolic link or not).</summary>
    static void CheckNotAnInput(string npz, string dir, List<string> files, List<string> manifests)
    {
        var target = AtomicFile.Target(npz);
        foreach (var input in files.Concat(manifests).Append(Path.Combine(dir, "manifest.csv")))
            if (AtomicFile.Target(input) == target)
                throw new UsageException($"--npz {npz}: expected a file that is not one of merge's inputs, found {input} (the same file {target})");
    }

    /// <summary>A PNG as H×W×3 bytes (grey repeated to RGB).</summary>
    static byte[] Rgb(string path, int w, int h)
    {
        using var bmp = SKBitmap.Decode(path, new SKImageInfo(w, h, SKColorType.Rgba8888, SKAlphaType.Unpremul));
        if (bmp == null || bmp.Width != w || bmp.Height != h)
            throw new UsageException($"merge: {path}: expected a {w}×{h} PNG like the first sample, found {(bmp == null ? "no image" : $"{bmp.Width}×{bmp.Height}")}");
        var rgba = bmp.Bytes;
        var rgb = new byte[w * h * 3];
        for (int i = 0; i < w * h; i++) { rgb[3 * i] = rgba[4 * i]; rgb[3 * i + 1] = rgba[4 * i + 1]; rgb[3 * i + 2] = rgba[4 * i + 2]; }
        return rgb;
    }
}
