// Checks shared by the loaders of every model part (PixArt, VAE, T5; the DiT has ModelValidation):
//   RequireFloat   a weight is stored as F32, F16 or BF16; integer and bool tensors (I64, I32, U8, BOOL …) are
//                  refused, never converted (an index table read as weights gives a silently wrong model);
//   RequireFinite  NaN/±Inf in a weight makes every output non-finite (a black image with exit 0): a tensor read
//                  on the host is scanned as it is read, and the first bad one is named with its count;
//   CheckBlocks    the block indices in the file are 0..n−1 without a gap and n equals the config's count, so
//                  that no block of the file is silently ignored and none is silently missing.
using System.Globalization;
using System.Numerics;
using System.Runtime.InteropServices;

namespace BlockDance.Transformer;

public static class WeightChecks
{
    public static void RequireFloat(string origin, string key, string dtype)
    {
        if (!ModelValidation.FloatDTypes.Contains(dtype))
            throw new ModelException($"{origin}: tensor '{key}': expected a float dtype ({string.Join(", ", ModelValidation.FloatDTypes)}) " +
                                     $"for a weight, found {dtype}");
    }

    /// <summary>How many values of `x` are NaN or ±Inf (exponent bits all ones), vectorised.</summary>
    public static long CountNonFinite(ReadOnlySpan<float> x)
    {
        var bits = MemoryMarshal.Cast<float, int>(x);
        long n = 0;
        int i = 0;
        if (Vector.IsHardwareAccelerated && bits.Length >= Vector<int>.Count)
        {
            var mask = new Vector<int>(0x7F800000);
            for (; i <= bits.Length - Vector<int>.Count; i += Vector<int>.Count)
            {
                var v = new Vector<int>(bits[i..]) & mask;
                if (Vector.EqualsAny(v, mask))
                    for (int j = 0; j < Vector<int>.Count; j++) if ((bits[i + j] & 0x7F800000) == 0x7F800000) n++;
            }
        }
        for (; i < bits.Length; i++) if ((bits[i] & 0x7F800000) == 0x7F800000) n++;
        return n;
    }

    public static float[] RequireFinite(string origin, string key, float[] data)
    {
        long bad = CountNonFinite(data);
        if (bad > 0)
            throw new ModelException($"{origin}: weights: expected finite values, found {bad} NaN/Inf in '{key}' ({bad} of {data.LongLength})");
        return data;
    }

    /// <summary>The block indices i of keys `prefix` + i + "." …; an index that is not a plain number is an error.</summary>
    public static SortedSet<int> BlockIndices(string origin, IEnumerable<string> keys, string prefix)
    {
        var found = new SortedSet<int>();
        foreach (var k in keys)
        {
            if (!k.StartsWith(prefix, StringComparison.Ordinal)) continue;
            int dot = k.IndexOf('.', prefix.Length);
            var part = dot < 0 ? k[prefix.Length..] : k[prefix.Length..dot];
            if (!int.TryParse(part, NumberStyles.None, CultureInfo.InvariantCulture, out int i) || i > 100_000)
            {
                if (part.Length > 0 && !char.IsDigit(part[0])) continue;   // another name sharing the prefix (scale_shift_table)
                throw new ModelException($"{origin}: tensor '{k}': expected a block key {prefix}<index>.…, found index '{part}'");
            }
            found.Add(i);
        }
        return found;
    }

    /// <summary>The file's blocks `prefix`0..n−1 must be contiguous and n must equal the config's `field` = `configured`.</summary>
    public static void CheckBlocks(string origin, IEnumerable<string> keys, string prefix, int configured, string field)
    {
        var found = BlockIndices(origin, keys, prefix);
        int n = found.Count == 0 ? 0 : found.Max + 1;
        if (found.Count != n)
        {
            var missing = Enumerable.Range(0, n).Where(i => !found.Contains(i)).Take(8);
            throw new ModelException($"{origin}: blocks {prefix}*: expected contiguous indices 0..{n - 1}, found a gap (missing {string.Join(", ", missing)})");
        }
        if (n != configured)
            throw new ModelException($"{origin}: {field}: the config says {configured} blocks, the file holds {n} ({prefix}0..{n - 1}); " +
                                     "expected the same count (a block would be " + (n > configured ? "ignored)" : "missing)"));
    }
}
