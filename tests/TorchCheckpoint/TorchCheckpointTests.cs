// The restricted PyTorch checkpoint reader against the fixtures of tools/reference/make_torch_checkpoints.py:
// every .pt variant gives the same tensors (and the same samples) as its safetensors twin, a train.py
// checkpoint loads its "ema" weights without building its argparse args, and hostile or broken files are
// one-line errors (exit 2) — a pickle never runs code.
using System.IO.Compression;
using BlockDance.Kernels;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;
using Xunit;

namespace BlockDance.Tests;

public class TorchCheckpointTests
{
    static string Fx(string name) => CliRunner.Fixture(Path.Combine("torch", name));

    static Dictionary<string, float[]> All(IWeightSource src) =>
        src.Keys.ToDictionary(k => k, k => src.Read(k, src.ShapeOf(k)));

    static Dictionary<string, float[]> Twin()
    {
        using var src = (OfficialSafeTensorsSource)ModelLoader.OpenSource(Fx("tiny_dit.safetensors"));
        return All(src);
    }

    [Theory]
    [InlineData("tiny_dit.pt")]
    [InlineData("tiny_dit_train.pt")]
    public void TorchCheckpoint_F32_EqualsSafeTensorsTwinBitForBit(string file)
    {
        var twin = Twin();
        using var src = ModelLoader.OpenSource(Fx(file)) as TorchCheckpointSource;
        Assert.NotNull(src);
        var got = All(src);
        Assert.Equal(twin.Keys.Order(), got.Keys.Order());
        foreach (var (k, v) in twin) Assert.True(v.AsSpan().SequenceEqual(got[k]), $"tensor {k} differs");
    }

    [Fact]
    public void TrainCheckpoint_LoadsEmaEntry_NotModel()
    {
        using var src = (TorchCheckpointSource)ModelLoader.OpenSource(Fx("tiny_dit_train.pt"));
        Assert.Equal("ema", src.Entry);
    }

    [Theory]
    [InlineData("tiny_dit_f16.pt", "F16")]
    [InlineData("tiny_dit_bf16.pt", "BF16")]
    public void TorchCheckpoint_HalfStorages_EqualTwinRounded(string file, string dtype)
    {
        var twin = Twin();
        using var src = (TorchCheckpointSource)ModelLoader.OpenSource(Fx(file));
        foreach (var (k, v) in twin)
        {
            Assert.Equal(dtype, src.DTypeOf(k));
            var got = src.Read(k, src.ShapeOf(k));
            for (int i = 0; i < v.Length; i++)
            {
                float want = dtype == "F16" ? (float)(Half)v[i] : Bf16.Round(v[i]);
                Assert.True(want == got[i], $"{k}[{i}]: expected {want}, found {got[i]}");
            }
        }
    }

    [Fact]
    public void SampleCommand_PtAndSafeTensors_WriteIdenticalLatents()
    {
        var dir = CliRunner.TempDir();
        byte[] Sample(string model)
        {
            var outPath = Path.Combine(dir, Path.GetFileNameWithoutExtension(model) + ".safetensors");
            var (code, _, err) = CliRunner.Run("sample", "--model", Fx(model), "--heads", "2", "--device", "cpu", "--steps", "3",
                                               "--class", "0,2", "--out", outPath);
            Assert.True(code == 0, err);
            return File.ReadAllBytes(outPath);
        }
        var twin = Sample("tiny_dit.safetensors");
        Assert.Equal(twin, Sample("tiny_dit_train.pt"));
        Assert.Equal(twin, Sample("tiny_dit.pt"));
    }

    [Fact]
    public void HostilePickle_OsSystem_RefusedNamingImport_NothingRuns()
    {
        File.Delete("/tmp/blockdance_pwned");
        var (code, stdout, err) = CliRunner.Run("inspect", Fx("hostile_os_system.pt"));
        Assert.Equal(2, code);
        Assert.Contains("refused import 'posix.system'", err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.DoesNotContain("tensors", stdout);
        Assert.False(File.Exists("/tmp/blockdance_pwned"));
    }

    [Fact]
    public void TruncatedZip_IsOneLineError()
    {
        var dir = CliRunner.TempDir();
        var bytes = File.ReadAllBytes(Fx("tiny_dit.pt"));
        var path = Path.Combine(dir, "cut.pt");
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var (code, _, err) = CliRunner.Run("inspect", path);
        Assert.Equal(2, code);
        Assert.Contains("damaged or truncated zip", err);
        Assert.Single(err.Trim().Split('\n'));
    }

    [Fact]
    public void StorageShorterThanTensor_IsOneLineError()
    {
        // Copy tiny_dit.pt, cutting one storage (the pos_embed's, key "0") to half its bytes.
        var dir = CliRunner.TempDir();
        var path = Path.Combine(dir, "short.pt");
        using (var src = ZipFile.OpenRead(Fx("tiny_dit.pt")))
        using (var dst = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            foreach (var e in src.Entries)
            {
                using var s = e.Open();
                var data = new MemoryStream();
                s.CopyTo(data);
                var b = data.ToArray();
                if (e.FullName == "tiny_dit/data/0") b = b[..(b.Length / 2)];
                using var o = dst.CreateEntry(e.FullName, CompressionLevel.NoCompression).Open();
                o.Write(b);
            }
        }
        var (code, _, err) = CliRunner.Run("sample", "--model", path, "--heads", "2", "--device", "cpu", "--steps", "1",
                                           "--out", Path.Combine(dir, "x.safetensors"));
        Assert.Equal(2, code);
        Assert.Contains("storage '0' holds 128 bytes, expected 256", err);
        Assert.False(File.Exists(Path.Combine(dir, "x.safetensors")));
    }

    [Fact]
    public void Pickle_UnknownGlobal_RefusedBeforeAnyCall()
    {
        // protocol 2: GLOBAL 'subprocess Popen', then the call; the reader stops at the import.
        byte[] pkl = [0x80, 2, .. "csubprocess\nPopen\n"u8, (byte)'X', 2, 0, 0, 0, .. "ls"u8, 0x85, (byte)'R', (byte)'.'];
        var e = Assert.Throws<TorchCheckpointException>(() => PickleReader.Load(pkl, "x.pt: data.pkl"));
        Assert.Contains("refused import 'subprocess.Popen'", e.Message);
    }
}
