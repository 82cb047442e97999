#!/usr/bin/env bash
# Every CLI mistake is one line on stderr starting "amskv: " and a non-zero exit: 2 for the
# user's flags, budget or policy and for a model the runner does not support (architecture,
# key), 1 for files that cannot be used. The cases that need the model run only when it is
# there.
set -uo pipefail
amskv=$1
model=${AMSKV_MODEL:-$HOME/.cache/amskv/SmolLM2-135M-Instruct.Q4_1.gguf}
fail=0
check() {  # expected-exit message-part args...
  local want=$1 part=$2
  shift 2
  local err rc=0
  err=$("$amskv" "$@" 2>&1 > /dev/null) || rc=$?
  if [ "$rc" -ne "$want" ] || [ "$(printf '%s\n' "$err" | wc -l)" -ne 1 ] ||
    [[ "$err" != "amskv: "*"$part"* ]]; then
    echo "cli_errors: amskv $*: exit $rc (want $want), stderr: $err"
    fail=1
  fi
}
check 2 "unknown subcommand 'frob'" frob
check 2 "unknown option '--bogus'" run --bogus
check 2 "bad value '12XB' for --kv-budget" run --prompt hi --kv-budget 12XB
check 2 "bad value '0' for --threads" run --prompt hi --threads 0
check 2 "bad value '-1' for --temp" run --prompt hi --temp -1
check 2 "bad value '1.5' for --top-p" run --prompt hi --top-p 1.5
check 2 "bad value 'f8' for --kv-dtype" run --prompt hi --kv-dtype f8
check 2 "-n needs a value" run --prompt hi -n
check 2 "run needs --prompt TEXT or --file PATH" run
check 2 "bad value 'x' for --seconds" stress --seconds x
check 1 "cannot open" run --prompt hi --model /nonexistent/model.gguf
check 1 "cannot read prompt file" run --file /nonexistent/prompt.txt
# A tiny gemma3 file (the fuzz seed) renamed to an architecture nobody knows, and a qwen2 one
# that lost a required key.
seeds=$(dirname "$0")/../fuzz/corpus/fuzz_model
tmp=${TMPDIR:-/tmp}/amskv_cli_errors.$$
LC_ALL=C sed 's/gemma3/gemmaZ/g' "$seeds/gemma3_q5_0.gguf" > "$tmp.arch.gguf"
LC_ALL=C sed 's/qwen2.block_count/qwen2.block_cXunt/' "$seeds/qwen2_q4_0.gguf" > "$tmp.key.gguf"
check 2 "architecture 'gemmaZ' is not one the runner knows" run --prompt hi --model "$tmp.arch.gguf"
check 2 "qwen2.block_count" inspect "$tmp.key.gguf"
rm -f "$tmp.arch.gguf" "$tmp.key.gguf"
if [ -f "$model" ]; then
  check 2 "unknown policy 'bogus'" run --prompt hi --policy bogus --model "$model"
  check 2 "has no option 'segment_mas'" run --prompt hi --policy ams:tova,segment_mas=0.1 --model "$model"
  check 2 "is too small" run --prompt hi --kv-budget 1KiB --model "$model"
  check 2 "bad budget '0'" eval --budgets 0 --model "$model"
  check 2 "policy 'tova,seed=x'" eval --policy tova,seed=x --model "$model"
  head -c 100 /dev/urandom > "${TMPDIR:-/tmp}/amskv_not_a_model.$$"
  check 1 "bad magic" inspect "${TMPDIR:-/tmp}/amskv_not_a_model.$$"
  rm -f "${TMPDIR:-/tmp}/amskv_not_a_model.$$"
fi
[ $fail -eq 0 ] && echo "cli_errors: passed"
exit $fail
