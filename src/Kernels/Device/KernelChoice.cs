// Which kernel version a launcher picked, logged once per device and distinct message: a slower path or a
// fallback is never silent, and a forward of 28 blocks does not print it 28 times. The one log-once helper
// of every op's dispatcher (GEMM, attention, norms, the host backend's fallbacks).
using System.Runtime.CompilerServices;

namespace BlockDance.Kernels;

public static class KernelChoice
{
    static readonly HashSet<string> said = new();
    static readonly ConditionalWeakTable<ComputeDevice, HashSet<string>> saidOn = new();

    /// <summary>Logs `message` the first time it is said on `dev`.</summary>
    public static void Once(ComputeDevice dev, string message)
    {
        var set = saidOn.GetOrCreateValue(dev);
        lock (set)
            if (!set.Add(message)) return;
        Log.Info(message);
    }

    /// <summary>Logs `message` the first time it is said in this process (choices that name their device).</summary>
    public static void Once(string message)
    {
        lock (said)
            if (!said.Add(message)) return;
        Log.Info(message);
    }
}
