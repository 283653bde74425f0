// scheduler/scheduler_config.json and model_index.json of a diffusers folder, checked against the diffusion
// process the engine implements (Sampler/Library/Diffusion: Schedule, DpmSolver):
//   1000 training timesteps, linear betas 1e-4 … 0.02, ε prediction, DPM-Solver++ 2M (midpoint, lower order at
//   the end, final σ 0) on "linspace" timesteps, no thresholding, no Karras/exponential/beta/Lu sigmas.
// A folder asking for anything else (v_prediction, scaled_linear, 10 timesteps, solver order 3, Karras sigmas,
// trained or negative betas …) is refused with one line naming the field: sampling it with the built-in
// schedule would give images from a process the folder did not ask for. Fields that do not change the
// samples (_diffusers_version, sample_max_value when thresholding is off) are not looked at.
using System.Text.Json;

namespace BlockDance.Transformer.IO;

public static class SchedulerConfig
{
    public const string FileName = "scheduler_config.json";
    const string Why = "the schedule the engine implements";

    /// <summary>Checks `folder`/scheduler/scheduler_config.json when the folder has one (a folder without it uses the built-in schedule).</summary>
    public static void CheckFolder(string folder)
    {
        var path = Path.Combine(folder, "scheduler", FileName);
        if (File.Exists(path) || FileKind.Of(path) is not PathKind.Missing) Check(ConfigJson.Read(path, "scheduler config"));
    }

    public static void Check(ConfigJson c)
    {
        c.String("_class_name", ["DPMSolverMultistepScheduler"], "DPMSolverMultistepScheduler");
        c.Int("num_train_timesteps", 1000, 1000, 1000);
        c.String("beta_schedule", ["linear"], "linear");
        c.Number("beta_start", 1e-4, 1e-4, 1e-4);
        c.Number("beta_end", 0.02, 0.02, 0.02);
        if (c.Get("trained_betas", nullIsAbsent: true) is { } tb) throw c.Error("trained_betas", "null (linear betas)", ConfigJson.Raw(tb));
        c.String("prediction_type", ["epsilon"], "epsilon");
        c.String("algorithm_type", ["dpmsolver++"], "dpmsolver++");
        c.String("solver_type", ["midpoint"], "midpoint");
        c.Int("solver_order", 2, 2, 2);
        c.String("timestep_spacing", ["linspace"], "linspace");
        c.Int("steps_offset", 0, 0, 0);
        c.String("final_sigmas_type", ["zero"], "zero", nullIsAbsent: true);
        c.RequireBool("lower_order_final", true, Why);
        c.RequireBool("euler_at_final", false, Why);
        c.RequireBool("thresholding", false, Why);
        c.RequireBool("use_karras_sigmas", false, Why);
        c.RequireBool("use_exponential_sigmas", false, Why);
        c.RequireBool("use_beta_sigmas", false, Why);
        c.RequireBool("use_lu_lambdas", false, Why);
        c.RequireBool("use_flow_sigmas", false, Why);
        c.RequireBool("rescale_betas_zero_snr", false, Why);
        c.RequireBool("clip_sample", false, Why);
        if (c.Get("variance_type", nullIsAbsent: true) is { } vt) throw c.Error("variance_type", "null (the ε half of the output is used)", ConfigJson.Raw(vt));
        // λ clipping: diffusers writes -Infinity (no clipping) through Python's json; a finite bound is not implemented.
        if (c.Get("lambda_min_clipped", nullIsAbsent: true) is { } lm && !(lm.ValueKind == JsonValueKind.String && lm.GetString() == "-Infinity"))
            throw c.Error("lambda_min_clipped", "-Infinity (no clipping)", ConfigJson.Raw(lm));
    }

    /// <summary>model_index.json, when present: a JSON object naming the pipeline parts this engine loads.</summary>
    public static void CheckModelIndex(string folder, string[] pipelines, params (string Part, string Class)[] parts)
    {
        var path = Path.Combine(folder, "model_index.json");
        if (!File.Exists(path) && FileKind.Of(path) is PathKind.Missing) return;
        var c = ConfigJson.Read(path, "model_index.json");
        c.String("_class_name", pipelines, pipelines[0]);
        foreach (var (part, cls) in parts)
        {
            if (c.Get(part, nullIsAbsent: true) is not JsonElement v) continue;
            bool ok = v.ValueKind == JsonValueKind.Array && v.GetArrayLength() == 2 && v[1].ValueKind == JsonValueKind.String && v[1].GetString() == cls;
            if (!ok) throw c.Error(part, $"[\"diffusers\", \"{cls}\"]", ConfigJson.Raw(v));
        }
    }
}
