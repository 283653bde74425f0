namespace BlockDance.Kernels;

/// <summary>Launch-time argument checks. These always run (an out-of-range index inside a kernel
/// aborts the whole process on the CPU accelerator), and cost nothing next to a launch.</summary>
public static class Check
{
    public static void Size(string what, long found, long expected)
    {
        if (found < expected)
            throw new ArgumentException($"{what}: expected at least {expected} elements, found {found}");
    }
}
