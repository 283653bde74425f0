#!/usr/bin/env bash
# Regenerates the measured part of docs/eval_methods.md: the method table with bootstrap intervals and wall-clock
# medians (docs/eval/table.md), its two Pareto figures (docs/eval/pareto.png: latency axis, pareto_flops.png: FLOP
# axis, with SVG twins), the latency-against-batch-size table (docs/eval/batch.md), the full --sweep of every method
# (docs/eval/sweep_table.md, sweep_pareto*.png) and Ada against fixed N (docs/eval/ada_table.md). The two evals run as two
# processes at once (each times its own settings in one process on one device). Build first:
#   dotnet build BlockDance.sln -c Release && tools/eval_methods.sh
set -euo pipefail
cd "$(dirname "$0")/.."
B=src/Sampler/BlockDance.Sampler/bin/Release/net10.0/blockdance
out=docs/eval
mkdir -p "$out"
$B eval --device cpu --per-class 5 --repeats 3 --cache none,bd2,bd3,bd4,bd-adaptive:delta=0.1:order=1,bd-adaptive:delta=0.2:order=1,bd-adaptive:delta=0.3:order=1,teacache:delta=0.04,teacache:delta=0.08,teacache:delta=0.15,fora:n=3,ada \
  --out-md "$out/table.md" --plot "$out/pareto.png" > "$out/table.log" 2>&1 &
t=$!
$B eval --device cpu --per-class 1 --repeats 2 --cache none \
  --batch-sweep 1,2,4,8,16,32,64 --batch-cache none,bd2,bd3,teacache,bd-adaptive:delta=0.2:order=1 \
  --out-md "$out/batch.md" > "$out/batch.log" 2>&1 &
b=$!
wait $t
wait $b
# The full sweep: every method except ada at every value of its main knob (57 settings), one timed run each (FLOP
# ceilings and quality do not depend on the timing), then Ada (the shipped policy) beside fixed N on the same noise.
$B eval --device cpu --threads 1 --per-class 5 --repeats 1 --sweep \
  --cache none,bd,bd-adaptive,bd-taylor,fora,delta-dit,teacache,fbcache,dbcache,magcache,taylorseer,pab,toca,adacache,l2c \
  --out-md "$out/sweep_table.md" --plot "$out/sweep_pareto.png" > "$out/sweep_table.log" 2>&1
$B eval --device cpu --threads 1 --per-class 5 --repeats 1 --cache none,ada,bd2,bd3,bd2:block=4,bd3:block=4 \
  --out-md "$out/ada_table.md" > "$out/ada_table.log" 2>&1
echo "wrote $out/table.md, $out/pareto.png, $out/pareto_flops.png, $out/batch.md, $out/sweep_table.md, $out/sweep_pareto*.png, $out/ada_table.md"
