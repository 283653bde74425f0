namespace BlockDance.Kernels;

/// <summary>Console logging for the engine. Every slower path or fallback goes through Info.</summary>
public static class Log
{
    public static bool Quiet { get; set; }
    public static void Info(string message)
    {
        if (!Quiet) Console.Error.WriteLine($"[blockdance] {message}");
    }
}
