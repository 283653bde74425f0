// The Stable Diffusion VAE decoder (AutoencoderKL, sd-vae-ft-ema / sd-vae-ft-mse) that turns DiT
// latents into images (docs/formats.md):
//
//   z = latent / 0.18215                                   (N, 4, h, w)
//   x = conv_in(post_quant_conv(z))                        (N, 512, h, w)
//   x = mid_block: resnet → attention → resnet             (N, 512, h, w)
//   for each up block: 3 resnets, then nearest ×2 + conv   (N, 512|256|128, ·2 …, ·8)
//   x = conv_out(SiLU(conv_norm_out(x)))                   (N, 3, 8h, 8w), ≈ [−1, 1]
//   image = clamp((x + 1) / 2, 0, 1) · 255                 (N, 3, 8h, 8w)
//
// Channel counts, resnets per block and which blocks upsample are read off the checkpoint's keys and
// shapes, so the same code loads the real 50M-parameter decoder and the tiny test fixture. The
// 1/0.18215 scale is folded into post_quant_conv's weight at load time (the conv is linear in z), so
// it costs no pass. Buffers are allocated once per (batch, latent size) and reused (VaeWorkspace).
using BlockDance.Kernels;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Transformer.Vae;

/// <summary>decoder.up_blocks.i: resnets, then (except the last block) nearest ×2 and upsamplers.0.conv.</summary>
public sealed record VaeUpBlock(IReadOnlyList<ResnetBlock2D> Resnets, Conv2dLayer? Upsampler)
{
    public int Out => Resnets[^1].Out;
}

public sealed class VaeDecoder : IDisposable
{
    /// <summary>config.json "scaling_factor" of the SD VAEs: latents were multiplied by it in training.</summary>
    public const float DefaultScalingFactor = 0.18215f;

    public ComputeDevice Device { get; }
    public int Groups { get; }
    public float ScalingFactor { get; }
    public int LatentChannels => PostQuantConv.In;
    public int OutChannels => ConvOut.Out;
    public Conv2dLayer PostQuantConv { get; }            // post_quant_conv (weight pre-scaled by 1/ScalingFactor)
    public Conv2dLayer ConvIn { get; }                   // decoder.conv_in
    public ResnetBlock2D MidResnet0 { get; }             // decoder.mid_block.resnets.0
    public VaeAttention MidAttention { get; }            // decoder.mid_block.attentions.0
    public ResnetBlock2D MidResnet1 { get; }             // decoder.mid_block.resnets.1
    public IReadOnlyList<VaeUpBlock> UpBlocks { get; }   // decoder.up_blocks.i
    public GroupNormLayer ConvNormOut { get; }           // decoder.conv_norm_out
    public Conv2dLayer ConvOut { get; }                  // decoder.conv_out
    /// <summary>Image side / latent side (8 for the SD VAE: one ×2 per upsampler).</summary>
    public int UpscaleFactor => 1 << UpBlocks.Count(b => b.Upsampler != null);
    VaeWorkspace? ws;

    /// <summary>Called with ("mid", x) after the mid block and ("raw", x) after conv_out; used by the fixture check.</summary>
    public Action<string, Tensor>? OnStage { get; set; }

    public VaeDecoder(ComputeDevice dev, VaeWeights src, int? groupsOverride = null)
    {
        Device = dev;
        Groups = groupsOverride ?? src.Groups;
        ScalingFactor = src.ScalingFactor;
        int latent = (int)src.ShapeOf("post_quant_conv.weight")[1];
        PostQuantConv = Conv2dLayer.Load(dev, src, "post_quant_conv", latent, 1f / ScalingFactor);
        ConvIn = Conv2dLayer.Load(dev, src, "decoder.conv_in", latent);
        int c = ConvIn.Out;
        MidResnet0 = ResnetBlock2D.Load(dev, src, "decoder.mid_block.resnets.0", c, Groups);
        MidAttention = VaeAttention.Load(dev, src, "decoder.mid_block.attentions.0", c, Groups);
        MidResnet1 = ResnetBlock2D.Load(dev, src, "decoder.mid_block.resnets.1", c, Groups);
        var blocks = new List<VaeUpBlock>();
        for (int i = 0; src.Has($"decoder.up_blocks.{i}.resnets.0.conv1.weight"); i++)
        {
            var resnets = new List<ResnetBlock2D>();
            for (int j = 0; src.Has($"decoder.up_blocks.{i}.resnets.{j}.conv1.weight"); j++)
            {
                resnets.Add(ResnetBlock2D.Load(dev, src, $"decoder.up_blocks.{i}.resnets.{j}", c, Groups));
                c = resnets[^1].Out;
            }
            var up = src.Has($"decoder.up_blocks.{i}.upsamplers.0.conv.weight")
                ? Conv2dLayer.Load(dev, src, $"decoder.up_blocks.{i}.upsamplers.0.conv", c) : null;
            if (up != null && up.Out != c)
                throw new ModelException($"{src.Path}: decoder.up_blocks.{i}.upsamplers.0.conv maps {c} to {up.Out} channels; expected {c}");
            blocks.Add(new VaeUpBlock(resnets, up));
        }
        if (blocks.Count == 0) throw new ModelException($"{src.Path}: no decoder.up_blocks.0.resnets.0 found");
        UpBlocks = blocks;
        CheckAgainstConfig(src, latent);
        ConvNormOut = GroupNormLayer.Load(dev, src, "decoder.conv_norm_out", c, Groups);
        ConvOut = Conv2dLayer.Load(dev, src, "decoder.conv_out", c);
    }

