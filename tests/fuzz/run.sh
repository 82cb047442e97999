#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) in BUILD_DIR and runs each for
# SECONDS over a copy of its seed corpus (tests/fuzz/corpus/<target>). A crash, leak or
# sanitizer report fails the run; libFuzzer leaves the input as BUILD_DIR/crash-*.
#   tests/fuzz/run.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
dir=${1:-$root/build/fuzz}
mkdir -p "$dir"
dir=$(cd "$dir" && pwd)
seconds=${2:-45}
CC=clang CXX=clang++ cmake -S "$root" -B "$dir" -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DAMSKV_FUZZ=ON -DAMSKV_SANITIZE=address,undefined -DAMSKV_OPENMP=OFF \
  -DAMSKV_BUILD_TESTS=OFF -DAMSKV_BUILD_BENCH=OFF -DAMSKV_BUILD_TOOLS=OFF > /dev/null
targets="fuzz_gguf fuzz_tokenizer fuzz_policy fuzz_capi fuzz_model fuzz_recall"
cmake --build "$dir" -j"$(nproc)" --target $targets > "$dir/build.log" 2>&1 || {
  cat "$dir/build.log"; exit 1; }
# One target per core at a time: each still gets SECONDS of its own.
fuzz_one() {
  local t=$1 work="$dir/corpus/$1"
  mkdir -p "$work"
  if ! (cd "$dir" && "./tests/fuzz/$t" -max_total_time="$seconds" -rss_limit_mb=2048 \
    -timeout=20 -print_final_stats=1 "$work" "$root/tests/fuzz/corpus/$t" > "$dir/$t.log" 2>&1); then
    tail -50 "$dir/$t.log"
    echo "fuzz: $t FAILED (input saved in $dir as crash-*/leak-*/timeout-*)"
    return 1
  fi
  grep -E "^stat::number_of_executed_units|^#[0-9]+.*DONE" "$dir/$t.log" | tail -2 | sed "s/^/fuzz: $t: /" || true
}
status=0
pids=()
for t in $targets; do
  echo "fuzz: $t for ${seconds}s"
  fuzz_one "$t" &
  pids+=($!)
  if [ ${#pids[@]} -ge "$(nproc)" ]; then
    wait "${pids[0]}" || status=1
    pids=("${pids[@]:1}")
  fi
done
for p in "${pids[@]}"; do wait "$p" || status=1; done
exit $status
