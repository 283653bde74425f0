// Warp-wide reductions shared by the warp-per-row kernels (LayerNorm v2, the small-M GEMM): a butterfly of five
// ShuffleXor steps leaves the sum of the 32 lanes' values in every lane (same order in every lane, so all lanes
// hold bit-identical results).
using ILGPU;

namespace BlockDance.Kernels;

public static class WarpReduce
{
    public static float Sum(float v)
    {
        v += Warp.ShuffleXor(v, 16);
        v += Warp.ShuffleXor(v, 8);
        v += Warp.ShuffleXor(v, 4);
        v += Warp.ShuffleXor(v, 2);
        v += Warp.ShuffleXor(v, 1);
        return v;
    }
}