    /// <summary>The file and config.json must describe the same decoder: every up block of the file is read (none ignored,
    /// e.g. an up_blocks.5 after a gap), and block_out_channels / layers_per_block / latent_channels agree with it.</summary>
    void CheckAgainstConfig(VaeWeights src, int latent)
    {
        var indices = src.UpBlockIndices();
        if (indices.Count != UpBlocks.Count || (indices.Count > 0 && indices.Max != UpBlocks.Count - 1))
            throw new ModelException($"{src.Path}: decoder.up_blocks: expected contiguous blocks 0..{UpBlocks.Count - 1} (each with resnets.0), " +
                                     $"found indices {string.Join(", ", indices.Take(8))}");
        if (src.LatentChannels is int lc && lc != latent)
            throw new ModelException($"{src.Path}: config latent_channels {lc}, the file's post_quant_conv takes {latent}; expected the same");
        if (src.BlockOutChannels is { } bo)
        {
            var fileOut = UpBlocks.Select(b => b.Out).Reverse().ToArray();   // up blocks run from the widest to the narrowest
            if (!bo.SequenceEqual(fileOut))
                throw new ModelException($"{src.Path}: config block_out_channels [{string.Join(", ", bo)}], the file's up blocks give " +
                                         $"[{string.Join(", ", fileOut)}]; expected the same");
        }
        if (src.LayersPerBlock is int lp && UpBlocks.FirstOrDefault(b => b.Resnets.Count != lp + 1) is { } bad)
            throw new ModelException($"{src.Path}: config layers_per_block {lp} (decoder blocks of {lp + 1} resnets), found an up block " +
                                     $"with {bad.Resnets.Count}; expected the same");
    }

    /// <summary>Loads the VAE at `path`: a .safetensors file, a vae/ folder, or a model folder holding vae/.</summary>
    public static VaeDecoder Load(ComputeDevice dev, string path, int? groups = null)
    {
        using var src = VaeWeights.Open(path);
        var vae = new VaeDecoder(dev, src, groups);
        Log.Info($"VAE decoder: {src.Path} ({vae.Describe()})");
        return vae;
    }

    public string Describe() =>
        $"latent {LatentChannels} ch, channels {ConvIn.Out} → {string.Join(" → ", UpBlocks.Select(b => b.Out))}, " +
        $"{UpBlocks.Count} up blocks of {UpBlocks[0].Resnets.Count} resnets, ×{UpscaleFactor}, {Groups} groups, " +
        $"{WeightBytes / 4 / 1e6:F1}M parameters";

    public long WeightBytes => PostQuantConv.Bytes + ConvIn.Bytes + MidResnet0.Bytes + MidAttention.Bytes + MidResnet1.Bytes
        + UpBlocks.Sum(b => b.Resnets.Sum(r => r.Bytes) + (b.Upsampler?.Bytes ?? 0)) + ConvNormOut.Bytes + ConvOut.Bytes;

    /// <summary>Buffers for (batch, latent h×w), allocated once and reused; reallocated (and logged) when that changes.</summary>
    public VaeWorkspace Prepare(int n, int h, int w)
    {
        if (ws != null && ws.Batch == n && ws.LatentHeight == h && ws.LatentWidth == w) return ws;
        if (ws != null) Log.Info($"VAE workspace reallocated for batch {n}, latent {h}×{w} (was {ws.Batch}, {ws.LatentHeight}×{ws.LatentWidth})");
        ws?.Dispose();
        long feature = 0, scratch = 0;
        void Feature(int c, long hw) => feature = Math.Max(feature, (long)n * c * hw);
        void Norm(int c, long hw) => scratch = Math.Max(scratch, GroupNorm.ScratchLength(n, c, hw, Groups));
        long size = (long)h * w;
        Feature(Math.Max(LatentChannels, ConvIn.Out), size);
        Norm(ConvIn.Out, size);
        foreach (var b in UpBlocks)
        {
            foreach (var r in b.Resnets) { Feature(Math.Max(r.In, r.Out), size); Norm(r.In, size); Norm(r.Out, size); }
            if (b.Upsampler != null) { size *= 4; Feature(b.Out, size); }
        }
        Norm(ConvNormOut.Channels, size);
        Feature(OutChannels, size);
        int f = UpscaleFactor;
        ws = new VaeWorkspace(Device, n, h, w, feature, 3L * n * MidAttention.Channels * h * w, scratch, [n, OutChannels, h * f, w * f]);
        return ws;
    }

