#!/usr/bin/env bash
# Regenerates the measured tables of the two text demos in docs/eval_methods.md: every cache method at every value of its
# main knob (--sweep) on the text-to-image demo models/pixart_mnist, 5 samples for each of 10 prompts (one per digit),
# with prompt adherence (the demo classifier's digit against the prompt's), fidelity to the uncached samples, wall-clock
# medians and the FLOP ceiling, and the two Pareto figures. TeaCache and MagCache read the model's calibration
# (models/pixart_mnist.cache-calibration.json), refitted here first from other noise (calibrate's seed 2000) than eval's.
# Methods left out: l2c (its router was trained for the demo DiT; the engine refuses it on another model) and ada (this
# script regenerates the recorded table, which predates the PixArt policy; that policy's own comparison: README,
# BlockDance-Ada, "Caption models"). Build first:
#   dotnet build BlockDance.sln -c Release && tools/eval_text_demos.sh
set -euo pipefail
cd "$(dirname "$0")/.."
B=src/Sampler/BlockDance.Sampler/bin/Release/net10.0/blockdance
out=docs/eval
mkdir -p "$out"
prompts=(--prompt "a handwritten zero" --prompt "the digit 1" --prompt "a handwritten two" --prompt "number three"
         --prompt "a four" --prompt "five" --prompt "a 6 written by hand" --prompt "a handwritten seven"
         --prompt "the number 8" --prompt "digit nine")
methods=none,bd,bd-adaptive,bd-taylor,fora,delta-dit,teacache,fbcache,dbcache,magcache,taylorseer,pab,toca,adacache
$B calibrate --model models/pixart_mnist "${prompts[@]}" --device cpu > "$out/pixart_calibrate.log" 2>&1
$B eval --model models/pixart_mnist "${prompts[@]}" --device cpu --per-class 5 --repeats 3 --cache "$methods" --sweep \
  --out-md "$out/pixart_table.md" --plot "$out/pixart_pareto.png" > "$out/pixart_table.log" 2>&1
echo "wrote $out/pixart_table.md, $out/pixart_pareto.png, $out/pixart_pareto_flops.png"
