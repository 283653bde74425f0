// The T5 tokenizer: SentencePiece Unigram segmentation of the prompt plus T5's conventions.
//
//   ids  = pieces(text), cut to maxLength − 1, then EOS (id 1), then pad (id 0) up to maxLength
//   mask = 1 for the pieces and the EOS, 0 for the padding
// No BOS (T5 has none). The empty prompt gives [EOS, 0, 0, …] with mask [1, 0, 0, …] — what HF's
// T5Tokenizer returns for "" — so it is a valid (unconditional-looking) caption, not an error.
// A prompt longer than maxLength − 1 pieces is truncated (logged, with how many pieces were dropped);
// HF keeps the EOS last in that case, and so does this.
//
// The segmentation and the nmt_nfkc normalization (the model's precompiled character map) are
// Microsoft.ML.Tokenizers' SentencePieceTokenizer (Unigram support since 2.0), with two corrections,
// both checked against Google's SentencePiece on tests/fixtures/t5_tiny (tools/reference/train_spm.py):
//   1. T5's model has no BOS (trainer_spec.bos_id = −1); ML.Tokenizers 2.0.1 indexes its vocabulary with
//      bos_id while loading and throws. We set bos_id to the pad id in a copy of the file before loading;
//      BOS is never emitted (addBeginningOfSentence: false), so the id it names does not matter.
//   2. SentencePiece merges a run of characters that are all unknown into ONE unk piece ("雪の中" → [unk]);
//      ML.Tokenizers emits one unk per character. We collapse runs of consecutive unk ids.
using BlockDance.Kernels;
using Microsoft.ML.Tokenizers;

namespace BlockDance.Transformer.Tokenizers;

/// <summary>One tokenized prompt: ids and mask of length MaxLength, the piece count before truncation.</summary>
public sealed record T5Tokens(int[] Ids, int[] Mask, int Pieces, bool Truncated)
{
    /// <summary>Tokens that carry meaning (pieces kept + EOS): the mask's sum.</summary>
    public int Length => Mask.Sum();
}

public sealed class T5Tokenizer
{
    /// <summary>PixArt-α's caption length (max_length in its tokenizer call).</summary>
    public const int PixArtMaxLength = 120;

    readonly SentencePieceTokenizer tokenizer;
    public SentencePieceInfo Info { get; }
    public string Origin { get; }
    public int EosId => Info.EosId;
    public int PadId => Math.Max(0, Info.PadId);
    public int UnkId => Info.UnkId;

    T5Tokenizer(SentencePieceTokenizer tok, SentencePieceInfo info, string origin)
    {
        tokenizer = tok;
        Info = info;
        Origin = origin;
    }

    /// <summary>Loads spiece.model, or the spiece.model inside a tokenizer/ folder or a PixArt folder.</summary>
    /// <summary>Largest spiece.model accepted: 64 MiB (T5's is 792 KB, the largest SentencePiece vocabularies ~20 MB).</summary>
    public const long MaxModelBytes = 64L << 20;

    public static T5Tokenizer Load(string path)
    {
        string file = ResolveModelFile(path);
        byte[] bytes;
        bytes = IO.InputFile.ReadBytes(file, "tokenizer spiece.model", MaxModelBytes);   // regular file, size cap (t5's is 0.8 MB)
        return FromBytes(bytes, file);
    }

    public static T5Tokenizer FromBytes(byte[] bytes, string origin)
    {
        const string Expected = "a SentencePiece Unigram model (T5's spiece.model)";
        SentencePieceInfo info;
        try { info = SentencePieceProto.Read(bytes); }
        catch (FormatException e)
        {
            throw new InvalidValueException(origin, Expected, $"{bytes.Length} bytes that are not a SentencePiece protobuf ({e.Message}; corrupt or truncated file?)");
        }
        if (info.PieceCount == 0) throw new InvalidValueException(origin, Expected, "a model with no pieces");
        if (info.ModelType != 1)
            throw new InvalidValueException(origin, Expected, $"model_type {info.ModelType} ({(info.ModelType == 2 ? "BPE" : "not Unigram")})");
        foreach (var (name, id) in new[] { ("eos_id", info.EosId), ("unk_id", info.UnkId) })
            if (id < 0 || id >= info.PieceCount)
                throw new InvalidValueException($"{origin} {name}", $"a piece id in 0..{info.PieceCount - 1}", id.ToString());

        byte[] patched = info.BosId < 0 ? SentencePieceProto.SetTrainerSpecInt(bytes, 41, Math.Max(0, info.PadId)) : bytes;
        try
        {
            var tok = SentencePieceTokenizer.Create(new MemoryStream(patched), addBeginningOfSentence: false, addEndOfSentence: false);
            return new T5Tokenizer(tok, info, origin);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            throw new InvalidValueException(origin, Expected, $"a file the SentencePiece reader rejects ({e.GetType().Name}: {e.Message})");
        }
    }

    static string ResolveModelFile(string path)
    {
        if (File.Exists(path)) return path;
        foreach (var candidate in new[] { Path.Combine(path, "spiece.model"), Path.Combine(path, "tokenizer", "spiece.model") })
            if (File.Exists(candidate)) return candidate;
        throw new InvalidValueException("tokenizer", $"spiece.model at {path} (or {path}/tokenizer/spiece.model)", "no such file");
    }

    /// <summary>The SentencePiece piece ids of a text (normalized, no EOS, no padding, not truncated).</summary>
    public int[] Pieces(string text)
    {
        IReadOnlyList<int> raw;
        try { raw = tokenizer.EncodeToIds(text); }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A garbled normalizer table (precompiled_charsmap) passes Create and fails here, inside the library.
            throw new InvalidValueException(Origin, "a SentencePiece model that can encode text",
                $"a file the SentencePiece reader fails on while encoding ({e.GetType().Name}: {e.Message})");
        }
        var ids = new List<int>(raw.Count);
        foreach (int id in raw)
            if (!(id == UnkId && ids.Count > 0 && ids[^1] == UnkId)) ids.Add(id); // SentencePiece merges unknown runs
        return ids.ToArray();
    }

    /// <summary>T5 ids + attention mask for one prompt, padded/truncated to maxLength (PixArt: 120).</summary>
    public T5Tokens Encode(string text, int maxLength = PixArtMaxLength)
    {
        if (maxLength < 1) throw new InvalidValueException("tokenizer max length", "at least 1 (room for the EOS)", maxLength.ToString());
        var pieces = Pieces(text);
        int kept = Math.Min(pieces.Length, maxLength - 1);
        var ids = new int[maxLength];
        var mask = new int[maxLength];
        Array.Fill(ids, PadId);
        Array.Copy(pieces, ids, kept);
        ids[kept] = EosId;
        for (int i = 0; i <= kept; i++) mask[i] = 1;
        bool truncated = kept < pieces.Length;
        if (truncated)
            Log.Info($"prompt is {pieces.Length} tokens + EOS, longer than the caption length {maxLength}: " +
                     $"kept the first {kept} tokens + EOS, dropped {pieces.Length - kept}");
        return new T5Tokens(ids, mask, pieces.Length, truncated);
    }
}
