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
