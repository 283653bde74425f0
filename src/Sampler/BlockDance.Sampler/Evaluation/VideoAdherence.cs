// Prompt adherence of a text-to-video digit model (the moving-digits demo): per frame, the demo classifier reads the
// 14×14 window centred on the frame's ink centroid (MNIST centres its digits by mass; outside the frame is background);
// per clip, the centroid's motion from the first to the last frame, by its dominant axis and sign, is compared with the
// direction the prompt names. tools/train/train_stdit.py --adherence computes the same on PyTorch's samples.
namespace BlockDance.Sampler.Evaluation;

public static class VideoAdherence
{
    /// <summary>The ink centroid (y, x) of an (h, w) frame in [0, 1] (negative values weigh 0; an empty frame: (0, 0)).</summary>
    public static (double Y, double X) Centroid(ReadOnlySpan<float> frame, int h, int w)
    {
        double s = 0, sy = 0, sx = 0;
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++)
            {
                double v = Math.Max(0f, frame[y * w + x]);
                s += v; sy += v * y; sx += v * x;
            }
        return s > 0 ? (sy / s, sx / s) : (0, 0);
    }

    /// <summary>The 14×14 window of rows/columns c − 7 … c + 6 around the rounded centroid, zero outside the frame.</summary>
    public static float[] Window(ReadOnlySpan<float> frame, int h, int w)
    {
        const int side = DigitClassifier.Side, half = side / 2;
        var (cy, cx) = Centroid(frame, h, w);
        int y0 = (int)Math.Round(cy) - half, x0 = (int)Math.Round(cx) - half;   // round half to even, as Python's round
        var win = new float[side * side];
        for (int y = 0; y < side; y++)
            for (int x = 0; x < side; x++)
            {
                int fy = y0 + y, fx = x0 + x;
                if (fy >= 0 && fy < h && fx >= 0 && fx < w) win[y * side + x] = frame[fy * w + fx];
            }
        return win;
    }

    /// <summary>left/right/up/down: the dominant axis and sign of the centroid's move from the first frame to the last.</summary>
    public static string Direction(ReadOnlySpan<float> first, ReadOnlySpan<float> last, int h, int w)
    {
        var (y0, x0) = Centroid(first, h, w);
        var (y1, x1) = Centroid(last, h, w);
        double dy = y1 - y0, dx = x1 - x0;
        return Math.Abs(dx) >= Math.Abs(dy) ? (dx > 0 ? "right" : "left") : (dy > 0 ? "down" : "up");
    }

    /// <summary>Every frame of n clips (n, T, h, w) in [0, 1] as classifier windows (n·T, 196), clip-major.</summary>
    public static float[] Windows(float[] clips, int n, int frames, int h, int w)
    {
        int px = DigitClassifier.Pixels;
        var all = new float[(long)n * frames * px];
        for (int f = 0; f < n * frames; f++)
            Window(clips.AsSpan(f * h * w, h * w), h, w).CopyTo(all, (long)f * px);
        return all;
    }
}
