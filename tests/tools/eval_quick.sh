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
  agree_kl.svg wipe_out.svg block_lost.svg frontier_gap.svg frontier_recall.svg recall_tasks.jsonl; do
  [ -s "$out/$f" ] || { echo "eval_quick: $f is missing or empty"; exit 1; }
done
grep -q "^## Variants against their base policy" "$out/summary.md" || {
  echo "eval_quick: no variants table"; exit 1; }
# The other kinds of recall's family, with the quick checks (the full cache holds every token
# of every fact: the fact spans are right in the chat template and in code too).
"$amskv" eval --quick --model "$model" --task recall_q,chat,code --policy full --policy ams:tova --ctx 320 --budgets 0.5 \
  --out "$out/kinds"
grep -q "^## Recall's tasks kind by kind" "$out/kinds/summary.md" || {
  echo "eval_quick: no table of the kinds"; exit 1; }
for kind in recall_q chat code; do
  grep -q "\"kind\": \"$kind\"" "$out/kinds/recall_tasks.jsonl" || {
    echo "eval_quick: no $kind task"; exit 1; }
done
# C++ code tasks: definitions and questions in C++.
cpp=$(ls /usr/include/c++/*/bits/stl_algo.h | head -1)
"$amskv" recall-gen --model "$model" --text "$cpp" --kind code --ctx 1024 --facts 4 --tasks 1 \
  | grep -q 'static_assert(' || { echo "eval_quick: no C++ code task from $cpp"; exit 1; }
# Generated keys share no word within a task.
"$amskv" recall-gen --model "$model" --text /usr/share/common-licenses/GPL-3 --kind recall \
  --ctx 2048 --facts 64 --tasks 2 > "$out/keys.jsonl"
python3 - "$out/keys.jsonl" <<'PY'
import json, sys
for line in open(sys.argv[1]):
    t = json.loads(line)
    words = [w for f in t["facts"] for w in f["question"].split(" of the ")[1][:-3].split()]
    assert len(words) == 2 * len(t["facts"]) == 128 and len(set(words)) == len(words), words
PY
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
