// The MNIST digit classifier that eval uses for accuracy and FID features, run on the device.
//
//   x (N, 196)   14×14 digit in [0, 1], row-major
//   h1 = ReLU(fc1 x)      (N, 256)     Gemm, Relu epilogue
//   f  = ReLU(fc2 h1)     (N, 128)     Gemm, Relu epilogue — the penultimate feature used for FID
//   logits = fc3 f        (N, 10)      Gemm
//
// Weights: models/mnist_classifier.safetensors (tools/train/train_classifier.py; keys fc1/fc2/fc3
// .weight [out, in] and .bias, F32). Held-out accuracy 0.967 on real digits (models/README.md).
// Samples are mapped from [−1, 1] to [0, 1] with a clamp on the host (ImageMetrics.ToUnitRange):
// eval is not the hot path, and the samples are on the host for PSNR/SSIM anyway.
using BlockDance.Kernels;
using BlockDance.Transformer;
using BlockDance.Transformer.IO;

namespace BlockDance.Sampler.Evaluation;

/// <summary>Logits (N, 10) and penultimate features (N, 128) of a batch of digits.</summary>
public sealed record ClassifierOutput(float[] Logits, float[] Features, int Count)
{
    public int Predicted(int i)
    {
        int best = 0;
        for (int c = 1; c < DigitClassifier.Classes; c++)
            if (Logits[i * DigitClassifier.Classes + c] > Logits[i * DigitClassifier.Classes + best]) best = c;
        return best;
    }

    /// <summary>Softmax probabilities of sample i.</summary>
    public double[] Probabilities(int i)
    {
        var l = Logits.AsSpan(i * DigitClassifier.Classes, DigitClassifier.Classes);
        double max = double.NegativeInfinity;
        foreach (var v in l) max = Math.Max(max, v);
        var p = new double[l.Length];
        double sum = 0;
        for (int c = 0; c < l.Length; c++) sum += p[c] = Math.Exp(l[c] - max);
        for (int c = 0; c < l.Length; c++) p[c] /= sum;
        return p;
    }

    /// <summary>Fraction of samples whose argmax equals the requested class.</summary>
    public double Accuracy(IReadOnlyList<int> labels)
    {
        if (labels.Count != Count) throw new ArgumentException($"accuracy: {labels.Count} labels for {Count} samples");
        int hits = 0;
        for (int i = 0; i < Count; i++) if (Predicted(i) == labels[i]) hits++;
        return hits / (double)Count;
    }
}

public sealed class DigitClassifier : IDisposable
{
    public const int Side = 14, Pixels = Side * Side, Hidden = 256, FeatureDim = 128, Classes = 10;
    public const string DefaultPath = "models/mnist_classifier.safetensors";

    readonly ComputeDevice dev;
    readonly Linear fc1, fc2, fc3;

    public DigitClassifier(ComputeDevice dev, Func<string, long[], float[]> read)
    {
        this.dev = dev;
        Linear Load(string key, int o, int i) => new(
            Tensor.FromHost(dev, key + ".weight", read(key + ".weight", [o, i]), o, i),
            Tensor.FromHost(dev, key + ".bias", read(key + ".bias", [o]), o));
        fc1 = Load("fc1", Hidden, Pixels);
        fc2 = Load("fc2", FeatureDim, Hidden);
        fc3 = Load("fc3", Classes, FeatureDim);
    }

    /// <summary>Loads the classifier file; shape or key mismatches are SafeTensorsExceptions naming expected and found.</summary>
    public static DigitClassifier Load(ComputeDevice dev, string path)
    {
        using var f = SafeTensorsFile.Open(path);
        return new DigitClassifier(dev, (name, shape) => f.ReadFloat32(name, shape));
    }

    /// <summary>Runs the MLP on n digits (n, 196) already in [0, 1].</summary>
    public ClassifierOutput Run(float[] digits01, int n)
    {
        if (digits01.Length != (long)n * Pixels)
            throw new ArgumentException($"classifier: expected {n}×{Pixels} values (14×14 digits), found {digits01.Length}");
        using var x = Tensor.FromHost(dev, "classifier.x", digits01, n, Pixels);
        using var h1 = Tensor.Allocate(dev, "classifier.h1", n, Hidden);
        using var feat = Tensor.Allocate(dev, "classifier.features", n, FeatureDim);
        using var logits = Tensor.Allocate(dev, "classifier.logits", n, Classes);
        fc1.Forward(x, h1, n, Epilogue.Relu);          // (N, 256)
        fc2.Forward(h1, feat, n, Epilogue.Relu);       // (N, 128)
        fc3.Forward(feat, logits, n);                  // (N, 10)
        return new ClassifierOutput(logits.ToHost(), feat.ToHost(), n);
    }

    /// <summary>Samples (N, 1, 14, 14) in [−1, 1] → [0, 1] (clamped) → the MLP.</summary>
    public ClassifierOutput RunOnSamples(float[] samples, int n) => Run(ImageMetrics.ToUnitRange(samples), n);

    /// <summary>Host reference of the same MLP in double (tests).</summary>
    public static ClassifierOutput Reference(Func<string, long[], float[]> read, float[] digits01, int n)
    {
        float[] Layer(float[] x, string key, int o, int i, bool relu)
        {
            var w = read(key + ".weight", [o, i]);
            var b = read(key + ".bias", [o]);
            var y = new float[n * o];
            for (int r = 0; r < n; r++)
                for (int c = 0; c < o; c++)
                {
                    double acc = b[c];
                    for (int p = 0; p < i; p++) acc += (double)x[r * i + p] * w[c * i + p];
                    y[r * o + c] = relu ? (float)Math.Max(0, acc) : (float)acc;
                }
            return y;
        }
        var h = Layer(digits01, "fc1", Hidden, Pixels, true);
        var f = Layer(h, "fc2", FeatureDim, Hidden, true);
        return new ClassifierOutput(Layer(f, "fc3", Classes, FeatureDim, false), f, n);
    }

    public void Dispose() { fc1.Dispose(); fc2.Dispose(); fc3.Dispose(); }
}
