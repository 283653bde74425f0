// The file of a BlockDance-Ada decision network (format: src/Cache/AdaDecisionNetwork.cs's header): safetensors with
// fc1/fc2 weights and the training facts in __metadata__. Kept beside the sampling loop so that src/Cache needs no
// file I/O (it depends on the device layer only).
using System.Globalization;
using BlockDance.Cache;
using BlockDance.Transformer.IO;

namespace BlockDance.Sampler;

public static class AdaWeightsFile
{
    /// <summary>Reads a policy file; missing keys or mismatched shapes are SafeTensorsExceptions naming expected and found.</summary>
    public static AdaWeights Load(string path)
    {
        using var f = SafeTensorsFile.Open(path);
        var md = f.Metadata;
        int Int(string key)
        {
            if (!md.TryGetValue(key, out var s))
                throw new SafeTensorsException(path, null, $"__metadata__ has no '{key}'; expected an Ada policy written by 'blockdance train-ada' ({AdaPolicyInfo.Format})");
            return int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v
                : throw new SafeTensorsException(path, null, $"__metadata__ '{key}': expected an integer, found '{s}'");
        }
        var shape = md.GetValueOrDefault("input_shape", "").Split(',');
        if (shape.Length != 3 || !shape.All(s => int.TryParse(s, out var v) && v > 0))
            throw new SafeTensorsException(path, null, $"__metadata__ 'input_shape': expected \"C,H,W\", found '{md.GetValueOrDefault("input_shape", "(missing)")}'");
        double lambda = double.TryParse(md.GetValueOrDefault("lambda", "2"), NumberStyles.Float, CultureInfo.InvariantCulture, out var l) ? l : 2;
        int steps = Int("steps"), rho = Int("rho");
        if (steps < 2 || rho < 1 || rho >= steps)
            throw new SafeTensorsException(path, null, $"__metadata__: expected 1 ≤ rho < steps, found steps {steps}, rho {rho}");
        var info = new AdaPolicyInfo(steps, rho, int.Parse(shape[0]), int.Parse(shape[1]), int.Parse(shape[2]),
            Int("classes"), Int("hidden"), Int("boundary"), lambda);
        int h = info.Hidden, k = info.Decisions, d = info.InputDim;
        return new AdaWeights(info, f.ReadFloat32("fc1.weight", h, d), f.ReadFloat32("fc1.bias", h),
            f.ReadFloat32("fc2.weight", k, h), f.ReadFloat32("fc2.bias", k), new Dictionary<string, string>(md));
    }

    /// <summary>Writes the policy atomically (SafeTensorsWriter: temporary file, then rename).</summary>
    public static void Save(this AdaWeights w, string path, IReadOnlyDictionary<string, string>? training = null)
    {
        var md = w.Info.ToMetadata();
        if (training != null) foreach (var (k, v) in training) md[k] = v;
        int h = w.Info.Hidden, k2 = w.Info.Decisions, d = w.Info.InputDim;
        SafeTensorsWriter.Write(path,
        [
            ("fc1.weight", [h, d], w.Fc1W), ("fc1.bias", [h], w.Fc1B),
            ("fc2.weight", [k2, h], w.Fc2W), ("fc2.bias", [k2], w.Fc2B),
        ], md);
    }

}
