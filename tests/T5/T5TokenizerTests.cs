// The T5 tokenizer against Google's SentencePiece: ids produced by tools/reference/train_spm.py with
// Debian's python3-sentencepiece for a tiny Unigram model trained with T5's conventions (pad 0, eos 1,
// unk 2, no BOS, nmt_nfkc) on varied texts: punctuation, digits, case, whitespace runs, NFKC folding,
// unknown scripts, long prompts.
using System.Text.Json;
using BlockDance.Kernels;
using BlockDance.Transformer.Tokenizers;
using Xunit;

namespace BlockDance.Tests.T5;

public class T5TokenizerTests
{
    static readonly string ModelPath = CliRunner.Fixture("t5_tiny/tokenizer/spiece.model");
    static readonly T5Tokenizer Tok = T5Tokenizer.Load(ModelPath);

    public record Case(string Text, int[] Pieces, int[] Ids, int[] Mask);

    static (int MaxLength, List<Case> Cases) Reference()
    {
        var root = JsonDocument.Parse(File.ReadAllText(CliRunner.Fixture("t5_tiny/tokenizer_ref.json"))).RootElement;
        int[] Ints(JsonElement e) => e.EnumerateArray().Select(x => x.GetInt32()).ToArray();
        var cases = root.GetProperty("cases").EnumerateArray().Select(c => new Case(c.GetProperty("text").GetString()!,
            Ints(c.GetProperty("pieces")), Ints(c.GetProperty("ids")), Ints(c.GetProperty("mask")))).ToList();
        return (root.GetProperty("max_length").GetInt32(), cases);
    }

    public static IEnumerable<object[]> CaseIndices => Enumerable.Range(0, Reference().Cases.Count).Select(i => new object[] { i });

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void Pieces_MatchSentencePiece(int index)
    {
        var c = Reference().Cases[index];
        Assert.Equal(c.Pieces, Tok.Pieces(c.Text));
    }

    [Theory]
    [MemberData(nameof(CaseIndices))]
    public void IdsAndMask_MatchHfT5Conventions(int index)
    {
        var (maxLength, cases) = Reference();
        var c = cases[index];
        var t = Tok.Encode(c.Text, maxLength);
        Assert.Equal(c.Ids, t.Ids);
        Assert.Equal(c.Mask, t.Mask);
        Assert.Equal(c.Pieces.Length > maxLength - 1, t.Truncated);
    }

    [Fact]
    public void ReferenceTexts_CoverUnknownRunsAndTruncation()
    {
        // The cases that exercise the corrections over Microsoft.ML.Tokenizers must stay in the fixture.
        var cases = Reference().Cases;
        Assert.Contains(cases, c => c.Text.Contains("雪の中") && c.Pieces.Count(p => p == 2) >= 1);
        Assert.Contains(cases, c => c.Pieces.Length > 100);
    }

    [Fact]
    public void EmptyPrompt_IsEosAlone()
    {
        var t = Tok.Encode("", 6);
        Assert.Equal([1, 0, 0, 0, 0, 0], t.Ids);
        Assert.Equal([1, 0, 0, 0, 0, 0], t.Mask);
        Assert.False(t.Truncated);
    }

    [Fact]
    public void LongPrompt_IsTruncatedWithEosLast()
    {
        var t = Tok.Encode("a red fox in snow and two cats sitting next to a cup of coffee", 5);
        Assert.True(t.Truncated);
        Assert.Equal(4, Array.IndexOf(t.Ids, 1));
        Assert.Equal([1, 1, 1, 1, 1], t.Mask);
        Assert.Equal(Tok.Pieces("a red fox in snow")[..4], t.Ids[..4]);
    }

    [Fact]
    public void MissingModel_NamesThePath()
    {
        var e = Assert.Throws<InvalidValueException>(() => T5Tokenizer.Load("/nonexistent/tokenizer"));
        Assert.Contains("spiece.model", e.Message);
        Assert.Contains("no such file", e.Message);
    }

    [Theory]
    [InlineData(0)]        // empty file
    [InlineData(1000)]     // truncated in the middle of the pieces
    [InlineData(-1)]       // random bytes
    public void CorruptModel_IsRejectedWithExpectedAndFound(int keep)
    {
        var bytes = File.ReadAllBytes(ModelPath);
        byte[] bad = keep >= 0 ? bytes[..keep] : Enumerable.Range(0, 4096).Select(i => (byte)(i * 7919 % 251)).ToArray();
        var e = Assert.Throws<InvalidValueException>(() => T5Tokenizer.FromBytes(bad, "spiece.model"));
        Assert.Contains("expected a SentencePiece Unigram model", e.Message);
    }

    [Fact]
    public void BosPatch_KeepsEveryOtherByte()
    {
        // Setting trainer_spec.bos_id rewrites only that field: reading the patched copy gives the same
        // pieces and special ids, with bos_id changed.
        var bytes = File.ReadAllBytes(ModelPath);
        var info = SentencePieceProto.Read(bytes);
        Assert.Equal((-1, 0, 1, 2), (info.BosId, info.PadId, info.EosId, info.UnkId));
        var patched = SentencePieceProto.Read(SentencePieceProto.SetTrainerSpecInt(bytes, 41, 0));
        Assert.Equal(info with { BosId = 0 }, patched);
    }
}
