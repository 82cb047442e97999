#!/usr/bin/env bash
# amskv chat reads turns from stdin (not a terminal here), answers each under the budget,
# keeps the conversation in one session, and ends at /quit. Exit 77 (skip) without the model.
set -euo pipefail
amskv=$1
model=${AMSKV_MODEL:-$HOME/.cache/amskv/SmolLM2-135M-Instruct.Q4_1.gguf}
[ -f "$model" ] || { echo "needs the model at $model (tools/setup.sh)"; exit 77; }
out=$(printf 'What is the capital of France?\nAnd of Italy?\n/quit\nnever read\n' |
  "$amskv" chat --model "$model" --temp 0 -n 24 --kv-budget 4MiB --threads 2 2> /tmp/amskv_chat_err.$$)
err=$(cat /tmp/amskv_chat_err.$$)
rm -f /tmp/amskv_chat_err.$$
echo "$out"
echo "$err"
# Two turns answered (one status line each), the first mentions Paris, the session is k8v4
# (run and chat's default dtype), evicts nothing at this size but reports its stats at the end.
[ "$(grep -c '^\[.* tokens, .* tok/s; position' <<< "$err")" -eq 2 ] || { echo "chat_smoke: not two turns"; exit 1; }
grep -q "Paris" <<< "$out" || { echo "chat_smoke: no Paris in the first answer"; exit 1; }
grep -q "; k8v4, policy " <<< "$err" || { echo "chat_smoke: the default dtype is not k8v4"; exit 1; }
grep -q "wipe-out rate" <<< "$err" || { echo "chat_smoke: no final stats"; exit 1; }
echo "chat_smoke: passed"
