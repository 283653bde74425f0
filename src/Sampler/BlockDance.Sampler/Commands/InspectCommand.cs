// blockdance inspect FILE: the tensors of a checkpoint and the DiT config detected from them; for an Open-Sora 1.0
// STDiT (.pth, .safetensors or a folder with config.json) its video config, under the video options given.
using BlockDance.Sampler.Cli;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;

namespace BlockDance.Sampler.Commands;

public static class InspectCommand
{
    public static int Run(string[] argv)
    {
        var a = Args.Parse("inspect", argv);
        if (a.Positional.Count != 1) throw new UsageException("inspect: expected one checkpoint path: blockdance inspect FILE");
        int? heads = CommonOptions.Heads(a);
        var path = a.Positional[0];
        if (STDiTWeights.IsSTDiT(path)) return InspectVideo(path, a);
        var src = ModelLoader.OpenSource(path);
        try
        {
            if (src is TorchCheckpointSource pt)
            {
                Console.WriteLine($"{path}: PyTorch checkpoint, {pt.Keys.Count()} tensors" + (pt.Entry is string e ? $" (the '{e}' entry)" : ""));
                foreach (var k in pt.Keys) Console.WriteLine($"  {k,-48} {pt.DTypeOf(k),-5} [{string.Join(", ", pt.ShapeOf(k))}]");
            }
            else if (File.Exists(path))
            {
                FileKind.RequireRegular(path, "inspect");
                using var f = SafeTensorsFile.Open(path);
                Console.WriteLine($"{path}: {f.Tensors.Count} tensors, {f.Tensors.Sum(t => t.Numel):N0} values");
                foreach (var kv in f.Metadata) Console.WriteLine($"  metadata {kv.Key} = {kv.Value}");
                foreach (var t in f.Tensors) Console.WriteLine($"  {t.Name,-48} {t.DType,-5} [{string.Join(", ", t.Shape)}]");
            }
            else
            {
                foreach (var k in src.Keys) Console.WriteLine($"  {k,-48} [{string.Join(", ", src.ShapeOf(k))}]");
            }
            // A file that is not a DiT, or a DiT with impossible values (or --heads that does not fit it), is
            // bad input like everywhere else: the tensor list above, then one error line and exit 2.
            var cfg = CommonOptions.DetectConfig(a, src, heads);
            Console.WriteLine($"config: {cfg}");
        }
        finally { (src as IDisposable)?.Dispose(); }
        return 0;
    }

    static int InspectVideo(string path, Args a)
    {
        var (src, config) = STDiTWeights.Open(path);
        using (src as IDisposable)
        {
            Console.WriteLine($"{src.Origin}: Open-Sora 1.0 STDiT, {src.Keys.Count()} tensors" +
                              (src is TorchCheckpointSource { Entry: string e } ? $" (the '{e}' entry)" : "") + (config != null ? $", {config}" : ""));
            foreach (var k in src.Keys) Console.WriteLine($"  {k,-48} {src.DTypeOf(k),-5} [{string.Join(", ", src.ShapeOf(k))}]");
            var cfg = STDiTWeights.Configure(src, config, VideoOptions.From(a));
            Console.WriteLine($"config: {cfg}");
            Console.WriteLine($"video: {cfg.Frames} frames × {cfg.ImageSize}×{cfg.ImageSize} px at {VideoOptions.Fps(a)} fps; latent (B, {cfg.InChannels}, {cfg.Frames}, {cfg.LatentSize}, {cfg.LatentSize}); " +
                              $"spatial attention {cfg.Frames} × {cfg.SpatialTokens} tokens, temporal {cfg.SpatialTokens} × {cfg.Frames} per sample");
        }
        return 0;
    }
}
