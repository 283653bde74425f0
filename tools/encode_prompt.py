#!/usr/bin/env python3
"""Write a PixArt-alpha prompt-embeddings file for `blockdance sample --prompt-embeds` from a real T5 encoder.

    python3 tools/encode_prompt.py --model PixArt-alpha/PixArt-XL-2-512x512 --prompt "a red fox in the snow" --out embeds.safetensors

Tokenizes as diffusers' PixArtAlphaPipeline does (max_length 120, padding to it, truncation; caption cleaning
is not applied) and runs the folder's text_encoder/ (T5EncoderModel); the unconditional captions are T5("")
with their own mask, as diffusers does. Writes prompt_embeds (B, 120, 4096) F32, prompt_attention_mask (B, 120)
I64, negative_prompt_embeds and negative_prompt_attention_mask (1 row), the names diffusers' pipeline uses.
Needs PyTorch and transformers (with sentencepiece); the T5 issue will make `--prompt` work without them.
"""

import argparse
import os
import sys
from collections import OrderedDict

import torch

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "reference"))
from dit_reference import save_safetensors  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True, help="PixArt diffusers folder (or hub id) with text_encoder/ and tokenizer/")
    ap.add_argument("--prompt", action="append", required=True)
    ap.add_argument("--negative", default="")
    ap.add_argument("--out", required=True)
    ap.add_argument("--max-length", type=int, default=120)
    a = ap.parse_args()
    try:
        from transformers import T5EncoderModel, T5Tokenizer
    except ImportError:
        print("encode_prompt: error: expected the transformers package (pip install transformers sentencepiece), found none", file=sys.stderr)
        sys.exit(2)
    tok = T5Tokenizer.from_pretrained(a.model, subfolder="tokenizer")
    enc = T5EncoderModel.from_pretrained(a.model, subfolder="text_encoder", torch_dtype=torch.float32).eval()

    def encode(texts):
        t = tok(texts, max_length=a.max_length, padding="max_length", truncation=True, add_special_tokens=True, return_tensors="pt")
        with torch.no_grad():
            h = enc(t.input_ids, attention_mask=t.attention_mask)[0]
        return h.float(), t.attention_mask.long()

    y, m = encode(a.prompt)
    ny, nm = encode([a.negative])
    save_safetensors(a.out, OrderedDict([("prompt_embeds", y), ("prompt_attention_mask", m),
                                         ("negative_prompt_embeds", ny), ("negative_prompt_attention_mask", nm)]),
                     {"model": a.model, "prompts": " | ".join(a.prompt)})
    print("wrote %s: %d prompts, %s" % (a.out, len(a.prompt), list(y.shape)))


if __name__ == "__main__":
    main()
