// The one place cached block features live on the device. A policy owns one store per run; the store
// holds, per boundary block b, the output of block b for every row of the model batch (N, T, D) —
// the B conditional rows, then (with CFG) their B unconditional duplicates — and which rows are valid.
// Only PlanRunner writes features (a Cache plan validates every row, a Refresh plan its rows); Load
// puts given features in (the Ada trainer starts episodes mid-trajectory). A buffer is allocated once,
// on first use, and handed to the blocks directly: reusing it copies nothing.
using BlockDance.Kernels;

namespace BlockDance.Cache;

public sealed class FeatureStore(ComputeDevice device, BlockStack config, string name) : IDisposable
{
    readonly int modelBatch = config.ModelBatch;
    readonly Dictionary<int, (Tensor Feature, bool[] Valid)> entries = new();

    readonly Dictionary<string, Tensor> slots = new();

    public int ModelBatch => modelBatch;
    public long Bytes => entries.Values.Sum(e => e.Feature.Bytes) + slots.Values.Sum(t => t.Bytes) + (indices?.LengthInBytes ?? 0);

    /// <summary>A named (model batch, T, D) buffer of a span plan (SpanPlan: its input, output and the history of
    /// the cached value), allocated on first use. Which rows hold a value is tracked by the policy that owns the store.</summary>
    public Tensor Slot(string key)
    {
        if (!slots.TryGetValue(key, out var t))
            slots[key] = t = Tensor.Allocate(device, $"{name}.{key}", modelBatch, config.Tokens, config.Hidden);
        return t;
    }

    readonly Dictionary<string, bool[]> slotRows = new();
    Tensor? combineWeights;

    /// <summary>Which rows of a span's history hold a value (PlanRunner sets them as rows compute).</summary>
    public bool[] Rows(string key)
    {
        if (!slotRows.TryGetValue(key, out var v)) slotRows[key] = v = new bool[modelBatch];
        return v;
    }

    /// <summary>Puts the per-row weights of one FeatureCombine launch, (model batch, 4), on the device: only for rows that
    /// differ (a per-sample decision); uniform weights are kernel arguments. The copy is queued through a page-locked
    /// staging slot (ComputeDevice.UploadQueued: no host wait); the one device buffer serves every launch, since each
    /// launch's copy runs on the stream after the launches before it have read the previous weights.</summary>
    public Tensor CombineWeights(float[] weights)
    {
        combineWeights ??= Tensor.Allocate(device, $"{name}.combine_weights", modelBatch, FeatureCombine.MaxInputs);
        if (weights.Length != combineWeights.Length)
            throw new ArgumentException($"{combineWeights.Name}: expected {combineWeights.Length} weights, got {weights.Length}");
        device.UploadQueued<float>(combineWeights.View, weights);
        return combineWeights;
    }

    ILGPU.Runtime.MemoryBuffer1D<int, ILGPU.Stride1D.Dense>? indices;

    /// <summary>Uploads a list of token-row indices (ToCa: the token subsets of a whole run, at Begin) into the store's index
    /// buffer and returns its view, valid until the next call.</summary>
    public ILGPU.ArrayView<int> Indices(int[] values)
    {
        if (indices is null || indices.Length < values.Length)
        {
            indices?.Dispose();
            indices = device.Accelerator.Allocate1D<int>(Math.Max(values.Length, (long)modelBatch * config.Tokens));
        }
        var view = indices.View.SubView(0, values.Length);
        device.Upload(view, values);
        return view;
    }

    /// <summary>Copies a slot to the host (the adaptive policies read their signals from it).</summary>
    public float[] Read(string key) => Slot(key).ToHost();

    /// <summary>The stored output of block b, (model batch, T, D); allocated (invalid) on first use.</summary>
    public Tensor Feature(int boundary) => Entry(boundary).Feature;

    (Tensor Feature, bool[] Valid) Entry(int b)
    {
        if (b < 0 || b >= config.Depth - 1)
            throw new InvalidOperationException($"feature store: boundary block {b} outside 0..{config.Depth - 2}");
        if (!entries.TryGetValue(b, out var e))
        {
            e = (Tensor.Allocate(device, $"{name}.block{b}", modelBatch, config.Tokens, config.Hidden), new bool[modelBatch]);
            entries[b] = e;
        }
        return e;
    }

    public bool IsValid(int boundary, int row) => entries.TryGetValue(boundary, out var e) && e.Valid[row];
    public bool AllValid(int boundary) => entries.TryGetValue(boundary, out var e) && e.Valid.All(v => v);

    /// <summary>Marks rows as holding block b's output (PlanRunner after it wrote them).</summary>
    public void MarkValid(int boundary, IEnumerable<int>? rows = null)
    {
        var valid = Entry(boundary).Valid;
        if (rows == null) Array.Fill(valid, true);
        else foreach (var r in rows) valid[r] = true;
    }

    /// <summary>Fills block b's features from the host, (model batch, T, D), and marks every row valid.</summary>
    public void Load(int boundary, float[] rows)
    {
        Entry(boundary).Feature.CopyFromHost(rows);
        MarkValid(boundary);
    }

    public void Dispose()
    {
        foreach (var e in entries.Values) e.Feature.Dispose();
        foreach (var t in slots.Values) t.Dispose();
        entries.Clear();
        slots.Clear();
        combineWeights?.Dispose();
        combineWeights = null;
        indices?.Dispose();
        indices = null;
    }
}
