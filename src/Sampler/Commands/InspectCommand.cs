// blockdance inspect FILE: the tensors of a checkpoint and the DiT config detected from them.
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
            var cfg = ModelLoader.DetectConfig(src, heads);
            Console.WriteLine($"config: {cfg}");
        }
        finally { (src as IDisposable)?.Dispose(); }
        return 0;
    }
}
