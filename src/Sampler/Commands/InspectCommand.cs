// blockdance inspect FILE: the tensors of a checkpoint and the DiT config detected from them.
using BlockDance.Sampler.Cli;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;

namespace BlockDance.Sampler.Commands;

public static class InspectCommand
{
    public static int Run(string[] argv)
    {
        var a = Args.Parse("inspect", argv, ["heads"]);
        if (a.Positional.Count != 1) throw new UsageException("inspect: expected one checkpoint path: blockdance inspect FILE");
        var path = a.Positional[0];
        var src = ModelLoader.OpenSource(path);
        try
        {
            if (File.Exists(path))
            {
                using var f = SafeTensorsFile.Open(path);
                Console.WriteLine($"{path}: {f.Tensors.Count} tensors, {f.Tensors.Sum(t => t.Numel):N0} values");
                foreach (var kv in f.Metadata) Console.WriteLine($"  metadata {kv.Key} = {kv.Value}");
                foreach (var t in f.Tensors) Console.WriteLine($"  {t.Name,-48} {t.DType,-5} [{string.Join(", ", t.Shape)}]");
            }
            else
            {
                foreach (var k in src.Keys) Console.WriteLine($"  {k,-48} [{string.Join(", ", src.ShapeOf(k))}]");
            }
            try
            {
                var cfg = ModelLoader.DetectConfig(src, a.Has("heads") ? a.GetInt("heads", 0, 1) : null);
                Console.WriteLine($"config: {cfg}");
            }
            catch (ModelException e) { Console.WriteLine($"config: not a DiT checkpoint ({e.Message})"); }
        }
        finally { (src as IDisposable)?.Dispose(); }
        return 0;
    }
}
