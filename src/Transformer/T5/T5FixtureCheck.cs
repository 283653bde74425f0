// The T5 encoder against the PyTorch reference of tools/reference/t5_reference.py (tests/fixtures/t5_tiny):
// the tiny sharded F32 encoder on 3 rows of 20 tokens with 20, 7 and 1 real tokens. Used by the tests and by
// `blockdance selftest`, so a GPU machine checks the T5 kernels (RMS norm, relative-bias attention, gated
// GELU, the GEMMs) exactly as CI checks the CPU accelerator.
using BlockDance.Kernels;
using BlockDance.Transformer.IO;

namespace BlockDance.Transformer.T5;

public static class T5FixtureCheck
{
    public const string Folder = "t5_tiny";

    /// <summary>Max |C# − PyTorch| over last_hidden_state (B, L, D).</summary>
    public static double Compare(ComputeDevice dev, string fixturesDir)
    {
        string dir = Path.Combine(fixturesDir, Folder);
        using var refs = SafeTensorsFile.Open(Path.Combine(dir, "t5_ref.safetensors"));
        var shape = refs.Get("ids").Shape;
        var ids = Array.ConvertAll(refs.ReadFloat32("ids"), v => (int)v);
        var mask = Array.ConvertAll(refs.ReadFloat32("mask"), v => (int)v);
        bool quiet = Log.Quiet;
        Log.Quiet = true; // the load/free lines would interleave with the selftest table
        try
        {
            using var enc = T5Encoder.Load(dev, dir);
            using var o = enc.Encode(ids, mask, (int)shape[0], (int)shape[1]);
            return Check.MaxAbsError(refs.ReadFloat32("last_hidden_state"), o.Embeddings.ToHost());
        }
        finally { Log.Quiet = quiet; }
    }
}
