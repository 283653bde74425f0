// `blockdance kernels --op layernorm`: LayerNorm + adaLN modulate, every version on the same seeded rows,
// validated against LayerNormModulate.Reference (all rows), then timed by the harness.
//   small: 2 samples × 5 tokens × D 96 (the demo model's width)
//   xl:    DiT-XL/2 at model batch 16: D 1152, T = 256 (4,096 rows) and T = 1024 (16,384 rows)
// v2-bf16 writes bf16 (the A operand of a bf16 GEMM): compared with the reference rounded to bf16.
// Tolerance: fp32 1e-5 + 1e-5·|ref|; bf16 1e-5 + 2⁻⁸·|ref| (one bf16 step where fp32 values straddle a
// rounding boundary).
using ILGPU.Runtime;

namespace BlockDance.Kernels.Harness;

public sealed class LayerNormOp : IKernelOp
{
    public string Name => "layernorm";
    public IReadOnlyList<string> Versions { get; } = ["v1", "v2", "v2-bf16", "host"];

    sealed record Dims(int N, int T, int D);

    static KernelShape Shape(string label, Dims d, int outBytes = 4) =>
        new(label, 8.0 * d.N * d.T * d.D, (double)d.N * d.T * d.D * (4 + outBytes) + 2.0 * d.N * d.D * 4);

    static readonly Dictionary<string, Dims> dims = new()
    {
        ["n2 t5 d96"] = new(2, 5, 96),
        ["xl n16 t256 d1152"] = new(16, 256, 1152),
        ["xl n16 t1024 d1152"] = new(16, 1024, 1152),
    };

    public IReadOnlyList<KernelShape> Shapes(string set) => set switch
    {
        "small" => [Shape("n2 t5 d96", dims["n2 t5 d96"])],
        "xl" => [Shape("xl n16 t256 d1152", dims["xl n16 t256 d1152"]), Shape("xl n16 t1024 d1152", dims["xl n16 t1024 d1152"])],
        _ => throw new InvalidValueException("shapes", "small or xl", set),
    };

    /// <summary>The ILGPU versions everywhere, the host version (LayerNormModulateHost) on the host backend only.</summary>
    public bool Supports(ComputeDevice dev, string version) => Versions.Contains(version) && (version != "host" || dev.IsHost);

    public KernelTrial Prepare(ComputeDevice dev, string version, KernelShape shape)
    {
        var d = dims[shape.Label];
        if (!Versions.Contains(version)) throw new InvalidValueException("version", string.Join("|", Versions), version);
        int rows = d.N * d.T, modStride = 6 * d.D, shift = 3 * d.D, scl = 4 * d.D;
        var x = AttentionOp.Seeded(2, (long)rows * d.D);
        for (int i = 0; i < x.Length; i++) x[i] = 3 * x[i] + 2; // non-zero mean
        var mod = AttentionOp.Seeded(3, (long)d.N * modStride);
        var tx = Tensor.FromHost(dev, "x", x, x.Length);
        var tm = Tensor.FromHost(dev, "mod", mod, mod.Length);
        var expected = new float[rows * d.D];
        LayerNormModulate.Reference(x, mod, expected, rows, d.D, d.T, modStride, shift, scl);
        var mismatches = new List<string>();
        double maxErr = 0;
        if (version == "v2-bf16")
        {
            var y = dev.Accelerator.Allocate1D<ushort>((long)rows * d.D);
            Action launch = () => LayerNormModulateV2.RunBf16(dev, tx.View, tm.View, y.View, rows, d.D, d.T, modStride, shift, scl);
            launch();
            var raw = new ushort[rows * d.D];
            y.View.CopyToCPU(raw);
            for (int i = 0; i < raw.Length; i++)
                AttentionOp.Compare(Bf16.Round(expected[i]), Bf16.ToFloat(raw[i]), i, 1e-5, 1.0 / 256, ref maxErr, mismatches);
            return new KernelTrial(new Validation(mismatches.Count == 0, maxErr, 1e-5, 1.0 / 256, mismatches), launch,
                () => { tx.Dispose(); tm.Dispose(); y.Dispose(); });
        }
        else
        {
            int v = version switch { "host" => 0, "v1" => 1, _ => 2 };
            var ty = Tensor.Allocate(dev, "y", rows * d.D);
            Action launch = () => LayerNormModulate.RunVersion(dev, v, tx.View, tm.View, ty.View, rows, d.D, d.T, modStride, shift, scl);
            launch();
            var got = ty.ToHost();
            for (int i = 0; i < got.Length; i++) AttentionOp.Compare(expected[i], got[i], i, 1e-5, 1e-5, ref maxErr, mismatches);
            return new KernelTrial(new Validation(mismatches.Count == 0, maxErr, 1e-5, 1e-5, mismatches), launch,
                () => { tx.Dispose(); tm.Dispose(); ty.Dispose(); });
        }
    }
}
