#!/usr/bin/env bash
# The main job: set up what is missing (packages, the default model), build, and generate
# text with SmolLM2-135M-Instruct while its KV cache stays inside a 2 MiB budget (186 tokens
# per layer in k8v4, the default dtype, so AMS evicts as the text grows). Options replace the
# defaults:
#   tools/run.sh --prompt "..." -n 100 --kv-budget 8MiB --policy ams:expected_attention
# (tools/run.sh --help lists them).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/setup.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build/release -j"$(nproc)" --target amskv_cli > /dev/null
if [ $# -eq 0 ]; then
  set -- --chat --prompt "Write a short story about a lighthouse keeper who finds a message in a bottle." \
    -n 220 --kv-budget 2MiB --policy ams:tova
fi
[ "${1:-}" = "--help" ] && exec build/release/tools/amskv --help
exec build/release/tools/amskv run "$@"
