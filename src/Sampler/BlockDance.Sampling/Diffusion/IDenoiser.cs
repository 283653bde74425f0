using BlockDance.Kernels;

namespace BlockDance.Sampling;

/// <summary>
/// The sampler's only view of the model: given the current sample x (B, C, H, W) at original
/// timestep t (sampling step `step`, 0 = first), return the model output whose first B rows are
/// the (guided) prediction: eps in channels [0, C), v in [C, 2C) when sigma is learned.
/// </summary>
public interface IDenoiser
{
    Tensor Denoise(Tensor x, int t, int step);
}

/// <summary>Source of the Gaussian noise a sampler draws: stream 0 = x_T, stream 1 + step = that step's noise.</summary>
public interface INoiseSource
{
    void Fill(Tensor z, int stream);
}

/// <summary>The project's seeded generator (GaussianNoise): generated on the device, bit-reproducible per device.
/// firstSample offsets the element counter so each sample's noise is the same however samples are batched.</summary>
public sealed class SeededNoise(ulong seed, int firstSample = 0) : INoiseSource
{
    public ulong Seed => seed;
    public void Fill(Tensor z, int stream)
    {
        long perSample = z.Length / z.Shape[0];
        GaussianNoise.Run(z.Device, z.View, seed, (ulong)stream, firstSample * perSample);
    }
}

/// <summary>The seeded generator for samples with arbitrary global indices (a shard takes every n-th sample):
/// row r gets exactly the noise that sample indices[r] gets in an unsharded run (SeededNoise with firstSample 0).</summary>
public sealed class IndexedNoise(ulong seed, long[] indices) : INoiseSource
{
    public void Fill(Tensor z, int stream)
    {
        long perSample = z.Length / z.Shape[0];
        for (int r = 0; r < indices.Length; r++)
            GaussianNoise.Run(z.Device, z.View.SubView(r * perSample, perSample), seed, (ulong)stream, indices[r] * perSample);
    }
}
