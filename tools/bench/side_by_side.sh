#!/usr/bin/env bash
# One go on a GPU machine: the engine and PyTorch on the same card, the same weights file, then ratios.
#   tools/bench/side_by_side.sh BLOCKDANCE_BINARY [PRESET=XL/2] [IMAGE=256] [BATCH=8] [OUTDIR=bench-out]
set -euo pipefail
bin=${1:?path to the blockdance binary}; preset=${2:-XL/2}; image=${3:-256}; batch=${4:-8}; out=${5:-bench-out}
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"
weights="$out/dit_random_${image}.safetensors"
[ -f "$weights" ] || python3 "$here/bench_torch.py" --make-random "$preset" --image-size "$image" --out "$weights"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader | tee "$out/gpu.txt" || true
"$bin" bench --device cuda --model "$weights" --batch "$batch" --report "$out/engine.json" | tee "$out/engine.txt"
python3 "$here/bench_torch.py" --model "$weights" --batch "$batch" --json "$out/torch.json" | tee "$out/torch.txt"
python3 - "$out/engine.json" "$out/torch.json" <<'PY'
import json, sys
e, t = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
print("engine forward %.2f ms on %s" % (e["forward_ms_median"], e["device"]))
for mode in ("fp32", "tf32", "bf16"):
    if mode in t:
        print("  vs PyTorch %-4s %.2f ms: engine/PyTorch = %.2fx" % (mode, t[mode]["forward_ms_median"], e["forward_ms_median"] / t[mode]["forward_ms_median"]))
PY
