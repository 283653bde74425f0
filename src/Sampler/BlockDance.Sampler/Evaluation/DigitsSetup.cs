// Which classifier and FID reference statistics `blockdance eval` uses, or why it uses none.
//
//   --classifier FILE   default: mnist_classifier.safetensors next to the model, else models/ found
//                       from the working folder upwards (as the demo model is found)
//   --fid-stats FILE    default: mnist_fid_stats.safetensors next to the classifier
//                       (written by tools/train/train_classifier.py --fid-stats)
//
// The classifier reads 1-channel 14×14 digits: of a 10-class DiT (accuracy: the requested class), or of a text-to-image
// model whose prompts each name one digit (accuracy: prompt adherence, PromptDigits). For any other model the accuracy and
// FID columns are n/a (an explicit --classifier is then an error); a missing default file is not an
// error either, only a note; a named file that does not exist is (exit 2).
using BlockDance.Sampler.Cli;
using BlockDance.Transformer;

namespace BlockDance.Sampler.Evaluation;

public sealed record DigitsSetup(string? ClassifierPath, FidStats? Stats, string? StatsPath, string? Reason)
{
    public static DigitsSetup Resolve(Args a, string modelPath, BlockShape cfg)
    {
        bool digitModel = cfg.InChannels == 1 && cfg.InputSize == DigitClassifier.Side && cfg.Classes == DigitClassifier.Classes;
        if (!digitModel)
        {
            var what = $"the model makes {cfg.InChannels}-channel {cfg.InputSize}×{cfg.InputSize} images of {cfg.Classes} classes";
            if (a.Has("classifier") || a.Has("fid-stats"))
                throw new UsageException($"--classifier/--fid-stats: the digit classifier reads 1-channel 14×14 images of 10 classes; {what}");
            return new(null, null, null, $"accuracy / FID: n/a: the MNIST digit classifier reads 1-channel 14×14 images of 10 classes; {what}.");
        }
        return Files(a, modelPath);
    }

    /// <summary>A text-to-image model (PixArt-α) whose prompts each name one digit (`why` null; EvalSubject.Targets) and
    /// whose images are 1-channel 14×14 (the text-to-image demo): accuracy is prompt adherence. Otherwise n/a, and
    /// naming a classifier is an error.</summary>
    public static DigitsSetup ForCaptions(Args a, string modelPath, BlockShape cfg, string kind, string? why)
    {
        bool digitImages = cfg.Frames == 0 && cfg.InChannels == 1 && cfg.InputSize == DigitClassifier.Side;
        if (!digitImages)
            why = $"the digit classifier reads 1-channel 14×14 images; this text-conditional {kind} model makes " +
                  (cfg.Frames > 0 ? $"{cfg.Frames}-frame videos" : $"{cfg.InChannels}-channel {cfg.InputSize}×{cfg.InputSize} images");
        if (why is null) return Files(a, modelPath);
        if (a.Has("classifier") || a.Has("fid-stats")) throw new UsageException($"--classifier/--fid-stats: {why}");
        return new(null, null, null, $"accuracy / FID: n/a: {why}.");
    }

    /// <summary>The classifier and FID statistics files (named, or found by default), for a model the classifier reads.</summary>
    static DigitsSetup Files(Args a, string modelPath)
    {
        string? classifier = a.Get("classifier") ?? Find(modelPath, DigitClassifier.DefaultPath);
        if (classifier is null)
            return new(null, null, null, $"accuracy / FID: n/a: no classifier found ({DigitClassifier.DefaultPath} next to the model or " +
                                         "under the working folder); pass --classifier FILE.");
        if (!File.Exists(classifier)) throw new UsageException($"--classifier {classifier}: file not found");

        string? statsPath = a.Get("fid-stats") ?? Path.Combine(Path.GetDirectoryName(Path.GetFullPath(classifier))!, "mnist_fid_stats.safetensors");
        if (a.Has("fid-stats") && !File.Exists(statsPath)) throw new UsageException($"--fid-stats {statsPath}: file not found");
        if (!File.Exists(statsPath))
            return new(classifier, null, null, $"FID: n/a: no reference statistics at {statsPath} " +
                                               "(write them with tools/train/train_classifier.py --fid-stats, or pass --fid-stats FILE).");
        return new(classifier, FidStats.Load(statsPath, DigitClassifier.FeatureDim), statsPath, null);
    }

    /// <summary>The model's folder first, then `relative` from the working folder and its parents.</summary>
    static string? Find(string modelPath, string relative)
    {
        var besideModel = Path.Combine(Path.GetDirectoryName(Path.GetFullPath(modelPath))!, Path.GetFileName(relative));
        if (File.Exists(besideModel)) return besideModel;
        for (var dir = new DirectoryInfo(Directory.GetCurrentDirectory()); dir != null; dir = dir.Parent)
        {
            var p = Path.Combine(dir.FullName, relative);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Notes for the report: what accuracy and FID mean here, or why they are n/a.</summary>
    public IEnumerable<string> Notes(int count, bool prompts = false)
    {
        if (ClassifierPath != null)
            yield return $"accuracy: fraction of samples whose classifier argmax is the {(prompts ? "digit the sample's prompt names (prompt adherence)" : "requested class")} " +
                         $"({Path.GetFileName(ClassifierPath)}, an MLP 196-256-128-10 run on the device; 0.967 on 1,000 real held-out digits).";
        if (Stats != null)
        {
            // The stats file records what real training digits score at eval's --quick and default counts.
            var floor = Stats.Metadata.TryGetValue($"fid_train{count}_vs_stats", out var f) ? $"; {count} real training digits score {f}" : "";
            yield return $"FID: Fréchet distance between the samples' 128-d classifier features (post-ReLU fc2) and those of " +
                         $"{Stats.Count} real held-out digits ({Path.GetFileName(StatsPath)}). Not comparable with Inception FIDs; " +
                         $"biased upwards at small counts (here {count} samples{floor}): compare rows, and runs at the same count only.";
        }
        if (Reason != null) yield return Reason;
    }
}
