// T5's relative-position buckets (bidirectional, as in the encoder).
//
// For query i and key j, n = j − i. Half of the buckets serve keys to the right (n > 0, offset
// numBuckets/2), half the rest. Within a half, the first half again (maxExact = numBuckets/4) are exact
// distances 0..maxExact−1; larger distances share log-spaced buckets up to maxDistance, and everything
// beyond falls into the last bucket of its half:
//   bucket(n) = (n > 0 ? half : 0) + (|n| < maxExact ? |n|
//               : min(half − 1, maxExact + trunc(ln(|n|/maxExact) / ln(maxDistance/maxExact) · (half − maxExact))))
// XXL (32 buckets, 128): |n| = 8 → 8, 12 → 9, 16 → 10, 32 → 12, 64 → 14, ≥ 127 → 15 (+16 to the right).
// HF computes the log term in fp32 and truncates toward zero (the .to(long)); so does this.
namespace BlockDance.Transformer.T5;

public static class T5RelativePosition
{
    public static int Bucket(int relative, int numBuckets, int maxDistance)
    {
        int half = numBuckets / 2;
        int bucket = relative > 0 ? half : 0;
        int n = Math.Abs(relative);
        int maxExact = half / 2;
        if (n < maxExact) return bucket + n;
        float log = MathF.Log((float)n / maxExact) / MathF.Log((float)maxDistance / maxExact) * (half - maxExact);
        return bucket + Math.Min(half - 1, maxExact + (int)log);
    }

    /// <summary>Bucket of every offset j − i ∈ [−(t−1), t−1], stored at index j − i + t − 1: (2t − 1).</summary>
    public static int[] Buckets(int t, int numBuckets, int maxDistance)
    {
        var b = new int[2 * t - 1];
        for (int r = -(t - 1); r <= t - 1; r++) b[r + t - 1] = Bucket(r, numBuckets, maxDistance);
        return b;
    }
}
