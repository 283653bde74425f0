#!/usr/bin/env bash
# The engine and PyTorch side by side on the same weights file and the same machine, then ratios.
#
#   tools/bench/side_by_side.sh BLOCKDANCE_BINARY [PRESET=XL/2] [IMAGE=256] [BATCH=8] [OUTDIR=bench-out]   GPU
#   tools/bench/side_by_side.sh cpu [OUTDIR=bench-cpu]                                                     CPU
#
# cpu: the host backend (`--device cpu`, all cores) against Debian's CPU PyTorch fp32, at the targets of
# issue 22; writes OUTDIR/table.md (the table of docs/benchmarks.md) and a .json per part. Parts:
#   gemm      host GEMM (tools/bench/cpu) vs F.linear at DiT-XL/2's shapes (M = 4096 tokens), GFLOP/s
#   demo      the demo DiT forward at model batch 20 (`blockdance bench --batch 10`, CFG doubles it)
#   xl        DiT-XL/2-256 forward at model batch 2 (random weights in the real shapes, made once)
#   vae       SD-VAE decode of one 32×32 latent (random weights in sd-vae-ft-ema's shapes, made once)
#   sample    the README demo (DDIM-50, 10 digits, CFG 4): sampling wall time (engine only; target ≤ 3 s)
#   eval      `blockdance eval --quick` over every method: wall time (engine only; target ≤ 2 min)
# Fairness (see /work/shared/notes/cpu-benchmarks.md): PyTorch's OpenMP threads spin-wait, so its figure is
# the best of 1 thread and all cores; every figure is a median of CPU_BENCH_ITERS runs (default 5) with
# min and max beside it, and the machine's load average (uptime) is recorded before each part.
# Env: CPU_BENCH_PARTS (default "gemm demo xl vae sample eval"), CPU_BENCH_ITERS, PYTHON (default
# /usr/bin/python3), BLOCKDANCE_BIN (default the Release build of src/Sampler).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
repo=$(cd "$here/../.." && pwd)

if [ "${1:-}" = cpu ]; then
  out=${2:-bench-cpu}; mkdir -p "$out"; out=$(cd "$out" && pwd)
  cd "$repo"
  py=${PYTHON:-/usr/bin/python3}
  iters=${CPU_BENCH_ITERS:-5}
  cores=$(nproc)
  parts=${CPU_BENCH_PARTS:-gemm demo xl vae sample eval}
  bin=${BLOCKDANCE_BIN:-$repo/src/Sampler/bin/Release/net10.0/blockdance}
  [ -x "$bin" ] || dotnet build src/Sampler -c Release -v q
  dotnet build tools/bench/cpu -c Release -v q > /dev/null
  cpubench="dotnet $repo/tools/bench/cpu/bin/Release/net10.0/CpuBench.dll"
  { echo "machine: $(lscpu | sed -n 's/^Model name: *//p'), $cores cores, $(free -g | awk '/Mem:/{print $2}') GiB; $(date -u +%FT%TZ)"
    echo "engine: $(git rev-parse --short HEAD); PyTorch $($py -c 'import torch; print(torch.__version__)')"; } > "$out/machine.txt"
  load() { echo "$1 $(uptime | sed 's/.*load average: //')" >> "$out/load.txt"; }
  torch_best() {   # torch_best NAME ARGS…: PyTorch at 1 thread and at all cores, one json each
    for t in 1 "$cores"; do "$py" "$here/bench_torch.py" --device cpu --threads "$t" "${@:2}" --json "$out/$1_torch_t$t.json" | tee -a "$out/$1.txt"; done
  }
  for p in $parts; do
    load "$p"
    case $p in
      gemm) $cpubench gemm --shapes xl --iters "$iters" --json "$out/gemm_engine.json" | tee "$out/gemm.txt"
            torch_best gemm --gemm xl --iters "$iters" ;;
      demo) "$bin" bench --device cpu --model models/dit_mnist.safetensors --batch 10 --iters "$iters" --warmup 2 --no-sampling \
              --report "$out/demo_engine.json" | tee "$out/demo.txt"
            torch_best demo --model models/dit_mnist.safetensors --batch 10 --iters "$iters" --steps 0 --modes fp32 ;;
      xl)   w=${CPU_BENCH_XL_WEIGHTS:-/tmp/blockdance-bench/dit_xl2_256.safetensors}; mkdir -p "$(dirname "$w")"
            [ -s "$w" ] || "$py" "$here/bench_torch.py" --make-random XL/2 --image-size 256 --out "$w"
            "$bin" bench --device cpu --model "$w" --batch 1 --iters "$iters" --warmup 1 --no-sampling --report "$out/xl_engine.json" | tee "$out/xl.txt"
            torch_best xl --model "$w" --batch 1 --iters "$iters" --warmup 1 --steps 0 --modes fp32 ;;
      vae)  w=${CPU_BENCH_VAE_WEIGHTS:-/tmp/blockdance-bench/sd_vae_random.safetensors}; mkdir -p "$(dirname "$w")"
            [ -s "$w" ] || "$py" "$here/bench_torch.py" --make-vae "$w"
            $cpubench vae --model "$w" --latent 32 --iters "$iters" --json "$out/vae_engine.json" | tee "$out/vae.txt"
            torch_best vae --vae "$w" --latent 32 --iters "$iters" ;;
      sample) for i in $(seq "$iters"); do "$bin" sample --device cpu --out "$out/demo.png" 2>&1 | grep -E '^time' ; done | tee "$out/sample.txt" ;;
      eval) s=$(date +%s.%N); "$bin" eval --device cpu --quick > "$out/eval.log" 2>&1; rc=$?
            awk -v a="$s" -v b="$(date +%s.%N)" -v rc=$rc 'BEGIN{printf "eval --quick: %.1f s wall (exit %d)\n", b - a, rc}' | tee "$out/eval.txt" ;;
      *) echo "CPU_BENCH_PARTS: unknown part '$p' (expected gemm demo xl vae sample eval)" >&2; exit 2 ;;
    esac
  done
  "$py" "$here/cpu_table.py" "$out" | tee "$out/table.md"
  exit 0
fi

bin=${1:?path to the blockdance binary, or cpu}; preset=${2:-XL/2}; image=${3:-256}; batch=${4:-8}; out=${5:-bench-out}
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
