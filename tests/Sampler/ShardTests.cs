// Sharded generation (sample --out-dir, --shard, merge): any split gives the same files as one unsharded run,
// a rerun resumes, scheduler variables pick the shard, and bad shard settings are one line, exit 2, nothing written.
using BlockDance.Sampler.Cli;
using Xunit;

namespace BlockDance.Tests;

public class ShardTests
{
    static readonly string P4 = CliRunner.Fixture("dit_p4.weights.safetensors");   // 3×16×16 pixel model, 5 classes

    static void Sample(string dir, params string[] extra)
    {
        var (code, _, err) = CliRunner.Run(["sample", "--model", P4, "--device", "cpu", "--steps", "3", "--count", "6",
                                            "--cache", "blockdance", "--cache-n", "2", "--out-dir", dir, .. extra]);
        Assert.True(code == 0, err);
    }

    static void Merge(string dir, string npz)
    {
        var (code, _, err) = CliRunner.Run("merge", dir, "--npz", npz);
        Assert.True(code == 0, err);
    }

    [Fact]
    public void Shards0And1Of2_EqualUnshardedRun_ByteForByte_AndResume()
    {
        var root = CliRunner.TempDir();
        string all = Path.Combine(root, "all"), sh = Path.Combine(root, "sh");
        Sample(all);
        Sample(sh, "--shard", "1/2", "--batch", "2");       // another batch size, and the second shard first
        Sample(sh, "--shard", "0/2");
        Merge(all, Path.Combine(root, "all.npz"));
        Merge(sh, Path.Combine(root, "sh.npz"));
        var pngs = Directory.GetFiles(all, "*.png").Select(Path.GetFileName).Order().ToList();
        Assert.Equal(Enumerable.Range(0, 6).Select(k => $"{k:D6}.png"), pngs);
        Assert.Equal(pngs, Directory.GetFiles(sh, "*.png").Select(Path.GetFileName).Order());
        foreach (var f in pngs) Assert.Equal(File.ReadAllBytes(Path.Combine(all, f!)), File.ReadAllBytes(Path.Combine(sh, f!)));
        Assert.Equal(File.ReadAllBytes(Path.Combine(root, "all.npz")), File.ReadAllBytes(Path.Combine(root, "sh.npz")));
        Assert.Equal(File.ReadAllText(Path.Combine(all, "manifest.csv")), File.ReadAllText(Path.Combine(sh, "manifest.csv")));
        Assert.Contains("\n3,3,0,blockdance cache-n=2,000003.png\n", File.ReadAllText(Path.Combine(sh, "manifest.csv")));

        // resume after preemption: a missing sample is drawn again, identically; the others are skipped
        var lost = Path.Combine(sh, "000003.png");
        File.Delete(lost);
        var (code, stdout, err) = CliRunner.Run("sample", "--model", P4, "--device", "cpu", "--steps", "3", "--count", "6",
            "--cache", "blockdance", "--cache-n", "2", "--out-dir", sh, "--shard", "1/2");
        Assert.True(code == 0, err);
        Assert.Contains("2 already in", stdout);
        Assert.Equal(File.ReadAllBytes(Path.Combine(all, "000003.png")), File.ReadAllBytes(lost));
    }

    [Fact]
    public void Merge_MissingShard_IsOneLineError()
    {
        var root = CliRunner.TempDir();
        var sh = Path.Combine(root, "sh");
        Sample(sh, "--shard", "0/3");
        var (code, _, err) = CliRunner.Run("merge", sh, "--npz", Path.Combine(root, "x.npz"));
        Assert.Equal(2, code);
        Assert.Contains("expected all 6 samples, found 2", err);
        Assert.False(File.Exists(Path.Combine(root, "x.npz")));
    }

    [Theory]
    [InlineData("3/2", "expected a shard index 0..1, found 3")]
    [InlineData("0/4", "expected a shard count that divides the 6 samples, found 4")]
    [InlineData("a/2", "--shard index: expected an integer ≥ 0, found 'a'")]
    [InlineData("1", "expected i/n")]
    public void BadShard_ExitsTwo_NothingWritten(string shard, string message)
    {
        var root = CliRunner.TempDir();
        var dir = Path.Combine(root, "out");
        var (code, _, err) = CliRunner.Run("sample", "--model", P4, "--device", "cpu", "--steps", "3", "--count", "6", "--out-dir", dir, "--shard", shard);
        Assert.Equal(2, code);
        Assert.Contains(message, err);
        Assert.Single(err.Trim().Split('\n'));
        Assert.False(Directory.Exists(dir));
    }

    [Fact]
    public void SchedulerVariables_PickTheShard_AndRefuseNonNumbers()
    {
        Func<string, string?> Env(params (string K, string V)[] vars) => k => vars.FirstOrDefault(v => v.K == k).V;
        Assert.Equal(new Shard(2, 4), Shard.Resolve(null, Env(("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_MIN", "1"), ("SLURM_ARRAY_TASK_COUNT", "4"))));
        Assert.Equal(new Shard(1, 8), Shard.Resolve(null, Env(("JOB_COMPLETION_INDEX", "1"), ("BLOCKDANCE_SHARD_COUNT", "8"))));
        Assert.Equal(new Shard(0, 2), Shard.Resolve("0/2", Env(("SLURM_ARRAY_TASK_ID", "3"), ("SLURM_ARRAY_TASK_COUNT", "4"))));   // --shard wins
        Assert.Equal(Shard.All, Shard.Resolve(null, Env()));
        var e = Assert.Throws<UsageException>(() => Shard.Resolve(null, Env(("SLURM_ARRAY_TASK_ID", "x1"), ("SLURM_ARRAY_TASK_COUNT", "4"))));
        Assert.Contains("SLURM_ARRAY_TASK_ID: expected an integer ≥ 0, found 'x1'", e.Message);
        Assert.Throws<UsageException>(() => Shard.Resolve(null, Env(("JOB_COMPLETION_INDEX", "1"))));
        Assert.Throws<UsageException>(() => Shard.Resolve(null, Env(("JOB_COMPLETION_INDEX", "5"), ("BLOCKDANCE_SHARD_COUNT", "5"))));
        Assert.Equal([1L, 4L, 7L], new Shard(1, 3).Indices(9));
    }
}
