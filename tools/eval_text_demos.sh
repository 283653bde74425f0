#!/usr/bin/env bash
# Regenerates the measured tables of the two text demos in docs/eval_methods.md. Text-to-image: every cache method at
# every value of its main knob (--sweep) on the demo models/pixart_mnist, 5 samples for each of 10 prompts (one per digit),
# with prompt adherence (the demo classifier's digit against the prompt's), fidelity to the uncached samples, wall-clock
# medians and the FLOP ceiling, and the two Pareto figures. TeaCache and MagCache read the model's calibration
# (models/pixart_mnist.cache-calibration.json), refitted here first from other noise (calibrate's seed 2000) than eval's.
# Methods left out of the sweep: l2c (its router was trained for the demo DiT; the engine refuses it on another model)
# and ada, which has its own table beside fixed N (pixart_ada_table.md: the shipped models/pixart_mnist.ada_policy,
# trained with DDIM, so under DDIM there and in the README's "Caption models").
# Text-to-video (models/stdit_mnist): every method at its defaults plus BlockDance N = 2..4, 2 clips for each of 40
# prompts (every digit × every direction), scored per frame for the digit and per clip for the direction of motion;
# one timed run per setting on one thread (a video setting costs ~40× an image one), calibrated first like PixArt;
# then the thresholded methods whose defaults reuse nothing there, at larger thresholds (stdit_knobs.md).
# `./tools/eval_text_demos.sh pixart`, `stdit` or `stdit-knobs` (the last two tables only) runs one part. Build first:
#   dotnet build BlockDance.sln -c Release && tools/eval_text_demos.sh
set -euo pipefail
cd "$(dirname "$0")/.."
B=${BLOCKDANCE:-src/Sampler/BlockDance.Sampler/bin/Release/net10.0/blockdance}   # BLOCKDANCE=…: a copied build, for long runs
out=docs/eval
mkdir -p "$out"
prompts=(--prompt "a handwritten zero" --prompt "the digit 1" --prompt "a handwritten two" --prompt "number three"
         --prompt "a four" --prompt "five" --prompt "a 6 written by hand" --prompt "a handwritten seven"
         --prompt "the number 8" --prompt "digit nine")
methods=none,bd,bd-adaptive,bd-taylor,fora,delta-dit,teacache,fbcache,dbcache,magcache,taylorseer,pab,toca,adacache
part=${1:-all}
if [[ $part == all || $part == pixart ]]; then
  $B calibrate --model models/pixart_mnist "${prompts[@]}" --device cpu > "$out/pixart_calibrate.log" 2>&1
  $B eval --model models/pixart_mnist "${prompts[@]}" --device cpu --threads 1 --per-class 5 --repeats 3 --cache "$methods" --sweep \
    --out-md "$out/pixart_table.md" --plot "$out/pixart_pareto.png" > "$out/pixart_table.log" 2>&1
  $B eval --model models/pixart_mnist "${prompts[@]}" --device cpu --threads 1 --per-class 5 --repeats 1 --sampler ddim \
    --cache none,ada,bd2,bd3,bd2:block=4,bd3:block=4 --out-md "$out/pixart_ada_table.md" > "$out/pixart_ada_table.log" 2>&1
  echo "wrote $out/pixart_table.md, $out/pixart_pareto.png, $out/pixart_pareto_flops.png, $out/pixart_ada_table.md"
fi
if [[ $part == all || $part == stdit* ]]; then
  words=(zero one two three four five six seven eight nine)
  dirs=(left right up down)
  templates=("a %s moving %s" "the digit %s going %s" "a handwritten %s sliding %s" "%s moving %s")
  video=()
  for d in 0 1 2 3 4 5 6 7 8 9; do
    for r in 0 1 2 3; do
      k=$(( (d + r) % 4 )); w=${words[$d]}; [[ $k == 1 ]] && w=$d   # "the digit 4 going left", "a four moving right", …
      video+=(--prompt "$(printf "${templates[$k]}" "$w" "${dirs[$r]}")")
    done
  done
  if [[ $part != stdit-knobs ]]; then
    $B calibrate --model models/stdit_mnist "${video[@]}" --device cpu > "$out/stdit_calibrate.log" 2>&1
    $B eval --model models/stdit_mnist "${video[@]}" --device cpu --threads 1 --per-class 2 --repeats 1 \
      --cache none,bd2,bd3,bd4,bd-adaptive,bd-taylor,fora,delta-dit,teacache,fbcache,dbcache,magcache,taylorseer,pab,toca,adacache \
      --out-md "$out/stdit_table.md" --plot "$out/stdit_pareto.png" > "$out/stdit_table.log" 2>&1
  fi
  # the thresholded methods whose defaults (set on the DiT) reuse nothing on this model, at larger thresholds
  $B eval --model models/stdit_mnist "${video[@]}" --device cpu --threads 1 --per-class 2 --repeats 1 \
    --cache none,bd-adaptive:delta=0.3,bd-adaptive:delta=0.5,teacache:delta=0.15,teacache:delta=0.26,fbcache:threshold=0.1,fbcache:threshold=0.2,dbcache:threshold=0.15,dbcache:threshold=0.3 \
    --out-md "$out/stdit_knobs.md" > "$out/stdit_knobs.log" 2>&1
  # BlockDance-Ada with the policy trained for this model (models/stdit_mnist.ada_policy.safetensors), under DDIM as trained
  $B eval --model models/stdit_mnist "${video[@]}" --device cpu --threads 2 --per-class 2 --repeats 1 --sampler ddim \
    --cache none,ada,bd2,bd3,bd2:block=1 --out-md "$out/stdit_ada_table.md" > "$out/stdit_ada_table.log" 2>&1
  echo "wrote $out/stdit_table.md, $out/stdit_pareto.png, $out/stdit_pareto_flops.png, $out/stdit_knobs.md, $out/stdit_ada_table.md"
fi
