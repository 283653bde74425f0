#!/usr/bin/env python3
"""A plain-PyTorch T5 v1.1 encoder written from the formulas, and the fixtures the C# encoder is checked against.

Run from the repository root, after tools/reference/train_spm.py (it reads the tiny spiece.model):

    /usr/bin/python3 tools/reference/t5_reference.py

Writes under tests/fixtures/t5_tiny/:
  text_encoder/config.json, model.safetensors.index.json, model-0000{1,2}-of-00002.safetensors
      tiny config, HF T5EncoderModel key names, random F32 weights, split over two shards by the index
  text_encoder_bf16/config.json, model.safetensors
      the same weights rounded to bf16 and stored as BF16 (one file, no index)
  t5_ref.safetensors
      ids (B, L) I64, mask (B, L) I64, last_hidden_state (B, L, D) F32 (and block.0 for debugging), for the
      F32 weights; bf16.last_hidden_state for the bf16 weights (computed in fp32 from the bf16 values);
      prompt.* / negative.*: the tiny tokenizer's ids for two prompts at max_length 16 and their features

The model (nothing from transformers is imported; the formulas are those of shared facts about HF's
modeling_t5.py, written out here):
  h = E[ids]; bias[h, i, j] = rel_bias[bucket(j - i), h] + (1 - mask[j]) * finfo.min
  per block: x = rms(h) * w; h += O(softmax(q k^T + bias) v); x = rms(h) * w; h += wo(gelu_new(wi_0 x) * wi_1 x)
  out = rms(h) * w_final,   rms(h) = h / sqrt(mean(h^2) + eps)
"""

import json
import math
import os
import struct
import sys
from collections import OrderedDict

import numpy as np
import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dit_reference import save_safetensors  # noqa: E402

torch.set_num_threads(1)
torch.use_deterministic_algorithms(True)

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
OUT_DIR = os.path.join(REPO_ROOT, "tests", "fixtures", "t5_tiny")
SEED = 20251616

# Tiny, but every independent width differs: inner = heads * d_kv (24) != d_model (32); 8 buckets up to
# distance 12 so that a 20-token sequence reaches the log-spaced buckets and the clamp.
CONFIG = OrderedDict(
    architectures=["T5EncoderModel"], model_type="t5", d_model=32, d_kv=6, num_heads=4, d_ff=48, num_layers=2,
    vocab_size=416, relative_attention_num_buckets=8, relative_attention_max_distance=12,
    layer_norm_epsilon=1e-6, feed_forward_proj="gated-gelu", is_gated_act=True, dense_act_fn="gelu_new",
    dropout_rate=0.1, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, torch_dtype="float32")


def bucket(rel, num_buckets, max_distance):
    """Bidirectional relative-position bucket of rel = j - i (elementwise on a LongTensor)."""
    half = num_buckets // 2
    out = (rel > 0).long() * half
    n = rel.abs()
    max_exact = half // 2
    is_small = n < max_exact
    large = max_exact + (torch.log(n.float() / max_exact) / math.log(max_distance / max_exact)
                         * (half - max_exact)).to(torch.long)
    large = torch.minimum(large, torch.full_like(large, half - 1))
    return out + torch.where(is_small, n, large)


def rms(x, w, eps):
    var = x.to(torch.float32).pow(2).mean(-1, keepdim=True)
    return w * (x * torch.rsqrt(var + eps))


def gelu_new(x):
    return 0.5 * x * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * torch.pow(x, 3.0))))


def encode(sd, cfg, ids, mask, record=None):
    """last_hidden_state (B, L, D) of T5EncoderModel for ids, mask (B, L)."""
    B, L = ids.shape
    H, dk, eps = cfg["num_heads"], cfg["d_kv"], cfg["layer_norm_epsilon"]
    dt = sd["shared.weight"].dtype
    h = sd["shared.weight"][ids]                                            # (B, L, D)
    pos = torch.arange(L)
    rel = pos[None, :] - pos[:, None]                                       # [i, j] = j - i
    b = bucket(rel, cfg["relative_attention_num_buckets"], cfg["relative_attention_max_distance"])
    table = sd["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"]   # (buckets, H)
    bias = table[b].permute(2, 0, 1)[None]                                  # (1, H, L, L)
    bias = bias + (1.0 - mask[:, None, None, :].to(dt)) * torch.finfo(dt).min  # keys only
    for i in range(cfg["num_layers"]):
        p = f"encoder.block.{i}.layer."
        x = rms(h, sd[p + "0.layer_norm.weight"], eps)
        q, k, v = (x @ sd[p + f"0.SelfAttention.{n}.weight"].T for n in "qkv")
        q, k, v = (t.view(B, L, H, dk).transpose(1, 2) for t in (q, k, v))  # (B, H, L, dk)
        scores = q @ k.transpose(-1, -2) + bias                             # no 1/sqrt(dk)
        attn = torch.softmax(scores.float(), dim=-1).to(dt)
        a = (attn @ v).transpose(1, 2).reshape(B, L, H * dk)
        h = h + a @ sd[p + "0.SelfAttention.o.weight"].T
        x = rms(h, sd[p + "1.layer_norm.weight"], eps)
        g = gelu_new(x @ sd[p + "1.DenseReluDense.wi_0.weight"].T) * (x @ sd[p + "1.DenseReluDense.wi_1.weight"].T)
        h = h + g @ sd[p + "1.DenseReluDense.wo.weight"].T
        if record is not None:
            record[f"block.{i}"] = h.clone()
    return rms(h, sd["encoder.final_layer_norm.weight"], eps)


