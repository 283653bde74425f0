// How the program reports what escapes a command: bad input is one line and exit 2, an internal
// fault is a distinct one-line "internal error" and exit 70, the stack trace only behind --verbose.
using BlockDance.Kernels;
using BlockDance.Sampler;
using Xunit;

namespace BlockDance.Tests;

public class ProgramErrorTests
{
    static (int Code, string Err) Guard(Func<int> command, bool verbose)
    {
        var old = Console.Error;
        var err = new StringWriter();
        Console.SetError(err);
        try { return (Program.Guarded(command, verbose), err.ToString()); }
        finally { Console.SetError(old); }
    }

    [Fact]
    public void InputException_IsOneLine_Exit2()
    {
        var (code, err) = Guard(() => throw new InvalidValueException("guidance scale", "≥ 1", "0.5"), verbose: false);
        Assert.Equal(Program.ExitBadInput, code);
        Assert.Equal("error: guidance scale: expected ≥ 1, found 0.5", err.TrimEnd());
    }

    [Fact]
    public void ArgumentException_IsAnInternalError_Exit70_WithoutTrace()
    {
        var (code, err) = Guard(() => throw new ArgumentException("a bug"), verbose: false);
        Assert.Equal(Program.ExitInternal, code);
        Assert.Single(err.TrimEnd().Split('\n'));
        Assert.StartsWith("internal error: ArgumentException: a bug", err);
    }

    [Fact]
    public void Verbose_PrintsTheStackTrace()
    {
        var (code, err) = Guard(() => throw new InvalidOperationException("a bug"), verbose: true);
        Assert.Equal(Program.ExitInternal, code);
        Assert.Contains("   at ", err);
    }

    [Fact]
    public void VerboseFlag_IsAcceptedAnywhere_AndBadInputStaysExit2()
    {
        var (code, _, err) = CliRunner.Run("sample", "--verbose", "--cfg", "0.5", "--model", CliRunner.Fixture("dit_p4.weights.safetensors"));
        Assert.Equal(2, code);
        Assert.StartsWith("error: ", err);
    }
}
