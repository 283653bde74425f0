// Vector-width structs the GPU kernels load and store through (ArrayView<float>.Cast<…>()), and the
// alignment test their launchers make before casting: LayerNorm v2, attention v2/v3 and the GEMMs share them.
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

/// <summary>16 bytes: four floats (a float4 load/store).</summary>
public struct Float4Chunk
{
    public float X, Y, Z, W;
    public readonly float Sum => (X + Y) + (Z + W);
}

/// <summary>8 bytes: four bf16 as two packed words, lower index in the low half.</summary>
public struct Bf16Chunk4
{
    public uint Lo, Hi;
}

public static class Chunks
{
    /// <summary>The view starts on a 16-byte boundary (float4 loads need it).</summary>
    public static bool Aligned16<T>(ArrayView<T> v) where T : unmanaged => v.Length == 0 || v.LoadEffectiveAddressAsPtr().ToInt64() % 16 == 0;
}
