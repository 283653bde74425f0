// blockdance merge DIR [--npz out.npz]: gathers the shards of `sample --out-dir DIR`. Reads every
// manifest-<i>-of-<n>.csv, requires one settings line across them and every index 0..N−1 exactly once
// with its PNG present, writes DIR/manifest.csv (all samples by index) and, with --npz, the uint8
// (N, H, W, 3) batch the ADM FID evaluator reads (grey images repeated to 3 channels; PNGs decoded by SkiaSharp).
using System.Globalization;
using System.Text;
using BlockDance.Sampler.Cli;
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

        string? settings = null;
        var rows = new SortedDictionary<long, string>();
        foreach (var m in manifests)
        {
            var lines = File.ReadAllLines(m);
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
        long total = long.Parse(settings!.Split("total=")[1].Split(' ')[0], CultureInfo.InvariantCulture);
        var missing = Enumerable.Range(0, (int)total).Where(k => !rows.ContainsKey(k)).ToList();
        if (missing.Count > 0)
            throw new UsageException($"merge {dir}: expected all {total} samples, found {rows.Count} (missing {missing.Count}, e.g. index {missing[0]}: a shard has not finished)");
        var files = rows.Values.Select(r => Path.Combine(dir, r.Split(',')[^1])).ToList();
        if (files.FirstOrDefault(f => !File.Exists(f)) is string absent)
            throw new UsageException($"merge {dir}: expected every listed PNG, found {absent} missing");

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
