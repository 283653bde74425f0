// The few fields of a SentencePiece model file (sentencepiece_model.proto) that the T5 tokenizer needs,
// read straight from the protobuf wire format, and one edit to it (see T5Tokenizer for why).
//
//   ModelProto:   1 pieces (repeated SentencePiece, length-delimited)   2 trainer_spec (TrainerSpec)
//                 3 normalizer_spec   4 self_test_data   5 denormalizer_spec
//   TrainerSpec:  3 model_type (enum: 1 UNIGRAM, 2 BPE, 3 WORD, 4 CHAR; absent = UNIGRAM)
//                 40 unk_id (default 0)   41 bos_id (default 1)   42 eos_id (default 2)   43 pad_id (default −1)
// Wire format: every field is a varint key (field << 3 | wire type) followed by a varint (type 0), 8 bytes
// (type 1), a varint length and that many bytes (type 2) or 4 bytes (type 5). Negative int32 values are
// 10-byte varints (two's complement of the 64-bit sign extension).
namespace BlockDance.Transformer.Tokenizers;

public sealed record SentencePieceInfo(int PieceCount, int ModelType, int UnkId, int BosId, int EosId, int PadId);

public static class SentencePieceProto
{
    const int PiecesField = 1, TrainerSpecField = 2, ModelTypeField = 3, UnkField = 40, BosField = 41, EosField = 42, PadField = 43;

    /// <summary>Reads the piece count and the trainer spec; throws FormatException for bytes that are not a model.</summary>
    /// <summary>Longest piece accepted: 1 KiB of UTF-8 (T5's longest piece is 16 characters).</summary>
    public const int MaxPieceBytes = 1024;

    public static SentencePieceInfo Read(byte[] model)
    {
        int pieces = 0, modelType = 1, unk = 0, bos = 1, eos = 2, pad = -1;
        bool hasTrainer = false;
        foreach (var (field, wire, _, start, end, value) in Fields(model, 0, model.Length))
        {
            if (field == PiecesField && wire == 2)
            {
                pieces++;
                foreach (var (f, w, _, s, e, _) in Fields(model, start, end))   // SentencePiece: 1 piece (string)
                    if (f == 1 && w == 2 && e - s > MaxPieceBytes)
                        throw new FormatException($"piece {pieces - 1} of {e - s} bytes, expected at most {MaxPieceBytes} " +
                                                  "(the SentencePiece reader's recursion on such a piece overflows the stack)");
            }
            if (field != TrainerSpecField || wire != 2) continue;
            hasTrainer = true;
            foreach (var (f, w, _, _, _, v) in Fields(model, start, end))
            {
                if (w != 0) continue;
                switch (f)
                {
                    case ModelTypeField: modelType = (int)v; break;
                    case UnkField: unk = (int)v; break;
                    case BosField: bos = (int)v; break;
                    case EosField: eos = (int)v; break;
                    case PadField: pad = (int)v; break;
                }
            }
        }
        if (!hasTrainer) throw new FormatException("no trainer_spec field");
        return new SentencePieceInfo(pieces, modelType, unk, bos, eos, pad);
    }

    /// <summary>A copy of the model with trainer_spec's varint field `field` set to `value` (added if absent).</summary>
    public static byte[] SetTrainerSpecInt(byte[] model, int field, int value)
    {
        var output = new List<byte>(model.Length + 16);
        foreach (var (f, wire, keyStart, start, end, _) in Fields(model, 0, model.Length))
        {
            if (f != TrainerSpecField || wire != 2)
            {
                output.AddRange(model.AsSpan(keyStart, end - keyStart).ToArray());
                continue;
            }
            var inner = new List<byte>(end - start + 12);
            foreach (var (f2, w2, k2, _, e2, _) in Fields(model, start, end))
                if (f2 != field || w2 != 0) inner.AddRange(model.AsSpan(k2, e2 - k2).ToArray());
            WriteVarint(inner, (ulong)field << 3);
            WriteVarint(inner, (ulong)(long)value); // sign-extended, as protobuf encodes int32
            WriteVarint(output, (ulong)TrainerSpecField << 3 | 2);
            WriteVarint(output, (ulong)inner.Count);
            output.AddRange(inner);
        }
        return output.ToArray();
    }

    // Each field of the message in [begin, end): (field, wire type, key start, payload start, field end, varint
    // value). For wire type 2 the payload is [start, end); for the others start is where the value begins.
    static IEnumerable<(int Field, int Wire, int KeyStart, int Start, int End, ulong Value)> Fields(byte[] b, int begin, int end)
    {
        int p = begin;
        while (p < end)
        {
            int keyStart = p;
            ulong key = ReadVarint(b, ref p, end);
            int field = (int)(key >> 3), wire = (int)(key & 7);
            if (field <= 0) throw new FormatException($"field number {field} at byte {p}");
            int start = p;
            ulong value = 0;
            switch (wire)
            {
                case 0: value = ReadVarint(b, ref p, end); break;
                case 1: p += 8; break;
                case 5: p += 4; break;
                case 2:
                    ulong len = ReadVarint(b, ref p, end);
                    if (len > (ulong)(end - p)) throw new FormatException($"length {len} at byte {p} runs past the end");
                    start = p;
                    p += (int)len;
                    break;
                default: throw new FormatException($"wire type {wire} at byte {start}");
            }
            if (p > end) throw new FormatException($"field {field} runs past the end");
            yield return (field, wire, keyStart, start, p, value);
        }
    }

    static ulong ReadVarint(byte[] b, ref int p, int end)
    {
        ulong v = 0;
        for (int shift = 0; shift < 64; shift += 7)
        {
            if (p >= end) throw new FormatException("truncated varint");
            byte x = b[p++];
            v |= (ulong)(x & 0x7F) << shift;
            if (x < 0x80) return v;
        }
        throw new FormatException("varint longer than 10 bytes");
    }

    static void WriteVarint(List<byte> o, ulong v)
    {
        while (v >= 0x80) { o.Add((byte)(v | 0x80)); v >>= 7; }
        o.Add((byte)v);
    }
}
