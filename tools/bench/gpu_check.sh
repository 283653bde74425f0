#!/usr/bin/env bash
# The one-run GPU check: everything the project measures on a lent GPU, in one command, in under 8 minutes.
#
#   tools/bench/gpu_check.sh OUTDIR            # on the GPU machine (H100/H200), from anywhere
#   GPU_CHECK_PRESET=small tools/bench/gpu_check.sh OUTDIR    # the same parts on the CPU, tiny shapes
#
# Needs: the published single-file binary (DEVELOPERS.md: `dotnet publish … -o .device/bin`; override with
# BLOCKDANCE_BIN) and Python 3 with PyTorch (PYTHON, default python3). Runs from the repository root (the
# self-test finds tests/fixtures there). Parts, in order, each under its own time limit (`timeout`), each
# writing OUTDIR/<part>.txt (and .json where the tool writes one) as soon as it ends; a part that fails or
# runs out of time is recorded in OUTDIR/parts.tsv and the script goes on:
#   a  selftest        blockdance selftest --device cuda        every fixture, every kernel version
#   b  ptx             blockdance ptx (when a ptxas is found)   registers, spills, SASS claims
#   c  kernels         blockdance kernels --device cuda --shapes xl --version all
#   d  weights         DiT-XL/2 random weights (real shapes), generated once OUTSIDE OUTDIR (GPU_CHECK_WEIGHTS)
#   e  engine_fp32/bf16   blockdance bench at 256 px, model batch 16 (--batch 8 with CFG), forward only
#   f  torch, sdpa     bench_torch.py on the same file and GPU: fp32 (TF32 off), TF32, bf16; SDPA alone
#   g  sampling        DDIM-50, no cache and BlockDance N = 2, 3 (window 0.25–0.95, boundary 20), engine and
#                      PyTorch; sweep: the N = 2 speedup at 1, 2, 4, 8, 16, 32 images (reduced step count)
#   i  host_*          the host backend (`--device cpu`, this machine's CPU cores) against PyTorch CPU fp32
#                      (best of 1 thread and all cores): GEMM (kernels --version host), demo DiT forward at
#                      model batch 20 — the ratios of issue 22 (targets ≥ 0.7 of PyTorch's GFLOP/s, ≤ 1.5×)
#   h  summary         summary.md / summary.json: every ratio, next to the targets of issues 18 and 22
# The whole run is bounded by GPU_CHECK_BUDGET seconds (default 450): each part's limit is cut to what is
# left, so the script ends in time even if the engine is slow.
set -uo pipefail

out=${1:?usage: tools/bench/gpu_check.sh OUTDIR (GPU_CHECK_PRESET=small for the CPU proof)}
repo=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$out" && out=$(cd "$out" && pwd)
cd "$repo"
preset=${GPU_CHECK_PRESET:-xl}
bin=${BLOCKDANCE_BIN:-$repo/.device/bin/blockdance}
py=${PYTHON:-python3}
budget=${GPU_CHECK_BUDGET:-450}
t_start=$(date +%s)
deadline=$((t_start + budget))

case "$preset" in
  xl)    dev=cuda; model_preset=XL/2; image=256; batch=8; iters=10; steps=50; sweep_steps=10; sweep=1,2,4,8,16,32; shapes=xl
         host_shapes=xl
         wdir=${GPU_CHECK_WEIGHTS:-/tmp/blockdance-gpu-check} ;;
  small) dev=cpu; model_preset=S/2; image=32; batch=1; iters=2; steps=6; sweep_steps=6; sweep=1,2; shapes=small
         host_shapes=demo
         wdir=${GPU_CHECK_WEIGHTS:-/tmp/blockdance-gpu-check-small} ;;
  *)     echo "GPU_CHECK_PRESET: expected xl or small, found '$preset'" >&2; exit 2 ;;
esac
# per-part time limits in seconds (worst case; cut further by the overall budget)
declare -A limit=([selftest]=35 [ptx]=30 [kernels]=45 [weights]=60 [engine_fp32]=45 [engine_bf16]=45 [torch]=40 [sdpa]=15
                  [sampling_engine]=65 [sampling_torch]=30 [sweep_torch]=25 [host_gemm]=40 [host_gemm_torch]=40
                  [host_forward]=25 [host_forward_torch]=25 [sweep_engine]=90)
[ "$preset" = small ] && for k in "${!limit[@]}"; do limit[$k]=$((limit[$k] * 4)); done   # the CPU is slow; no 8-minute rule

