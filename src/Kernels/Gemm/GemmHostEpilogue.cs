// The fused epilogue of the host GEMM (GemmHost.cs), applied to one finished 6 × 16 tile of sums while it is
// in L1: y = epilogue(acc + b) with the five epilogues of Gemm.cs. Eight columns at a time (VectorMath);
// a tile's last partial vector (N not a multiple of 8) goes through the same lanes via a small buffer,
// so every element gets the same arithmetic wherever it sits. The scalar path (GemmHost.Simd off) uses
// Activations' scalar formulas.
using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace BlockDance.Kernels;

static unsafe class GemmEpilogue
{
    /// <summary>Rows [row0, row0 + mr) and columns [col0, col0 + nc) of y from the tile ct (row r at ct + 16 r).</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public static void Apply(float* ct, float* y, int row0, int mr, int col0, int nc, in GemmHost.EpilogueArgs e, bool simd)
    {
        for (int r = 0; r < mr; r++)
        {
            long row = row0 + r, o = row * e.N + col0;
            float* gate = e.Ep == Epilogue.GatedResidual ? e.Gate + row / e.RowsPerSample * e.GateStride + e.GateOffset + col0 : null;
            float* res = e.Ep == Epilogue.GatedResidual ? e.Res + o : null;
            float* acc = ct + r * MicroKernel.Nr;
            if (!simd) { Scalar(acc, y + o, e.Bias + col0, res, gate, nc, e.Ep); continue; }
            for (int j = 0; j < nc; j += 8)
            {
                int lanes = Math.Min(8, nc - j);
                if (lanes == 8) Avx.Store(y + o + j, Lanes(Avx.LoadVector256(acc + j), Load(e.Bias + col0 + j, 8), res, gate, j, 8, e.Ep));
                else
                {
                    var v = Lanes(Avx.LoadVector256(acc + j), Load(e.Bias + col0 + j, lanes), res, gate, j, lanes, e.Ep);
                    for (int l = 0; l < lanes; l++) y[o + j + l] = v.GetElement(l);
                }
            }
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Lanes(Vector256<float> acc, Vector256<float> bias, float* res, float* gate, int j, int lanes, Epilogue ep)
    {
        var v = acc + bias;
        return ep switch
        {
            Epilogue.Gelu => VectorMath.GeluTanh(v),
            Epilogue.Silu => VectorMath.Silu(v),
            Epilogue.Relu => VectorMath.Relu(v),
            Epilogue.GatedResidual => Fused(Load(res + j, lanes), Load(gate + j, lanes), v),
            _ => v,
        };
    }

    // res + gate·v as a multiply and an add (not an FMA): the same rounding as the reference and the v1 kernel.
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Fused(Vector256<float> res, Vector256<float> gate, Vector256<float> v) => res + gate * v;

    /// <summary>`lanes` floats from p (the rest zero), never reading past p + lanes.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static Vector256<float> Load(float* p, int lanes)
    {
        if (lanes == 8) return Avx.LoadVector256(p);
        float* tmp = stackalloc float[8];
        for (int l = 0; l < 8; l++) tmp[l] = l < lanes ? p[l] : 0f;
        return Avx.LoadVector256(tmp);
    }

    static void Scalar(float* acc, float* y, float* bias, float* res, float* gate, int nc, Epilogue ep)
    {
        for (int j = 0; j < nc; j++)
        {
            float v = acc[j] + bias[j];
            y[j] = ep switch
            {
                Epilogue.Gelu => Activations.GeluTanh(v),
                Epilogue.Silu => Activations.Silu(v),
                Epilogue.GatedResidual => res[j] + gate[j] * v,
                Epilogue.Relu => Math.Max(0f, v),
                _ => v,
            };
        }
    }
}
