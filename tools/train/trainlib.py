"""Pieces the demo trainers share (train_pixart.py, train_stdit.py): the log, atomic checkpoints and folder exports,
one optimiser step with warm-up, the EMA update, the windowed loss line, and the demo digit classifier."""

import argparse
import json
import os
import shutil
import time
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

REPO_ROOT = Path(__file__).resolve().parent.parent.parent

# The text demos' encoder: T5 v1.1 at demo size (2 layers, d_model 64, 4 heads x 16, gated-GELU d_ff 128, vocab 128 of the
# SentencePiece model trained on the captions), in transformers' config.json keys (the engine reads text_encoder/ with it).
DEMO_T5_CONFIG = OrderedDict(
    architectures=["T5EncoderModel"], model_type="t5", d_model=64, d_kv=16, num_heads=4, d_ff=128, num_layers=2,
    vocab_size=128, relative_attention_num_buckets=8, relative_attention_max_distance=16,
    layer_norm_epsilon=1e-6, feed_forward_proj="gated-gelu", is_gated_act=True, dense_act_fn="gelu_new",
    dropout_rate=0.0, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0, torch_dtype="float32")


def log(log_path, msg):
    """Prints `msg` with a timestamp and appends it to log_path."""
    line = f"{time.strftime('%Y-%m-%d %H:%M:%S')} {msg}"
    print(line, flush=True)
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "a") as f:
        f.write(line + "\n")


def save_atomic(state, path):
    """torch.save to a temporary name, then renamed over `path` (a crash leaves the previous checkpoint)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    torch.save(state, tmp)
    os.replace(tmp, path)


def fresh_folder(out):
    """An empty out.tmp beside `out` for an export that swap_in then puts in place."""
    tmp = out.with_name(out.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    return tmp


def write_json(folder, rel, obj):
    (folder / rel).parent.mkdir(parents=True, exist_ok=True)
    (folder / rel).write_text(json.dumps(obj, indent=2) + "\n")


def swap_in(tmp, out):
    """Replaces the folder `out` by `tmp` (never a half-written folder under the name)."""
    old = out.with_name(out.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if out.exists():
        os.replace(out, old)
    os.replace(tmp, out)
    shutil.rmtree(old, ignore_errors=True)


def final_loss(losses, last=200):
    """Mean of the last `last` losses of [(step, loss), ...], as text."""
    tail = [l for _, l in losses[-last:]]
    return f"{float(np.mean(tail)) if tail else float('nan'):.5f}"


def optimise(opt, loss, params, lr, clip):
    for gr in opt.param_groups:
        gr["lr"] = lr
    opt.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, clip)
    opt.step()


@torch.no_grad()
def ema_update(pairs, d):
    """e <- d * e + (1 - d) * m for every (ema dict, model dict) pair."""
    for e, m in pairs:
        for k in e:
            e[k].mul_(d).add_(m[k].detach(), alpha=1 - d)


class LossWindow:
    """The mean loss and seconds per step over each window of `every` steps, as one log line."""

    def __init__(self, every):
        self.every, self.acc, self.cnt, self.t = every, 0.0, 0, time.time()

    def add(self, step, loss, elapsed):
        self.acc += loss
        self.cnt += 1
        if step % self.every:
            return None
        line = f"step {step} loss {self.acc / self.cnt:.4f} {(time.time() - self.t) / self.cnt:.3f} s/step trained {elapsed:.0f} s"
        self.acc, self.cnt, self.t = 0.0, 0, time.time()
        return line


def digit_classifier():
    """The demo's MNIST classifier (models/mnist_classifier.safetensors): 196 inputs in [0, 1] -> 10 logits."""
    from train_classifier import MLP
    from train_dit import read_safetensors
    clf = MLP()
    sd, _ = read_safetensors(REPO_ROOT / "models" / "mnist_classifier.safetensors")
    clf.load_state_dict(sd)
    return clf


def arguments(batch):
    """The demo trainers' command line: training settings (resumable by default), and the export/sample/adherence modes."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=batch)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--clip", type=float, default=1.0)
    ap.add_argument("--ema", type=float, default=0.999)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--log-every", type=int, default=50)
    ap.add_argument("--ckpt-seconds", type=float, default=120)
    ap.add_argument("--fresh", action="store_true")
    ap.add_argument("--export-only", action="store_true")
    ap.add_argument("--sample", nargs="*")
    ap.add_argument("--adherence", action="store_true")
    return ap.parse_args()