case "$(mkdir -p "$wdir" && cd "$wdir" && pwd)/" in "$out"/*)
  echo "GPU_CHECK_WEIGHTS: expected a folder outside the output folder $out, found $wdir" >&2; exit 2 ;; esac
[ -x "$bin" ] || { echo "blockdance binary: expected an executable at $bin (dotnet publish, see DEVELOPERS.md), found none" >&2; exit 2; }

printf 'part\trc\tseconds\tstatus\n' > "$out/parts.tsv"
{ echo "preset $preset, device $dev, binary $bin, started $(date -u +%FT%TZ)"; uname -a
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader 2>/dev/null || echo "no nvidia-smi"; } > "$out/machine.txt"

# ILGPU opens libcuda.so; driver-only machines often ship only libcuda.so.1: link it into a temp folder.
if [ "$dev" = cuda ] && ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libcuda\.so '; then
  so1=$(/sbin/ldconfig -p 2>/dev/null | awk '/libcuda\.so\.1 /{print $NF; exit}')
  for d in /usr/lib/x86_64-linux-gnu /usr/lib64 /usr/local/cuda/compat /usr/local/nvidia/lib64 /usr/lib/wsl/lib; do
    [ -z "$so1" ] && [ -e "$d/libcuda.so.1" ] && so1=$d/libcuda.so.1
  done
  if [ -n "$so1" ]; then
    libdir=$(mktemp -d)
    ln -s "$so1" "$libdir/libcuda.so"
    export LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
    echo "libcuda.so → $so1 (via $libdir)" >> "$out/machine.txt"
  else
    echo "no libcuda.so.1 found: the CUDA parts will fail" >> "$out/machine.txt"
  fi
fi

# part NAME CMD… : runs CMD under NAME's limit (cut to the budget left), stdout+stderr → OUTDIR/NAME.txt
part() {
  local name=$1; shift
  local lim=${limit[$name]} left=$((deadline - $(date +%s) - 5)) t0 rc status
  [ "$lim" -gt "$left" ] && lim=$left
  if [ "$lim" -lt 3 ]; then
    printf '%s\t-\t0\tskipped: time budget spent\n' "$name" >> "$out/parts.tsv"; echo "[gpu_check] $name: skipped (budget)"; return
  fi
  echo "[gpu_check] $name (limit ${lim}s): $*"
  t0=$(date +%s.%N)
  timeout -k 5 "$lim" "$@" > "$out/$name.txt" 2>&1
  rc=$?
  case $rc in 0) status=ok ;; 124|137) status="timeout after ${lim}s" ;; *) status=failed ;; esac
  [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ $rc -ne 137 ] && status="failed: $(grep -v '^\s*$' "$out/$name.txt" | tail -1 | cut -c1-160)"
  printf '%s\t%s\t%s\t%s\n' "$name" "$rc" "$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN{printf "%.1f", b - a}')" "$status" >> "$out/parts.tsv"
  echo "[gpu_check] $name: $status"
}

# (a) self-test, every fixture and kernel version on the device
part selftest "$bin" selftest --device "$dev" --fixtures tests/fixtures

# (b) static PTX check, when a ptxas exists here
ptxas=${PTXAS:-$(command -v ptxas || true)}
for p in /usr/local/cuda/bin/ptxas /root/.cache/ptxas-11.8/usr/bin/ptxas; do [ -z "$ptxas" ] && [ -x "$p" ] && ptxas=$p; done
if [ -n "$ptxas" ]; then part ptx "$bin" ptx --out "$out/ptx" --ptxas "$ptxas"
else printf 'ptx\t-\t0\tskipped: no ptxas\n' >> "$out/parts.tsv"; fi

# (c) kernel harness: every version validated, then timed
part kernels "$bin" kernels --device "$dev" --shapes "$shapes" --version all $( [ "$preset" = small ] && echo --iters 1 )

# (d) random weights in the real shapes, once, outside the output folder
mkdir -p "$wdir"
weights="$wdir/dit_${model_preset/\//_}_${image}.safetensors"
if [ -s "$weights" ]; then printf 'weights\t0\t0\treused %s\n' "$weights" >> "$out/parts.tsv"
else part weights "$py" tools/bench/bench_torch.py --make-random "$model_preset" --image-size "$image" --out "$weights.tmp" \
       && [ -s "$weights.tmp" ] && mv "$weights.tmp" "$weights"; fi

# (e) engine forward latency, fp32 and bf16, model batch 16 (per-kernel times from the profiled pass).
# A binary without --precision (before issue 12) runs its default precision: recorded, never silent.
probe=$(timeout 30 "$bin" bench --precision fp32 --batch x 2>&1)
if [[ "$probe" == *"unknown option '--precision'"* ]]; then
  prec() { [ "$1" = fp32 ] && return 0; return 1; }; pflag() { :; }
  echo "this binary has no --precision: engine parts run its default (fp32) kernels; bf16 engine parts skipped" | tee -a "$out/machine.txt"
else
  prec() { return 0; }; pflag() { echo "--precision $1"; }
fi
for p in fp32 bf16; do
  if prec "$p"; then
    part "engine_$p" "$bin" bench --device "$dev" --model "$weights" --batch "$batch" --iters "$iters" --warmup 2 \
         --no-sampling $(pflag "$p") --report "$out/engine_$p.json"
  else printf 'engine_%s\t-\t0\tskipped: binary has no --precision\n' "$p" >> "$out/parts.tsv"; fi
done
# sampling compares bf16 with bf16 where the binary has it, else fp32 with fp32
sp=bf16; prec bf16 || sp=fp32

# (f) PyTorch on the same weights and GPU: forward in fp32 / TF32 / bf16, then SDPA alone
part torch "$py" tools/bench/bench_torch.py --model "$weights" --device "$dev" --batch "$batch" --iters "$((iters * 2))" \
     --steps 0 --json "$out/torch.json"
part sdpa "$py" tools/bench/bench_torch.py --sdpa "$shapes" --device "$dev" --iters 20 --json "$out/sdpa.json"

# (g) DDIM-50 sampling: no cache, BlockDance N = 2, 3 (same precision on both sides), then the N = 2 batch sweep
part sampling_engine "$bin" bench --device "$dev" --model "$weights" --batch "$batch" --iters 1 --warmup 1 \
     --steps "$steps" $(pflag $sp) --report "$out/sampling_engine.json"
part sampling_torch "$py" tools/bench/bench_torch.py --model "$weights" --device "$dev" --batch "$batch" --iters 1 \
     --steps "$steps" --modes "$sp" --json "$out/sampling_torch.json"
part sweep_torch "$py" tools/bench/bench_torch.py --model "$weights" --device "$dev" --sweep "$sweep" --steps "$sweep_steps" \
     --modes "$sp" --json "$out/sweep_torch.json"
# (i) the host backend on this machine's CPU: GEMM and the demo forward against PyTorch CPU fp32, which runs
# at 1 thread and at all cores (its OpenMP threads spin-wait under load; the summary takes the better)
part host_gemm "$bin" kernels --device cpu --op gemm --version host --shapes "$host_shapes" --iters 3
export py out host_shapes
part host_gemm_torch bash -c 'for t in 1 $(nproc); do "$py" tools/bench/bench_torch.py --gemm "$host_shapes" --device cpu --threads $t \
     --iters 3 --json "$out/host_gemm_torch_t$t.json" || exit $?; done'
part host_forward "$bin" bench --device cpu --model models/dit_mnist.safetensors --batch 10 --iters 5 --warmup 2 --no-sampling \
     --report "$out/host_forward.json"
part host_forward_torch bash -c 'for t in 1 $(nproc); do "$py" tools/bench/bench_torch.py --model models/dit_mnist.safetensors --device cpu \
     --threads $t --batch 10 --iters 5 --steps 0 --modes fp32 --json "$out/host_forward_torch_t$t.json" || exit $?; done'

# one engine bench per batch size (a report each, written as soon as it finishes; N = 3 comes along),
# last because it takes whatever time the budget has left
export bin dev weights sweep sweep_steps out
export GPU_CHECK_PFLAG="$(pflag $sp)"
part sweep_engine bash -c 'for b in ${sweep//,/ }; do echo "== batch $b"; "$bin" bench --device "$dev" --model "$weights" --batch "$b" \
     --iters 1 --warmup 0 --steps "$sweep_steps" $GPU_CHECK_PFLAG --report "$out/sweep_engine_b$b.json" || exit $?; done'

# (h) the summary: every ratio, with the targets
"$py" tools/bench/gpu_check_summary.py "$out" > "$out/summary.txt" 2>&1 || echo "summary failed (see summary.txt)"
cat "$out/summary.txt"
echo "[gpu_check] done in $(( $(date +%s) - t_start )) s; results in $out"
