// `blockdance kernels --op attention`: every attention version on the same seeded qkv, validated against
// Attention.Reference, then timed by the harness. The reference is evaluated on sampled rows only (every query
// of the first and the last (n, head) pair, one query of every other pair) so that the XL shapes validate in
// about a second.
//   small: 1 × 19 tokens × 1 head × hd 72 (CPU-accelerator sized: v3's emulated mma is slow there; T is not a
//          multiple of any tile)
//   xl:    DiT-XL/2 at model batch 16: 16 heads × hd 72, T = 256 (256 px) and T = 1024 (512 px)
// Versions: v1, v2, v3-bf16 (ILGPU kernels; on --device cpu they launch on the CPU accelerator) and host (the
// host backend's AttentionHost, --device cpu only).
// Tolerance (|got − ref| ≤ atol + rtol·|ref|): fp32 versions 1e-5 + 1e-4·|ref| (sums over up to 1024 keys);
// v3-bf16 3e-2 absolute (q, k, v and P rounded to bf16; see tests/Kernels/AttentionVersionTests.cs).
using ILGPU.Runtime;

namespace BlockDance.Kernels.Harness;

public sealed class AttentionOp : IKernelOp
{
    public string Name => "attention";
    public IReadOnlyList<string> Versions { get; } = ["v1", "v2", "v3-bf16", "host"];

    sealed record Dims(int N, int T, int Heads, int Hd);

    static KernelShape Shape(string label, Dims d) => new(label, Attention.Flops(d.N, d.T, d.Heads, d.Hd),
        4.0 * d.N * d.T * d.Heads * d.Hd * 4); // qkv read once + o written once, fp32

    static readonly Dictionary<string, Dims> dims = new()
    {
        ["n1 t19 h1 hd72"] = new(1, 19, 1, 72),
        ["xl n16 t256 h16 hd72"] = new(16, 256, 16, 72),
        ["xl n16 t1024 h16 hd72"] = new(16, 1024, 16, 72),
    };

    public IReadOnlyList<KernelShape> Shapes(string set) => set switch
    {
        "small" => [Shape("n1 t19 h1 hd72", dims["n1 t19 h1 hd72"])],
        "xl" => [Shape("xl n16 t256 h16 hd72", dims["xl n16 t256 h16 hd72"]), Shape("xl n16 t1024 h16 hd72", dims["xl n16 t1024 h16 hd72"])],
        _ => throw new InvalidValueException("shapes", "small or xl", set),
    };

    /// <summary>The ILGPU versions run everywhere (v3's mma is emulated per lane on the CPU accelerator); the host
    /// version on the host backend (`--device cpu`).</summary>
    public bool Supports(ComputeDevice dev, string version) => version is "v1" or "v2" or "v3-bf16" || version == "host" && dev.IsHost;

    public KernelTrial Prepare(ComputeDevice dev, string version, KernelShape shape)
    {
        var d = dims[shape.Label];
        int v = version switch { "host" => 0, "v1" => 1, "v2" => 2, "v3-bf16" => 3, _ => throw new InvalidValueException("version", string.Join("|", Versions), version) };
        float scale = 1f / MathF.Sqrt(d.Hd);
        var qkv = Seeded(1, 3L * d.N * d.T * d.Heads * d.Hd);
        var tq = Tensor.FromHost(dev, "qkv", qkv, qkv.Length);
        var to = Tensor.Allocate(dev, "o", d.N * d.T * d.Heads * d.Hd);
        Action launch = () => Attention.RunVersion(dev, v, tq.View, to.View, d.N, d.T, d.Heads, d.Hd, scale);
        launch();
        var got = to.ToHost();
        var validation = v == 3 ? Validate(qkv, got, d, scale, 3e-2, 0) : Validate(qkv, got, d, scale, 1e-5, 1e-4);
        return new KernelTrial(validation, launch, () => { tq.Dispose(); to.Dispose(); });
    }

    internal static float[] Seeded(int seed, long n)
    {
        var r = new Random(seed);
        var a = new float[n];
        for (long i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1);
        return a;
    }

    /// <summary>Reference rows: (n 0, head 0) and (last n, last head) in full, one query of every other pair.</summary>
    static Validation Validate(float[] qkv, float[] got, Dims d, float scale, double atol, double rtol)
    {
        bool Sampled(int b, int h, int i) => (b == 0 && h == 0) || (b == d.N - 1 && h == d.Heads - 1) || i == (31 * b + 17 * h) % d.T;
        var expected = new float[got.Length];
        AttentionReference.SelfAttention(qkv, expected, d.N, d.T, d.Heads, d.Hd, scale, new AttentionOptions { Rows = Sampled });
        var mismatches = new List<string>();
        double maxErr = 0;
        for (int b = 0; b < d.N; b++)
            for (int h = 0; h < d.Heads; h++)
                for (int i = 0; i < d.T; i++)
                {
                    if (!Sampled(b, h, i)) continue;
                    for (int e = 0; e < d.Hd; e++)
                    {
                        long at = ((long)b * d.T + i) * d.Heads * d.Hd + h * d.Hd + e;
                        Compare(expected[at], got[at], at, atol, rtol, ref maxErr, mismatches);
                    }
                }
        return new Validation(mismatches.Count == 0, maxErr, atol, rtol, mismatches);
    }

    internal static void Compare(double expected, float got, long at, double atol, double rtol, ref double maxErr, List<string> mismatches)
    {
        double err = double.IsNaN(got) ? double.PositiveInfinity : Math.Abs(expected - got);
        maxErr = Math.Max(maxErr, err);
        if (err > atol + rtol * Math.Abs(expected) && mismatches.Count < 5)
            mismatches.Add($"[{at}] expected {expected:G9}, got {got:G9}");
    }
}
