// Which kernel first produced a NaN/Inf: a diagnostic mode of KernelCache (KernelCache.Trace), for a run that went
// non-finite from finite inputs. Every launcher KernelCache hands out is wrapped so that, around each launch, the
// device is synchronized and the non-finite values of every float view argument are counted on the host, before and
// after; the first launch after which an argument holds more of them than before is the kernel that made them.
// Counting before and after (not after only) keeps buffers that hold stale garbage from being blamed on the kernel
// that merely passes them. Slow (two synchronizations and a host copy of every argument per launch): it runs only to
// explain a failure (the sampling session re-runs the failing batch with it, under --verbose). Kernels that take their
// float data inside a struct argument, and host kernels (KernelCache.CountHost), are not seen.
using System.Linq.Expressions;
using System.Reflection;
using ILGPU;
using ILGPU.Runtime;

namespace BlockDance.Kernels;

/// <summary>Thrown by a trace at the first launch whose output went non-finite.</summary>
public sealed class NonFiniteKernelException(string kernel, string context, long launch)
    : Exception($"kernel '{kernel}' ({context}, launch {launch} of the trace) was the first whose output went non-finite")
{
    public string Kernel => kernel;
    public string Context => context;
}

public sealed class NonFiniteTrace(Accelerator accelerator)
{
    long launches;
    long[] before = [];
    readonly Dictionary<string, Delegate> wrapped = new();

    /// <summary>Where the run is (e.g. "step 3 of 10"), named in the finding.</summary>
    public string Context { get; set; } = "";

    internal T Wrap<T>(string name, T inner) where T : Delegate
    {
        if (wrapped.TryGetValue(name, out var w)) return (T)w;
        var t = Build(name, inner);
        wrapped[name] = t;
        return t;
    }

    T Build<T>(string name, T inner) where T : Delegate
    {
        var invoke = typeof(T).GetMethod("Invoke")!;
        var ps = invoke.GetParameters().Select(p => Expression.Parameter(p.ParameterType, p.Name)).ToArray();
        var args = Expression.Variable(typeof(object[]), "args");
        var self = Expression.Constant(this);
        var body = Expression.Block([args],
            Expression.Assign(args, Expression.NewArrayInit(typeof(object), ps.Select(p => Expression.Convert(p, typeof(object))))),
            Expression.Call(self, Method(nameof(Before)), args),
            Expression.Invoke(Expression.Constant(inner), ps),
            Expression.Call(self, Method(nameof(After)), Expression.Constant(name), args));
        return Expression.Lambda<T>(body, ps).Compile();
    }

    static MethodInfo Method(string name) => typeof(NonFiniteTrace).GetMethod(name, BindingFlags.NonPublic | BindingFlags.Instance)!;

    void Before(object[] args) => before = Counts(args);

    void After(string name, object[] args)
    {
        launches++;
        var after = Counts(args);
        for (int i = 0; i < after.Length; i++)
            if (after[i] > before[i]) throw new NonFiniteKernelException(name, Context, launches);
    }

    long[] Counts(object[] args)
    {
        accelerator.Synchronize();
        var counts = new long[args.Length];
        for (int i = 0; i < args.Length; i++)
            if (args[i] is ArrayView<float> v && v.Length > 0)
            {
                var host = new float[v.Length];
                v.CopyToCPU(host);
                counts[i] = NonFinite.CountReference(host);
            }
        return counts;
    }
}