def random_weights(cfg, g):
    D, I, F, V = cfg["d_model"], cfg["num_heads"] * cfg["d_kv"], cfg["d_ff"], cfg["vocab_size"]
    sd = OrderedDict()
    # Mesh-TF style scales (q absorbs 1/sqrt(d_kv)) times gains that keep activations O(1) and attention
    # clearly non-uniform.
    sd["shared.weight"] = torch.randn(V, D, generator=g)
    for i in range(cfg["num_layers"]):
        p = f"encoder.block.{i}.layer."
        sd[p + "0.layer_norm.weight"] = 1.0 + 0.2 * torch.randn(D, generator=g)
        sd[p + "0.SelfAttention.q.weight"] = torch.randn(I, D, generator=g) * 2.0 / math.sqrt(D * cfg["d_kv"]) * 2.0
        sd[p + "0.SelfAttention.k.weight"] = torch.randn(I, D, generator=g) / math.sqrt(D) * 1.5
        sd[p + "0.SelfAttention.v.weight"] = torch.randn(I, D, generator=g) / math.sqrt(D)
        sd[p + "0.SelfAttention.o.weight"] = torch.randn(D, I, generator=g) / math.sqrt(I)
        if i == 0:
            sd[p + "0.SelfAttention.relative_attention_bias.weight"] = torch.randn(
                cfg["relative_attention_num_buckets"], cfg["num_heads"], generator=g)
        sd[p + "1.layer_norm.weight"] = 1.0 + 0.2 * torch.randn(D, generator=g)
        sd[p + "1.DenseReluDense.wi_0.weight"] = torch.randn(F, D, generator=g) / math.sqrt(D) * 1.5
        sd[p + "1.DenseReluDense.wi_1.weight"] = torch.randn(F, D, generator=g) / math.sqrt(D)
        sd[p + "1.DenseReluDense.wo.weight"] = torch.randn(D, F, generator=g) / math.sqrt(F)
    sd["encoder.final_layer_norm.weight"] = 1.0 + 0.2 * torch.randn(D, generator=g)
    return sd


def save_bf16(path, sd):
    """A single safetensors file with every tensor stored as BF16 (numpy has no bf16: write the raw bits)."""
    header, blobs, offset = OrderedDict(), [], 0
    for name, t in sd.items():
        data = t.to(torch.bfloat16).contiguous().view(torch.int16).numpy().astype("<i2").tobytes()
        header[name] = OrderedDict([("dtype", "BF16"), ("shape", list(t.shape)), ("data_offsets", [offset, offset + len(data)])])
        blobs.append(data)
        offset += len(data)
    h = json.dumps(header, separators=(",", ":")).encode()
    h += b" " * ((-len(h)) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def write_config(folder):
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "config.json"), "w") as f:
        json.dump(CONFIG, f, indent=2)


