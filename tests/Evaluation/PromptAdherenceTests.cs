// Prompt adherence on the text-to-image demo: the digit a caption names (PromptDigits), and `eval` scoring each sample
// against its own prompt's digit with the demo classifier.
using BlockDance.Sampler.Evaluation;
using Xunit;
using Xunit.Abstractions;

namespace BlockDance.Tests;

public class PromptAdherenceTests(ITestOutputHelper output)
{
    [Theory]
    [InlineData("a handwritten seven", 7)]
    [InlineData("the digit 3", 3)]
    [InlineData("An 8 moving left", 8)]
    [InlineData("a thick zero, slanted", 0)]
    [InlineData("nine", 9)]
    [InlineData("the number 4 or four", 4)]        // the same digit twice is one digit
    [InlineData("a handwritten digit", null)]
    [InlineData("a 3 next to a 5", null)]          // two digits: nothing measurable
    [InlineData("seventeen", null)]                // words are matched whole
    [InlineData("42", null)]
    [InlineData("", null)]
    public void Digit_IsTheOneDigitThePromptNames(string prompt, int? digit) => Assert.Equal(digit, PromptDigits.Digit(prompt));

    [Theory]
    [InlineData("a four moving left", "left")]
    [InlineData("the digit 7 going UP", "up")]
    [InlineData("a 2 sliding down", "down")]
    [InlineData("a one", null)]
    [InlineData("left then right", null)]
    public void Direction_IsTheOneDirectionThePromptNames(string prompt, string? direction) => Assert.Equal(direction, PromptDigits.Direction(prompt));

    [SkippableFact]
    public void Eval_TextToImageDemo_AccuracyIsPromptAdherence()
    {
        var model = Evaluation.MetricsTests.RepoFile("models/pixart_mnist/model_index.json");
        Skip.If(model is null, "models/pixart_mnist is not committed");
        var (code, stdout, err) = CliRunner.Run("eval", "--model", Path.GetDirectoryName(model)!, "--prompt", "a handwritten seven",
            "--prompt", "the digit 3", "--device", "cpu", "--per-class", "1", "--repeats", "1", "--cache", "bd2");
        output.WriteLine(stdout + err);
        Assert.True(code == 0, err);
        Assert.Contains("2 samples per setting (1 per prompt × 2 prompt(s))", stdout);
        Assert.Matches(@"\| none ★? \|  \|.*\| inf \| 1\.0000 \| 1\.000 \| [0-9.]+ .*\| 2 \|", stdout);   // both digits as prompted
        Assert.Contains("the digit the sample's prompt names (prompt adherence)", stdout);
        // a prompt that names no digit: fidelity only, and why
        var (code2, stdout2, err2) = CliRunner.Run("eval", "--model", Path.GetDirectoryName(model)!, "--prompt", "a handwritten digit",
            "--device", "cpu", "--per-class", "1", "--steps", "4", "--cache", "bd2");
        Assert.True(code2 == 0, err2);
        Assert.Contains("accuracy / FID: n/a: the prompt \"a handwritten digit\" names no single digit", stdout2);
        var (code3, _, err3) = CliRunner.Run("eval", "--model", Path.GetDirectoryName(model)!, "--prompt", "a handwritten digit",
            "--device", "cpu", "--classifier", "models/mnist_classifier.safetensors");
        Assert.Equal(2, code3);
        Assert.Contains("--classifier/--fid-stats: the prompt \"a handwritten digit\" names no single digit", err3);
    }
}

public class VideoAdherenceTests(ITestOutputHelper output)
{
    [SkippableFact]
    public void Eval_TextToVideoDemo_ScoresFramesAndMotion()
    {
        var model = Evaluation.MetricsTests.RepoFile("models/stdit_mnist/config.json");
        Skip.If(model is null, "models/stdit_mnist is not committed");
        var (code, stdout, err) = CliRunner.Run("eval", "--model", Path.GetDirectoryName(model)!, "--prompt", "a zero moving right",
            "--device", "cpu", "--per-class", "1", "--steps", "20", "--repeats", "1", "--cache", "bd2");
        output.WriteLine(stdout + err);
        Assert.True(code == 0, err);
        Assert.Contains("| accuracy [95% CI] | motion [95% CI] | FID [95% CI] |", stdout);
        Assert.Matches(@"\| none ★? \|  \|.*\| [01]\.\d{3}[^|]* \| [01]\.000 \| n/a \| 1 \|", stdout);   // frames' digit, the clip's motion, no FID
        Assert.Contains("motion: fraction of clips whose ink centroid moves", stdout);
    }

    /// <summary>An (h, w) frame with a 2×3 block of ink whose top-left corner is (y, x).</summary>
    static float[] Frame(int h, int w, int y, int x)
    {
        var f = new float[h * w];
        for (int dy = 0; dy < 2; dy++) for (int dx = 0; dx < 3; dx++) f[(y + dy) * w + x + dx] = 1f;
        return f;
    }

    [Fact]
    public void Centroid_Window_AndDirection_OfAMovingBlock()
    {
        var a = Frame(16, 16, 5, 2);
        Assert.Equal((5.5, 3.0), VideoAdherence.Centroid(a, 16, 16));
        // the window's rows are round(5.5) − 7 … + 6 = −1 … 12 (round half to even: 6 − 7), columns 3 − 7 … = −4 … 9
        var win = VideoAdherence.Window(a, 16, 16);
        Assert.Equal(196, win.Length);
        Assert.Equal(6f, win.Sum());                                   // all the ink is inside
        Assert.Equal(1f, win[(5 + 1) * 14 + (2 + 4)]);                 // frame (5, 2) at window (6, 6)
        Assert.Equal(0f, win[0]);                                      // outside the frame: background
        Assert.Equal("right", VideoAdherence.Direction(a, Frame(16, 16, 5, 7), 16, 16));
        Assert.Equal("left", VideoAdherence.Direction(Frame(16, 16, 5, 7), a, 16, 16));
        Assert.Equal("up", VideoAdherence.Direction(Frame(16, 16, 9, 4), Frame(16, 16, 3, 5), 16, 16));
        Assert.Equal("down", VideoAdherence.Direction(Frame(16, 16, 3, 5), Frame(16, 16, 9, 4), 16, 16));
        Assert.Equal((0.0, 0.0), VideoAdherence.Centroid(new float[16 * 16], 16, 16));   // an empty frame
    }

    [Fact]
    public void EvalTable_HasAMotionColumn_OnlyWhenARowHasOne()
    {
        var i = new Interval(1, 1, 1);
        var row = new EvalRow("none", "", 1, [1], 1, 1, 1, 0, 10, i, null, i, null, 4);
        Assert.DoesNotContain("motion", EvalTable.Markdown("c", [row], []));
        var md = EvalTable.Markdown("c", [row with { Motion = new Interval(0.75, 0.5, 1) }], []);
        Assert.Contains("| accuracy [95% CI] | motion [95% CI] | FID [95% CI] |", md);
        Assert.Contains("| 1.000 | 0.750 [0.500, 1.000] | n/a | 4 |", md);
    }
}
