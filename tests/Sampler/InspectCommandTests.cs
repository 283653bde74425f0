using Xunit;

namespace BlockDance.Tests;

public class InspectCommandTests
{
    [Fact]
    public void Inspect_PrintsTensorsAndDetectedConfig()
    {
        var (code, stdout, _) = CliRunner.Run("inspect", CliRunner.Fixture("dit_p4.weights.safetensors"));
        Assert.Equal(0, code);
        Assert.Contains("blocks.1.mlp.fc2.weight", stdout);
        Assert.Contains("F16", stdout);
        Assert.Contains("config: DiT(depth 2, D 144)/4: depth 2, D 144, 2 heads (hd 72), patch 4, 3→6 ch, input 16×16 (16 tokens), 5 classes", stdout);
    }

    [Fact]
    public void Inspect_DiffusersFolder_And_MissingFile()
    {
        var (code, stdout, _) = CliRunner.Run("inspect", Path.Combine(CliRunner.Fixtures, "dit_p2_diffusers"));
        Assert.Equal(0, code);
        Assert.Contains("config: DiT(depth 2, D 64)/2", stdout);
        var (code2, _, err) = CliRunner.Run("inspect", "/nonexistent/model.safetensors");
        Assert.Equal(2, code2);
        Assert.Contains("not found", err);
    }
}
