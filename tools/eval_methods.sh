#!/usr/bin/env bash
# Regenerates the measured part of docs/eval_methods.md: the method table with bootstrap intervals and wall-clock
# medians (docs/eval/table.md), its two Pareto figures (docs/eval/pareto.png: latency axis, pareto_flops.png: FLOP
# axis, with SVG twins), the latency-against-batch-size table (docs/eval/batch.md), the full --sweep of every method
# (docs/eval/sweep_table.md, sweep_pareto*.png) and Ada against fixed N (docs/eval/ada_table.md). Every eval runs on one
# thread, two processes at once on the two cores (each times its own settings, interleaved, in one process); on the CPU
# backend each table has the process's CPU time beside the wall-clock. Build first:
#   dotnet build BlockDance.sln -c Release && tools/eval_methods.sh          (or `… table` / `… sweep`: one of the two parts)
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BLOCKDANCE:-src/Sampler/BlockDance.Sampler/bin/Release/net10.0/blockdance}   # BLOCKDANCE=…: a copied build, for long runs
out=docs/eval
mkdir -p "$out"
part=${1:-all}
if [[ $part == all || $part == table ]]; then
$B eval --device cpu --threads 1 --per-class 5 --repeats 3 --cache none,bd2,bd3,bd4,bd-adaptive:delta=0.1:order=1,bd-adaptive:delta=0.2:order=1,bd-adaptive:delta=0.3:order=1,teacache:delta=0.04,teacache:delta=0.08,teacache:delta=0.15,fora:n=3,ada \
  --out-md "$out/table.md" --plot "$out/pareto.png" > "$out/table.log" 2>&1 &
t=$!
$B eval --device cpu --threads 1 --per-class 1 --repeats 3 --cache none \
  --batch-sweep 1,2,4,8,16,32,64 --batch-cache none,bd2,bd3,teacache,bd-adaptive:delta=0.2:order=1 \
  --out-md "$out/batch.md" > "$out/batch.log" 2>&1 &
b=$!
wait $t
wait $b
fi
if [[ $part == all || $part == sweep ]]; then
# The full sweep: every method except ada at every value of its main knob (57 settings), three timed runs each, and Ada
# (the shipped policy) beside fixed N on the same noise (one timed run: that table is about quality and FLOPs).
$B eval --device cpu --threads 1 --per-class 5 --repeats 3 --sweep \
  --cache none,bd,bd-adaptive,bd-taylor,fora,delta-dit,teacache,fbcache,dbcache,magcache,taylorseer,pab,toca,adacache,l2c \
  --out-md "$out/sweep_table.md" --plot "$out/sweep_pareto.png" > "$out/sweep_table.log" 2>&1 &
s=$!
$B eval --device cpu --threads 1 --per-class 5 --repeats 1 --cache none,ada,bd2,bd3,bd2:block=4,bd3:block=4 \
  --out-md "$out/ada_table.md" > "$out/ada_table.log" 2>&1
wait $s
fi
echo "wrote $out/table.md, $out/pareto.png, $out/pareto_flops.png, $out/batch.md, $out/sweep_table.md, $out/sweep_pareto*.png, $out/ada_table.md"
