// Which part of a sharded job this process runs: `--shard i/n` takes samples i, i + n, i + 2n, … of the
// global list. Without --shard, the cluster scheduler's variables are read when present (and logged):
//   Slurm job arrays         SLURM_ARRAY_TASK_ID − SLURM_ARRAY_TASK_MIN (0 when unset) of SLURM_ARRAY_TASK_COUNT
//   Kubernetes Indexed Jobs  JOB_COMPLETION_INDEX of BLOCKDANCE_SHARD_COUNT (set it to the Job's completions;
//                            Kubernetes does not expose the count to the pod)
// Otherwise the process is shard 0/1 (everything). The work must split evenly: n divides the sample count.
using System.Globalization;
using BlockDance.Kernels;

namespace BlockDance.Sampler.Cli;

public sealed record Shard(int Index, int Count)
{
    public static readonly Shard All = new(0, 1);
    public override string ToString() => $"{Index}/{Count}";

    /// <summary>The global sample indices of this shard out of `total`.</summary>
    public IEnumerable<long> Indices(long total)
    {
        for (long k = Index; k < total; k += Count) yield return k;
    }

    public static Shard Resolve(string? option, Func<string, string?> env)
    {
        if (option != null) return Parse(option, "--shard");
        if (env("SLURM_ARRAY_TASK_ID") is string id)
        {
            int task = Number(id, "SLURM_ARRAY_TASK_ID", 0);
            int min = env("SLURM_ARRAY_TASK_MIN") is string m ? Number(m, "SLURM_ARRAY_TASK_MIN", 0) : 0;
            int count = Number(env("SLURM_ARRAY_TASK_COUNT") ?? throw new UsageException(
                "SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not: expected both (a Slurm job array), or pass --shard i/n"),
                "SLURM_ARRAY_TASK_COUNT", 1);
            var s = Check(task - min, count, $"SLURM_ARRAY_TASK_ID={id} (min {min}) of SLURM_ARRAY_TASK_COUNT={count}");
            Log.Info($"shard {s} from Slurm: SLURM_ARRAY_TASK_ID={id}, SLURM_ARRAY_TASK_MIN={min}, SLURM_ARRAY_TASK_COUNT={count}");
            return s;
        }
        if (env("JOB_COMPLETION_INDEX") is string job)
        {
            int index = Number(job, "JOB_COMPLETION_INDEX", 0);
            int count = Number(env("BLOCKDANCE_SHARD_COUNT") ?? throw new UsageException(
                "JOB_COMPLETION_INDEX is set but BLOCKDANCE_SHARD_COUNT is not: expected the Job's completions in BLOCKDANCE_SHARD_COUNT, or pass --shard i/n"),
                "BLOCKDANCE_SHARD_COUNT", 1);
            var s = Check(index, count, $"JOB_COMPLETION_INDEX={job} of BLOCKDANCE_SHARD_COUNT={count}");
            Log.Info($"shard {s} from a Kubernetes Indexed Job: JOB_COMPLETION_INDEX={job}, BLOCKDANCE_SHARD_COUNT={count}");
            return s;
        }
        return All;
    }

    public static Shard Parse(string text, string what)
    {
        var parts = text.Split('/');
        if (parts.Length != 2) throw new UsageException($"{what}: expected i/n (e.g. 0/4), found '{text}'");
        return Check(Number(parts[0], what + " index", 0), Number(parts[1], what + " count", 1), $"{what} {text}");
    }

    static Shard Check(int i, int n, string what) =>
        i >= 0 && i < n ? new Shard(i, n) : throw new UsageException($"{what}: expected a shard index 0..{n - 1}, found {i}");

    static int Number(string s, string what, int min) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v >= min ? v
            : throw new UsageException($"{what}: expected an integer ≥ {min}, found '{s}'");
}
