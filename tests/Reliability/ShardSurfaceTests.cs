// The examples for sharded generation and merge: sizes that would not fit (--count 2147483647, --per-class
// 200000000, a manifest total of "abc", −1, 3e9), an empty --out-dir, Slurm variables with SLURM_ARRAY_TASK_MIN above
// the task id, FIFOs as manifest / classes file / shard PNG, and merge inputs that are not what sample wrote
// (a truncated PNG, a JPEG named .png, an index beyond the total, shards of different settings, an --npz that is
// one of the inputs through a symbolic link). Each is one line and exit 2 with nothing written.
using Xunit;

namespace BlockDance.Tests;

public class ShardSurfaceTests
{
    static readonly string Demo = HostileFiles.DemoModel;

    static string[] SampleArgs(string dir, params string[] extra) =>
        ["sample", "--model", Demo, "--device", "cpu", "--steps", "1", "--out-dir", dir, .. extra];

    /// <summary>A finished 4-sample run in two shards.</summary>
    static string Drawn()
    {
        var dir = Path.Combine(CliRunner.TempDir(), "set");
        foreach (var s in new[] { "0/2", "1/2" })
        {
            var r = CliRunner.Run(SampleArgs(dir, "--count", "4", "--shard", s));
            Assert.True(r.Code == 0, r.Err);
        }
        return dir;
    }

    static void AssertMergeRefused(string dir, string expected, params string[] extra)
    {
        var r = Surfaces.Within(60, () => CliRunner.Run(["merge", dir, .. extra]), "merge");
        HostileFiles.AssertOneLineError(r.Code, r.Err, expected);
        Assert.False(File.Exists(Path.Combine(dir, "manifest.csv")));
        Assert.Empty(Directory.GetFiles(dir, ".bd-*"));
    }

    [Theory]
    [InlineData("--count", "2147483647", "--count: expected at most 10000000 samples")]
    [InlineData("--per-class", "200000000", "--per-class: expected at most 10000000 samples")]
    public void SampleCountsThatDoNotFit_AreOneLine_Exit2(string option, string value, string expected)
    {
        var dir = Path.Combine(CliRunner.TempDir(), "set");
        var r = CliRunner.Run(SampleArgs(dir, option, value));
        HostileFiles.AssertOneLineError(r.Code, r.Err, expected);
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void EmptyOutDir_IsOneLine_Exit2()
    {
        var r = CliRunner.Run(SampleArgs("", "--count", "2"));
        HostileFiles.AssertOneLineError(r.Code, r.Err, "--out-dir: expected a folder name, found an empty string");
    }

    [Fact]
    public void SlurmTaskMinAboveTheTaskId_IsOneLine_Exit2_NothingWritten()
    {
        Assert.Throws<BlockDance.Sampler.Cli.UsageException>(() => BlockDance.Sampler.Cli.Shard.Resolve(null, v => v switch
        {
            "SLURM_ARRAY_TASK_ID" => "1", "SLURM_ARRAY_TASK_MIN" => "3", "SLURM_ARRAY_TASK_COUNT" => "2", _ => null,
        }));
    }

    [Fact]
    public void FifoAsClassesFile_OrManifest_OrSamplePng_IsRefused_NoHang()
    {
        var root = CliRunner.TempDir();
        var classes = Path.Combine(root, "classes.txt");
        Surfaces.MakeFifo(classes);
        var r = Surfaces.Within(60, () => CliRunner.Run(SampleArgs(Path.Combine(root, "a"), "--classes-file", classes)), "--classes-file FIFO");
        HostileFiles.AssertOneLineError(r.Code, r.Err, "expected a regular file, found a FIFO");

        var dir = Path.Combine(root, "b");
        Directory.CreateDirectory(dir);
        Surfaces.MakeFifo(Path.Combine(dir, "manifest-0-of-1.csv"));
        r = Surfaces.Within(60, () => CliRunner.Run(SampleArgs(dir, "--count", "2")), "manifest FIFO");
        HostileFiles.AssertOneLineError(r.Code, r.Err, "expected a regular file, found a FIFO");
        AssertMergeRefused(dir, "expected a regular file, found a FIFO");

        var set = Drawn();
        Surfaces.MakeFifo(Path.Combine(set, "000002.png"));
        AssertMergeRefused(set, "expected a regular file, found a FIFO");
        r = Surfaces.Within(60, () => CliRunner.Run(SampleArgs(set, "--count", "4", "--shard", "0/2")), "sample PNG FIFO");
        HostileFiles.AssertOneLineError(r.Code, r.Err, "found a FIFO");
    }

    [Theory]
    [InlineData("abc", "settings total: expected an integer in 1..10000000, found 'abc'")]
    [InlineData("-1", "settings total: expected an integer in 1..10000000, found '-1'")]
    [InlineData("3000000000", "found '3000000000'")]
    [InlineData("2000000000", "found '2000000000'")]
    public void ManifestTotal_Hostile_IsOneLine_Exit2(string total, string expected)
    {
        var dir = Drawn();
        foreach (var m in Directory.GetFiles(dir, "manifest-*.csv"))
            File.WriteAllText(m, File.ReadAllText(m).Replace("total=4 ", $"total={total} "));
        AssertMergeRefused(dir, expected);
    }

    [Fact]
    public void TruncatedPng_OrJpegNamedPng_IsRefusedByMerge()
    {
        var dir = Drawn();
        var png = Path.Combine(dir, "000001.png");
        var whole = File.ReadAllBytes(png);
        File.WriteAllBytes(png, whole[..(whole.Length - 20)]);
        AssertMergeRefused(dir, "expected a complete PNG image, found");
        File.WriteAllBytes(png, [0xFF, 0xD8, 0xFF, 0xE0, 0, 16, .. "JFIF"u8, 0, 1, 1, 0, 0, 1, 0, 1, 0, 0, 0xFF, 0xD9]);
        AssertMergeRefused(dir, "expected a complete PNG image, found a JPEG");
    }

    [Fact]
    public void IndexBeyondTheTotal_IsRefusedByMerge()
    {
        var dir = Drawn();
        var m = Path.Combine(dir, "manifest-1-of-2.csv");
        File.AppendAllText(m, "9,1,0,none,000009.png\n");
        AssertMergeRefused(dir, "expected sample indices 0..3 (total=4), found index 9");
    }

    [Fact]
    public void ShardsOfDifferentSplitsOrSettings_AreRefusedByMerge()
    {
        var dir = Drawn();
        var r = CliRunner.Run(SampleArgs(dir, "--count", "4", "--shard", "0/4"));
        Assert.True(r.Code == 0, r.Err);
        AssertMergeRefused(dir, "expected the manifests of one split");

        dir = Drawn();
        var m = Path.Combine(dir, "manifest-1-of-2.csv");
        File.WriteAllText(m, File.ReadAllText(m).Replace(",0,none,", ",7,none,"));   // rows with another seed than the settings line
        AssertMergeRefused(dir, "expected the seed and policy of the settings line");
    }

    [Fact]
    public void NpzThatIsAnInputThroughASymlink_IsRefused()
    {
        var dir = Drawn();
        var link = Path.Combine(dir, "all.npz");
        File.CreateSymbolicLink(link, Path.Combine(dir, "000000.png"));
        var before = File.ReadAllBytes(Path.Combine(dir, "000000.png"));
        AssertMergeRefused(dir, "expected a file that is not one of merge's inputs", "--npz", link);
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(dir, "000000.png")));
    }
}