def main():
    g = torch.Generator()
    g.manual_seed(SEED)
    cfg = CONFIG
    sd = random_weights(cfg, g)

    # F32, two shards + index (the first holds the embedding and block 0, the second the rest).
    te = os.path.join(OUT_DIR, "text_encoder")
    write_config(te)
    names = list(sd)
    split = names.index("encoder.block.1.layer.0.layer_norm.weight")
    shards = {"model-00001-of-00002.safetensors": names[:split], "model-00002-of-00002.safetensors": names[split:]}
    weight_map = OrderedDict()
    for shard, keys in shards.items():
        save_safetensors(os.path.join(te, shard), OrderedDict((k, sd[k]) for k in keys))
        for k in keys:
            weight_map[k] = shard
    total = sum(t.numel() * 4 for t in sd.values())
    with open(os.path.join(te, "model.safetensors.index.json"), "w") as f:
        json.dump({"metadata": {"total_size": total}, "weight_map": weight_map}, f, indent=2)

    # BF16, one file.
    te16 = os.path.join(OUT_DIR, "text_encoder_bf16")
    write_config(te16)
    save_bf16(os.path.join(te16, "model.safetensors"), sd)
    sd16 = OrderedDict((k, v.to(torch.bfloat16).float()) for k, v in sd.items())

    # Inputs: 3 rows of 20 tokens with 20, 7 and 1 real tokens (the last is an empty prompt: only EOS).
    B, L = 3, 20
    lengths = [20, 7, 1]
    ids = torch.randint(3, 400, (B, L), generator=g)
    mask = torch.zeros(B, L, dtype=torch.int64)
    for b, n in enumerate(lengths):
        ids[b, n - 1] = 1
        ids[b, n:] = 0
        mask[b, :n] = 1
    rec = OrderedDict()
    out = encode(sd, cfg, ids, mask, rec)
    out16 = encode(sd16, cfg, ids, mask)

    # Self-checks: fp64 agrees, real positions ignore what sits in padded slots, the mask and bias matter.
    sd64 = OrderedDict((k, v.double()) for k, v in sd.items())
    out64 = encode(sd64, cfg, ids, mask)
    err64 = (out.double() - out64).abs().max().item()
    ids2 = ids.clone()
    ids2[mask == 0] = 5
    out2 = encode(sd, cfg, ids2, mask)
    pad_effect = max((out2[b, :n] - out[b, :n]).abs().max().item() for b, n in enumerate(lengths))
    nomask = encode(sd, cfg, ids, torch.ones_like(mask))
    mask_effect = (nomask[1, :7] - out[1, :7]).abs().max().item()
    sd_nb = OrderedDict(sd)
    sd_nb["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"] = torch.zeros_like(
        sd["encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight"])
    bias_effect = (encode(sd_nb, cfg, ids, mask) - out).abs().max().item()
    buckets = bucket(torch.arange(-19, 20), 8, 12).tolist()
    xxl = bucket(torch.tensor([-8, 8, -12, 12, -16, 16, -32, 32, -64, 64, -127, 127, -500, 500]), 32, 128).tolist()
    print(f"fp32 vs fp64 {err64:.2e}; padded-slot effect on real rows {pad_effect:.2e}; "
          f"mask effect {mask_effect:.3f}; bias effect {bias_effect:.3f}; bf16 vs f32 {(out16 - out).abs().max().item():.3f}")
    print(f"buckets (8, 12) for j-i = -19..19: {buckets}")
    print(f"XXL buckets for -8, 8, -12, 12, -16, 16, -32, 32, -64, 64, -127, 127, -500, 500: {xxl}")
    assert err64 < 1e-4 and pad_effect == 0.0 and mask_effect > 0.05 and bias_effect > 0.05
    assert xxl == [8, 24, 9, 25, 10, 26, 12, 28, 14, 30, 15, 31, 15, 31]
    assert torch.isfinite(out).all() and out.abs().max() < 50

    # Prompts through the tiny tokenizer (max_length 16), as `blockdance encode` does them.
    import sentencepiece as spm
    sp = spm.SentencePieceProcessor(model_file=os.path.join(OUT_DIR, "tokenizer", "spiece.model"))
    refs = OrderedDict(ids=ids, mask=mask, last_hidden_state=out, **{"block.0": rec["block.0"]},
                       **{"bf16.last_hidden_state": out16})
    for key, text in (("prompt", "a red fox in snow"), ("negative", "")):
        pieces = sp.encode(text)[:15] + [1]
        p_ids = torch.tensor([pieces + [0] * (16 - len(pieces))])
        p_mask = torch.tensor([[1] * len(pieces) + [0] * (16 - len(pieces))])
        refs[f"{key}.ids"] = p_ids
        refs[f"{key}.mask"] = p_mask
        refs[f"{key}.embeds"] = encode(sd, cfg, p_ids, p_mask)
    save_safetensors(os.path.join(OUT_DIR, "t5_ref.safetensors"), refs)
    size = sum(os.path.getsize(os.path.join(dp, f)) for dp, _, fs in os.walk(OUT_DIR) for f in fs)
    print(f"wrote {OUT_DIR}: {size} bytes in all")


if __name__ == "__main__":
    main()
