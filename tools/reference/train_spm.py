#!/usr/bin/env python3
"""Train a tiny SentencePiece Unigram model with T5's conventions and write reference token ids.

Run from the repository root (Debian's python3-sentencepiece, no pip):

    /usr/bin/python3 tools/reference/train_spm.py

Writes tests/fixtures/t5_tiny/tokenizer/spiece.model and tests/fixtures/t5_tiny/tokenizer_ref.json.

The model mirrors what matters in T5's spiece.model: Unigram, the nmt_nfkc normalizer with its
precompiled character map, a dummy prefix, whitespace -> U+2581, pad 0 / eos 1 / unk 2 and **no BOS**
(bos_id -1), no byte fallback. The training corpus is generated here from word lists (deterministic), so
nothing is downloaded. The vocabulary is tiny (400 pieces): most words split into several pieces, which
exercises the Viterbi segmentation far more than T5's 32k vocabulary would.

The reference file holds, for each test text, the raw piece ids (`sp.encode`, no specials) and the ids
and mask after T5's conventions at max_length 16 (the HF T5Tokenizer rule: keep at most max_length - 1
pieces, append EOS 1, pad with 0).
"""

import json
import os
import random
import shutil
import tempfile

import sentencepiece as spm

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "t5_tiny")
MAX_LENGTH = 16

SUBJECTS = ["a red fox", "an old man", "two cats", "a small boat", "the city", "a mountain lake",
            "a cup of coffee", "an astronaut", "a golden retriever", "three apples", "a robot",
            "a wooden house", "the ocean", "a field of flowers", "a young woman", "a steam train"]
ACTIONS = ["standing in", "running through", "sleeping on", "floating above", "painted in",
           "sitting next to", "looking at", "covered with", "walking across", "reflected in"]
PLACES = ["the snow", "a forest", "the desert", "a busy street", "the night sky", "a quiet room",
          "the rain", "a sunny beach", "an ancient temple", "the fog", "a green meadow"]
STYLES = ["oil painting", "photograph", "digital art", "watercolor", "4k", "highly detailed",
          "cinematic lighting", "studio portrait", "low poly", "pencil sketch", "35mm film"]


def corpus(rng, n):
    lines = []
    for _ in range(n):
        s = f"{rng.choice(SUBJECTS)} {rng.choice(ACTIONS)} {rng.choice(PLACES)}"
        if rng.random() < 0.6:
            s += f", {rng.choice(STYLES)}"
        if rng.random() < 0.3:
            s += f", {rng.randint(1, 2048)} x {rng.randint(1, 2048)}"
        if rng.random() < 0.2:
            s = s.capitalize() + "."
        lines.append(s)
    return lines


# Varied test texts: plain prompts, punctuation, digits, case, whitespace runs, unicode that NFKC folds
# (full-width letters, ligatures, superscripts), characters outside the vocabulary (unk), and long prompts
# that are cut at MAX_LENGTH (the EOS stays last).
TEST_TEXTS = [
    "a red fox in snow",
    "A Red Fox In Snow!",
    "",
    " ",
    "an astronaut riding a horse, oil painting, 4k",
    "two cats sitting next to a cup of coffee.",
    "   leading and trailing   spaces   ",
    "tabs\tand\nnewlines",
    "digits 0123456789 and 3.14159, 1,024 x 768",
    "punctuation: (brackets) [square] {curly} \"quotes\" 'single' - dash; semi! ? ...",
    "ｆｕｌｌ－ｗｉｄｔｈ ＡＢＣ １２３",
    "ligature ﬁ ﬂ and x² superscript ½",
    "café naïve résumé",
    "emoji 🦊 and 雪の中の赤い狐",
    "Ελληνικά και русский текст",
    "a very long prompt about a golden retriever running through a green meadow under the night sky, "
    "highly detailed, cinematic lighting, 35mm film, watercolor, digital art, studio portrait",
    "the quick brown fox jumps over the lazy dog " * 4,
    "mixed CASE and under_scores and hyphen-ated-words",
    "no\u00a0break\u2003em\u3000ideographic spaces",
    "<extra_id_0> is not special here",
    "</s> and <pad> and <unk> are plain text in a prompt",
]


def main():
    os.makedirs(os.path.join(OUT_DIR, "tokenizer"), exist_ok=True)
    rng = random.Random(16)
    # A fixed scratch folder: trainer_spec stores the input path and model prefix, so a random temporary
    # name would change the model's bytes from run to run.
    tmp = os.path.join(tempfile.gettempdir(), "blockdance-train-spm")
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    try:
        text_path = os.path.join(tmp, "corpus.txt")
        with open(text_path, "w", encoding="utf-8") as f:
            f.write("\n".join(corpus(rng, 3000)) + "\n")
        spm.SentencePieceTrainer.train(
            input=text_path, model_prefix=os.path.join(tmp, "spiece"), model_type="unigram",
            vocab_size=400, character_coverage=1.0, normalization_rule_name="nmt_nfkc",
            pad_id=0, eos_id=1, unk_id=2, bos_id=-1, byte_fallback=False,
            num_threads=1, seed_sentencepiece_size=20000, shuffle_input_sentence=False,
            minloglevel=2)
        with open(os.path.join(tmp, "spiece.model"), "rb") as f:
            model = f.read()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    model_path = os.path.join(OUT_DIR, "tokenizer", "spiece.model")
    with open(model_path, "wb") as f:
        f.write(model)

    sp = spm.SentencePieceProcessor(model_file=model_path)
    assert sp.bos_id() == -1 and sp.eos_id() == 1 and sp.pad_id() == 0 and sp.unk_id() == 2
    cases = []
    for text in TEST_TEXTS:
        pieces = sp.encode(text)
        kept = pieces[: MAX_LENGTH - 1] + [1]
        ids = kept + [0] * (MAX_LENGTH - len(kept))
        mask = [1] * len(kept) + [0] * (MAX_LENGTH - len(kept))
        cases.append({"text": text, "pieces": pieces, "piece_strings": sp.encode(text, out_type=str),
                      "ids": ids, "mask": mask})
    ref = {"max_length": MAX_LENGTH, "vocab_size": sp.get_piece_size(), "cases": cases}
    with open(os.path.join(OUT_DIR, "tokenizer_ref.json"), "w", encoding="utf-8") as f:
        json.dump(ref, f, ensure_ascii=False, indent=1)
    print(f"spiece.model: {len(model)} bytes, {sp.get_piece_size()} pieces")
    for c in cases:
        print(f"{len(c['pieces']):3d} {c['text'][:50]!r} -> {c['piece_strings'][:12]}")


if __name__ == "__main__":
    main()
