// Harness entry for RelativeBiasAttention (T5's encoder attention): seeded qkv, a random bias table over 32
// buckets and a key mask with padding; validated against the reference.
// Shapes: "small" fits the CPU accelerator; "xl" is T5-XXL on PixArt's prompt batch (2 × 120 tokens,
// 64 heads of 64).
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels.Harness;

public sealed class RelativeBiasAttentionOp : IKernelOp
{
    const int Buckets = 32;

    public string Name => "relative_bias_attention";
    public IReadOnlyList<string> Versions { get; } = ["v1", "host"];

    public IReadOnlyList<KernelShape> Shapes(string set) => set switch
    {
        "small" => [Shape(2, 16, 4, 8), Shape(1, 20, 2, 6)],
        "xl" => [Shape(2, 120, 64, 64)],
        _ => throw new InvalidValueException("shapes", "small or xl", set),
    };

    static KernelShape Shape(int n, int t, int heads, int hd) => new($"n{n}_t{t}_h{heads}_d{hd}",
        RelativeBiasAttention.Flops(n, t, heads, hd), 4.0 * (4L * n * t * heads * hd + n * t + 2 * t + Buckets * heads));

    /// <summary>Run dispatches by device: v1 (the ILGPU kernel) on the simulator and CUDA, host on the host backend.</summary>
    public bool Supports(ComputeDevice dev, string version) => Versions.Contains(version) && (version == "host") == dev.IsHost;

    static float[] Scaled(float[] a, float scale)
    {
        for (int i = 0; i < a.Length; i++) a[i] *= scale;
        return a;
    }

    public KernelTrial Prepare(ComputeDevice dev, string version, KernelShape shape)
    {
        if (!Versions.Contains(version)) throw new InvalidValueException("version", string.Join("|", Versions), version);
        var p = shape.Label.Split('_').Select(s => int.Parse(s[1..])).ToArray();
        int n = p[0], t = p[1], heads = p[2], hd = p[3], d = heads * hd;
        var qkv = Scaled(AttentionOp.Seeded(1, 3L * n * t * d), 1f);
        var table = Scaled(AttentionOp.Seeded(2, Buckets * heads), 2f);
        var bucket = BucketTable(t);
        var mask = new float[n * t];
        for (int b = 0; b < n; b++)
            for (int j = 0; j < t; j++) mask[b * t + j] = j < t - 3 * b ? 1f : 0f; // row b has 3b padded keys
        var tq = Tensor.FromHost(dev, "qkv", qkv, n * t, 3 * d);
        var tt = Tensor.FromHost(dev, "table", table, Buckets, heads);
        var tm = Tensor.FromHost(dev, "mask", mask, n, t);
        var tb = dev.Accelerator.Allocate1D<int>(bucket.Length);
        tb.View.CopyFromCPU(bucket);
        var to = Tensor.Allocate(dev, "out", n * t, d);
        void Launch() => RelativeBiasAttention.Run(dev, tq.View, tt.View, tb.View, tm.View, to.View, n, t, heads, hd, 1f, Buckets);
        Launch();
        var expected = new float[n * t * d];
        RelativeBiasAttention.Reference(qkv, table, bucket, mask, expected, n, t, heads, hd, 1f);
        var got = to.ToHost();
        double maxErr = 0;
        var mismatches = new List<string>();
        for (int i = 0; i < got.Length; i++) AttentionOp.Compare(expected[i], got[i], i, 1e-5, 1e-5, ref maxErr, mismatches);
        var validation = new Validation(mismatches.Count == 0, maxErr, 1e-5, 1e-5, mismatches);
        return new KernelTrial(validation, Launch, () => { tq.Dispose(); tt.Dispose(); tm.Dispose(); tb.Dispose(); to.Dispose(); });
    }

    // A valid bucket per offset j − i, spread over both halves of the table like T5's: exact offsets, clamped
    // at half − 1 (T5's log-spaced rule lives in BlockDance.Transformer.T5.T5RelativePosition, outside the
    // kernels project; the kernel only reads whatever bucket array it is given).
    static int[] BucketTable(int t)
    {
        var b = new int[2 * t - 1];
        for (int r = -(t - 1); r <= t - 1; r++) b[r + t - 1] = (r > 0 ? Buckets / 2 : 0) + Math.Min(Math.Abs(r), Buckets / 2 - 1);
        return b;
    }
}
