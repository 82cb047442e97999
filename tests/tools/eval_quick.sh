#!/usr/bin/env bash
# amskv eval --quick on the real model (CI): a small run of every task that fails when an
# ordering that must always hold does not (see tools/cli/eval.cpp). Exit 77 (skip) without the
# model.
set -euo pipefail
amskv=$1
model=${AMSKV_MODEL:-$HOME/.cache/amskv/SmolLM2-135M-Instruct.Q4_1.gguf}
[ -f "$model" ] || { echo "needs the model at $model (tools/setup.sh)"; exit 77; }
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
"$amskv" eval --quick --model "$model" --out "$out"
for f in results.csv results.json summary.md ppl_gap.svg recall.svg recall_fresh.svg agree_match.svg \
  agree_kl.svg wipe_out.svg block_lost.svg recall_tasks.jsonl; do
  [ -s "$out/$f" ] || { echo "eval_quick: $f is missing or empty"; exit 1; }
done
# The figure of one compression event.
"$amskv" eval --plot-event "$out/event.svg" --model "$model" --ctx 512 --budgets 0.25
grep -q "<svg" "$out/event.svg"
# A broken recall task file is one clear line naming the file and line, exit status 2.
printf '{"id": "a", "pieces": ["x"], "facts": [{"piece": 3, "text": "t", "question": "q", "answer": "1"}]}\n' > "$out/bad.jsonl"
rc=0
"$amskv" eval --model "$model" --recall "$out/bad.jsonl" --task recall --out "$out/x" 2> "$out/err" || rc=$?
[ $rc -eq 2 ] && grep -q "bad.jsonl:1: a fact's 'piece' must index 'pieces'" "$out/err" || {
  echo "eval_quick: bad recall file: exit $rc, $(cat "$out/err")"; exit 1; }
echo "eval_quick: passed"
