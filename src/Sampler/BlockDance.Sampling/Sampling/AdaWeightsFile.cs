// The file of a BlockDance-Ada decision network (format: src/Cache/AdaDecisionNetwork.cs's header): safetensors with
// fc1/fc2 weights (and fc3, the boundary head, in a learned-boundary file) and the training facts in __metadata__.
// The metadata's format names the kind: blockdance-ada-v1 (fixed boundary) or blockdance-ada-boundary-v1 (learned);
// `condition` what the network reads beside z_ρ: absent (every file written before caption models: a class one-hot,
// `classes` wide) or "caption" (a caption summary, `caption_width` wide); `input_shape` "C,H,W" or, for a video model,
// "C,F,H,W". A file whose tensors or entries do not match its kind is refused naming both. Kept beside the sampling loop so that src/Cache needs no
// file I/O (it depends on the device layer only).
using System.Globalization;
using BlockDance.Cache;
using BlockDance.Transformer.IO;

namespace BlockDance.Sampling;

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
        var format = md.GetValueOrDefault("format", "(missing)");
        if (format != AdaPolicyInfo.Format && format != AdaPolicyInfo.BoundaryFormat)
            throw new SafeTensorsException(path, null, $"__metadata__ 'format': expected {AdaPolicyInfo.Format} or {AdaPolicyInfo.BoundaryFormat} (an Ada policy written by 'blockdance train-ada'), found '{format}'");
        bool learned = format == AdaPolicyInfo.BoundaryFormat;
        if (!learned && (f.Contains("fc3.weight") || f.Contains("fc3.bias") || md.ContainsKey("boundaries")))
            throw new SafeTensorsException(path, null, $"format {format} is a fixed-boundary policy (fc1, fc2), found a boundary head (fc3 or 'boundaries'); expected format {AdaPolicyInfo.BoundaryFormat} for it");
        var shape = md.GetValueOrDefault("input_shape", "").Split(',');
        if (shape.Length is not (3 or 4) || !shape.All(s => int.TryParse(s, out var v) && v > 0))
            throw new SafeTensorsException(path, null, $"__metadata__ 'input_shape': expected \"C,H,W\" (or \"C,F,H,W\" for video), found '{md.GetValueOrDefault("input_shape", "(missing)")}'");
        double lambda = double.TryParse(md.GetValueOrDefault("lambda", "2"), NumberStyles.Float, CultureInfo.InvariantCulture, out var l) ? l : 2;
        int steps = Int("steps"), rho = Int("rho");
        if (steps < 2 || rho < 1 || rho >= steps)
            throw new SafeTensorsException(path, null, $"__metadata__: expected 1 ≤ rho < steps, found steps {steps}, rho {rho}");
        var dims = shape.Select(int.Parse).ToArray();
        var (c, frames, hh, ww) = dims.Length == 4 ? (dims[0], dims[1], dims[2], dims[3]) : (dims[0], 0, dims[1], dims[2]);
        var condition = md.GetValueOrDefault("condition", "class");
        if (condition != "class" && condition != AdaPolicyInfo.CaptionCondition)
            throw new SafeTensorsException(path, null, $"__metadata__ 'condition': expected class or {AdaPolicyInfo.CaptionCondition}, found '{condition}'");
        bool caption = condition == AdaPolicyInfo.CaptionCondition;
        if (caption && md.ContainsKey("classes"))
            throw new SafeTensorsException(path, null, "__metadata__: a caption-conditioned policy (condition caption) has no 'classes', found one");
        int classes = caption ? 0 : Int("classes"), width = caption ? Int("caption_width") : 0;
        if (caption && width < 1)
            throw new SafeTensorsException(path, null, $"__metadata__ 'caption_width': expected the caption feature width ≥ 1, found {width}");
        var info = learned
            ? AdaPolicyInfo.Learned(steps, rho, c, hh, ww, classes, Int("hidden"), Candidates(path, md, Int("boundary")), lambda, frames, width)
            : new AdaPolicyInfo(steps, rho, c, hh, ww, classes, Int("hidden"), Int("boundary"), lambda, Frames: frames, CaptionWidth: width);
        int h = info.Hidden, k = info.Decisions, d = info.InputDim, kb = info.BoundaryChoices;
        return new AdaWeights(info, f.ReadFloat32("fc1.weight", h, d), f.ReadFloat32("fc1.bias", h),
            f.ReadFloat32("fc2.weight", k, h), f.ReadFloat32("fc2.bias", k), new Dictionary<string, string>(md),
            learned ? f.ReadFloat32("fc3.weight", kb, h) : null, learned ? f.ReadFloat32("fc3.bias", kb) : null);
    }

    /// <summary>The 'boundaries' entry of a learned-boundary file: ascending distinct blocks ≥ 0, the last = 'boundary'.</summary>
    static int[] Candidates(string path, IReadOnlyDictionary<string, string> md, int boundary)
    {
        var text = md.GetValueOrDefault("boundaries", "(missing)");
        var parts = text.Split(',');
        var v = new int[parts.Length];
        bool ok = parts.Length >= 2 && parts.Select((p, i) => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out v[i])).All(x => x)
                  && v.Zip(v.Skip(1)).All(q => q.First < q.Second);
        if (!ok)
            throw new SafeTensorsException(path, null, $"__metadata__ 'boundaries': expected at least two ascending block indices \"b,b,…\", found '{text}'");
        if (v[^1] != boundary)
            throw new SafeTensorsException(path, null, $"__metadata__ 'boundary': expected the deepest of 'boundaries' ({v[^1]}), found {boundary}");
        return v;
    }

    /// <summary>Writes the policy atomically (SafeTensorsWriter: temporary file, then rename).</summary>
    public static void Save(this AdaWeights w, string path, IReadOnlyDictionary<string, string>? training = null)
    {
        var md = w.Info.ToMetadata();
        if (training != null) foreach (var (k, v) in training) md[k] = v;
        int h = w.Info.Hidden, k2 = w.Info.Decisions, d = w.Info.InputDim, kb = w.Info.BoundaryChoices;
        var tensors = new List<(string, long[], float[])>
        {
            ("fc1.weight", [h, d], w.Fc1W), ("fc1.bias", [h], w.Fc1B),
            ("fc2.weight", [k2, h], w.Fc2W), ("fc2.bias", [k2], w.Fc2B),
        };
        if (w.Info.LearnsBoundary) tensors.AddRange([("fc3.weight", [kb, h], w.Fc3W!), ("fc3.bias", [kb], w.Fc3B!)]);
        SafeTensorsWriter.Write(path, tensors, md);
    }

}