    /// <summary>image (N, 3, 8h, 8w) in [0, 255] = decode(latent (N, 4, h, w)). The returned tensor belongs to the
    /// decoder (reused by the next Decode of the same shape): copy it out, do not dispose it.</summary>
    public Tensor Decode(Tensor latent)
    {
        var (n, h, w) = CheckLatent(latent);
        var work = Prepare(n, h, w);
        Decode(latent, work.Image);
        return work.Image;
    }

    /// <summary>Decodes into the caller's tensor `image`, (N, 3, 8h, 8w) elements.</summary>
    public void Decode(Tensor latent, Tensor image)
    {
        var (n, h, w) = CheckLatent(latent);
        var work = Prepare(n, h, w);
        int f = UpscaleFactor;
        Check.Size("vae image", image.Length, (long)n * OutChannels * h * f * w * f);
        Tensor x = work.X0, y = work.X1;
        Tensor Into(Tensor t, int c, int hh, int ww) { t.Reshape(n, c, hh, ww); return t; }
        void Swap() => (x, y) = (y, x);

        PostQuantConv.Forward(latent, Into(y, LatentChannels, h, w), n, h, w);                 // (N, 4, h, w), z/0.18215 folded in
        ConvIn.Forward(y, Into(x, ConvIn.Out, h, w), n, h, w);                                 // (N, C, h, w)
        int c = ConvIn.Out;
        MidResnet0.Forward(x, Into(y, c, h, w), work, n, h, w); Swap();                         // (N, C, h, w)
        MidAttention.Forward(x, Into(y, c, h, w), work, n, h, w); Swap();                       // (N, C, h, w)
        MidResnet1.Forward(x, Into(y, c, h, w), work, n, h, w); Swap();                         // (N, C, h, w)
        OnStage?.Invoke("mid", x);
        foreach (var block in UpBlocks)
        {
            foreach (var r in block.Resnets)
            {
                r.Forward(x, Into(y, r.Out, h, w), work, n, h, w); Swap();                      // (N, C_out, H, W)
                c = r.Out;
            }
            if (block.Upsampler != null)
            {
                Upsample.Run(Device, x.View, work.T1.View, n * c, h, w);                        // (N, C, 2H, 2W)
                h *= 2; w *= 2;
                block.Upsampler.Forward(work.T1, Into(y, c, h, w), n, h, w); Swap();            // (N, C, 2H, 2W)
            }
        }
        ConvNormOut.Forward(x, work.T1, work.Scratch, n, (long)h * w, silu: true);             // (N, C0, H, W)
        ConvOut.Forward(work.T1, Into(y, OutChannels, h, w), n, h, w);                          // (N, 3, H, W) ≈ [−1, 1]
        OnStage?.Invoke("raw", y);
        RequireFinite(y, (long)n * OutChannels * h * w);
        ImageOutput.Run(Device, y.View, image.View, (long)n * OutChannels * h * w);            // (N, 3, H, W) in [0, 255]
    }

    /// <summary>The decoded pixels must be finite: NaN/Inf (weights that overflow, a NaN latent) would be clamped to a black
    /// image and written with exit 0. One count on the device, one 4-byte read-back per decode.</summary>
    void RequireFinite(Tensor raw, long length)
    {
        nonFinite ??= Device.Accelerator.Allocate1D<int>(1);
        nonFinite.MemSetToZero();
        NonFinite.Count(Device, raw.View, nonFinite.View, 0);
        int bad = nonFinite.GetAsArray1D()[0];
        if (bad > 0)
            throw new ModelException($"VAE output: expected finite pixels, found {bad} NaN/Inf of {length} (weights or latents too large or non-finite)");
    }
    MemoryBuffer1D<int, Stride1D.Dense>? nonFinite;

    (int n, int h, int w) CheckLatent(Tensor latent)
    {
        var s = latent.Shape;
        if (s.Length != 4 || s[1] != LatentChannels)
            throw new ArgumentException($"VAE decode: expected a latent (N, {LatentChannels}, h, w), found {latent.ShapeString()}");
        return (s[0], s[2], s[3]);
    }

    /// <summary>Floating-point operations of one decode (convolutions, attention GEMMs and scores).</summary>
    public long Flops(int n, int h, int w)
    {
        long hh = h, ww = w;
        long total = PostQuantConv.Flops(n, hh, ww) + ConvIn.Flops(n, hh, ww) + MidResnet0.Flops(n, hh, ww)
                     + MidAttention.Flops(n, hh, ww) + MidResnet1.Flops(n, hh, ww);
        foreach (var b in UpBlocks)
        {
            total += b.Resnets.Sum(r => r.Flops(n, hh, ww));
            if (b.Upsampler != null) { hh *= 2; ww *= 2; total += b.Upsampler.Flops(n, hh, ww); }
        }
        return total + ConvOut.Flops(n, hh, ww);
    }

    public void Dispose()
    {
        ws?.Dispose();
        nonFinite?.Dispose();
        PostQuantConv.Dispose(); ConvIn.Dispose(); MidResnet0.Dispose(); MidAttention.Dispose(); MidResnet1.Dispose();
        foreach (var b in UpBlocks) { foreach (var r in b.Resnets) r.Dispose(); b.Upsampler?.Dispose(); }
        ConvNormOut.Dispose(); ConvOut.Dispose();
    }
}
