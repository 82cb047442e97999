#!/usr/bin/env bash
# The main job: set up what is missing, build, and decode under a fixed KV budget.
#   tools/run.sh [amskv_demo options]      (e.g. --kv-budget 4MiB --policy streaming)
# Until the model runner lands this runs the synthetic-model demo; it prints the budget,
# the capacity per layer, tokens/s and the compression events.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash tools/setup.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build/release -j"$(nproc)" --target amskv_demo > /dev/null
exec build/release/tools/amskv_demo "$@"
