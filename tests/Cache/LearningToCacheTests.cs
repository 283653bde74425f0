// Learning-to-Cache (--cache l2c): the rule on a synthetic router (reuse below the threshold, a branch stored exactly
// at the step before a reuse, plain compute otherwise, step 0 never reuses), the shipped router's facts
// (models/l2c_router.safetensors: (50, 6, 2), even steps compute, 240 of 600 branch evaluations below 0.5), and the
// refusals before the device starts: another step count, a model with other branches, a file that is no router, a
// router trained for another model. The matrix (MethodMatrixTests) samples it: threshold 0 = none bit for bit.
using BlockDance.Cache;
using BlockDance.Sampling;
using Xunit;

namespace BlockDance.Tests;

public class LearningToCacheTests
{
    static readonly BlockStack Dit = new(2, 4, 8, new CfgLayout(1, true), 1, 4, 10);

    static LearningToCacheConfig Router(double threshold)
    {
        // 4 steps × 2 blocks × (attn, mlp): step 1 block 0 attention 0.2, step 3 block 1 MLP 0.6; the rest 1
        var theta = Enumerable.Repeat(1f, 4 * 2 * 2).ToArray();
        theta[(1 * 2 + 0) * 2 + 0] = 0.2f;
        theta[(3 * 2 + 1) * 2 + 1] = 0.6f;
        theta[(0 * 2 + 0) * 2 + 0] = 0f;                                   // step 0 never reuses, whatever θ says
        return new LearningToCacheConfig(theta, 4, 2, threshold);
    }

    [Theory]
    [InlineData(0.5, new[] { 1 })]
    [InlineData(0.7, new[] { 1, 3 })]
    [InlineData(0.1, new int[0])]
    public void Reuses_BelowTheThreshold_NeverOnStep0(double threshold, int[] reusingSteps)
    {
        var c = Router(threshold);
        var steps = Enumerable.Range(0, 4).Where(k => Enumerable.Range(0, 2).Any(l => c.Reuses(k, l, 0) || c.Reuses(k, l, 1))).ToArray();
        Assert.Equal(reusingSteps, steps);
    }

    [Fact]
    public void Plan_StoresTheStepBeforeAReuse_ComputesOtherwise()
    {
        using var p = new LearningToCachePolicy(Router(0.7));
        p.Check(Dit, 4);
        BranchAction Use(BlockPlan plan, int block, string part) => plan.Branches!.Use(block, part);
        var dev = TestDevices.Get("cpu");
        p.Begin(Dit, dev, 4);
        var s0 = p.Plan(new StepContext(0, 4, 980, null!, [0], Dit.Cfg));
        Assert.Equal(BranchAction.Store, Use(s0, 0, "attn"));              // step 1 reuses block 0's attention
        Assert.Equal(BranchAction.Compute, Use(s0, 0, "mlp"));
        var s1 = p.Plan(new StepContext(1, 4, 660, null!, [0], Dit.Cfg));
        Assert.Equal(BranchAction.Reuse, Use(s1, 0, "attn"));
        Assert.Equal(BranchAction.Compute, Use(s1, 1, "mlp"));
        var s2 = p.Plan(new StepContext(2, 4, 330, null!, [0], Dit.Cfg));
        Assert.Equal(BranchAction.Store, Use(s2, 1, "mlp"));               // step 3 reuses block 1's MLP
        Assert.Equal(BranchAction.Compute, Use(s2, 0, "attn"));
        Assert.Equal(PlanKind.Branches, p.Plan(new StepContext(3, 4, 0, null!, [0], Dit.Cfg)).Kind);
        using var none = new LearningToCachePolicy(Router(0));
        none.Begin(Dit, dev, 4);
        Assert.Equal(PlanKind.Full, none.Plan(new StepContext(0, 4, 980, null!, [0], Dit.Cfg)).Kind);
    }

    [Fact]
    public void Check_RefusesAnotherStepCountDepthOrBranchLayout()
    {
        var p = new LearningToCachePolicy(Router(0.5));
        Assert.Throws<CacheException>(() => p.Check(Dit, 5));
        Assert.Throws<CacheException>(() => p.Check(Dit with { Depth = 3 }, 4));
        Assert.Throws<CacheException>(() => p.Check(Dit with { Branches = ["attn", "cross", "mlp"] }, 4));
    }

    [Fact]
    public void ShippedRouter_IsTheDemoModelsAndPairsItsSteps()
    {
        var path = Evaluation.MetricsTests.RepoFile("models/l2c_router.safetensors");
        Assert.NotNull(path);
        Assert.Equal("dit_mnist.safetensors", LearningToCacheFile.Model(path!));
        var c = LearningToCacheFile.Load(path!, 0.5);
        Assert.Equal((50, 6), (c.Steps, c.Depth));
        int reused = 0;
        for (int k = 0; k < 50; k++)
            for (int l = 0; l < 6; l++)
                for (int b = 0; b < 2; b++)
                    if (c.Reuses(k, l, b)) { reused++; Assert.True(k % 2 == 1, $"step {k} reuses: even steps fill the cache"); }
        Assert.Equal(240, reused);
    }

    [Fact]
    public void Cli_RefusesBeforeTheDeviceStarts()
    {
        var dir = CliRunner.TempDir();
        string Out() => Path.Combine(dir, "x.png");
        var fixture = CliRunner.Fixture("dit_p4.weights.safetensors");
        var (code, _, err) = CliRunner.Run("sample", "--cache", "l2c", "--steps", "20", "--out", Out());
        Assert.Equal(2, code);
        Assert.Contains("is for 50 steps, found a run of 20", err);
        (code, _, err) = CliRunner.Run("sample", "--model", fixture, "--cache", "l2c", "--out", Out());
        Assert.Equal(2, code);
        Assert.Contains("was trained for dit_mnist.safetensors", err);
        (code, _, err) = CliRunner.Run("sample", "--cache", "l2c", "--policy", CliRunner.Fixture("dit_p4.ref.safetensors"), "--out", Out());
        Assert.Equal(2, code);
        Assert.Contains("expected a Learning-to-Cache router", err);
        (code, _, err) = CliRunner.Run("sample", "--model", CliRunner.Fixture("pixart_tiny"), "--prompt-embeds", CliRunner.Fixture("pixart_traj.safetensors"),
            "--cache", "l2c", "--out", Out());
        Assert.Equal(2, code);
        Assert.False(File.Exists(Out()));
    }
}
