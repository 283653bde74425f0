// Which kernel version a launcher picked, logged once per distinct message (a slower path is never silent,
// and a forward of 28 blocks does not print it 28 times).
namespace BlockDance.Kernels.Harness;

public static class KernelChoice
{
    static readonly HashSet<string> said = new();

    public static void Once(string message)
    {
        lock (said)
            if (!said.Add(message)) return;
        Log.Info(message);
    }
}
