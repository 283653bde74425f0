// The video options of an Open-Sora 1.0 STDiT run (sample, inspect): --frames (16), --image-size 256|512 (the
// official configs; any multiple of 16 is accepted for small models), --space-scale / --time-scale (default: the
// folder's config.json, else 0.5 at 256 px and 1.0 at 512 px, and 1.0), --fps (8, the output's frame rate).
using BlockDance.Transformer;

namespace BlockDance.Sampler.Cli;

public static class VideoOptions
{
    public static readonly string[] Names = ["frames", "image-size", "space-scale", "time-scale", "fps"];

    public static STDiTConfig.VideoOptions From(Args a) => new(
        Frames: a.Has("frames") ? a.GetInt("frames") : null,
        ImageSize: a.Has("image-size") ? ImageSize(a) : null,
        SpaceScale: a.Has("space-scale") ? a.GetDouble("space-scale") : null,
        TimeScale: a.Has("time-scale") ? a.GetDouble("time-scale") : null,
        Heads: CommonOptions.Heads(a));

    static int ImageSize(Args a)
    {
        int px = a.GetInt("image-size");
        if (px % 16 != 0) throw new UsageException($"--image-size: expected a multiple of 16 (the VAE's 8× and the patch 2; 256 or 512 for the released models), found {px}");
        return px;
    }

    public static int Fps(Args a) => a.Has("fps") || a.Spec.Find("fps") != null ? a.GetInt("fps") : 8;
}
