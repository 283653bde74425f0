// Runs the blockdance program in-process and captures its exit code and output.

namespace BlockDance.Tests;

public static class CliRunner
{
    public static readonly string Fixtures = Path.Combine(AppContext.BaseDirectory, "fixtures");
    public static string Fixture(string name) => Path.Combine(Fixtures, name);

    public static (int Code, string Out, string Err) Run(params string[] args)
    {
        var oldOut = Console.Out; var oldErr = Console.Error;
        var so = new StringWriter(); var se = new StringWriter();
        Console.SetOut(so); Console.SetError(se);
        try { return (BlockDance.Sampler.Program.Main(args), so.ToString(), se.ToString()); }
        finally { Console.SetOut(oldOut); Console.SetError(oldErr); }
    }

    public static string TempDir()
    {
        var d = Path.Combine(Path.GetTempPath(), "blockdance-tests", Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(d);
        return d;
    }
}
