#!/usr/bin/env bash
# Sets up what is missing and runs every test amskv has:
#   1. release build: unit, property and model tests, ISA machine-code check (ctest)
#   2. consumer: install to a temporary prefix, build a C program with find_package and
#      with pkg-config, run it
#   3. ASan + UBSan build of the whole suite
#   4. aarch64 cross build, the whole suite under qemu (the NEON kernels)
#   5. armv7 hard-float cross build, the whole suite under qemu (32-bit sizes)
#   6. ThreadSanitizer build: the concurrency tests and amskv stress on several threads
#   7. libFuzzer (clang, ASan+UBSan): every fuzz target for FUZZ_SECONDS (25) over its corpus
# Each stage can be run alone: tools/test.sh release|consumer|asan|arm64|armhf|tsan|fuzz
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
stages=${*:-release consumer asan tsan fuzz arm64 armhf}
jobs=$(nproc)
cache=${AMSKV_CACHE:-$HOME/.cache/amskv}
export AMSKV_MODEL=${AMSKV_MODEL:-$cache/SmolLM2-135M-Instruct.Q4_1.gguf}

bash tools/setup.sh --tests

python_args=()
[ -x "$cache/venv/bin/python" ] && python_args=(-DAMSKV_PYTHON="$cache/venv/bin/python")

passed=0 failed=0
log=$(mktemp)
trap 'rm -f "$log"' EXIT

# ctest with its summary kept: "N% tests passed, F tests failed out of T".
run_ctest() {
  local dir=$1
  shift
  local rc=0
  ctest --test-dir "$dir" -j"$jobs" --output-on-failure "$@" 2>&1 | tee "$log" || rc=$?
  local line total bad
  line=$(grep -E "tests passed, [0-9]+ tests? failed out of" "$log" | tail -1)
  total=$(sed -E 's/.* out of ([0-9]+).*/\1/' <<< "$line")
  bad=$(sed -E 's/.*passed, ([0-9]+) tests? failed.*/\1/' <<< "$line")
  passed=$((passed + ${total:-0} - ${bad:-0}))
  failed=$((failed + ${bad:-0}))
  [ -n "$line" ] || failed=$((failed + 1))
  return $rc
}

build() {
  local dir=$1
  shift
  cmake -S . -B "$dir" -DCMAKE_BUILD_TYPE=Release "$@" > /dev/null
  cmake --build "$dir" -j"$jobs" 2>&1 | grep -E "(warning|error):" && {
    echo "test.sh: $dir: the build printed warnings or errors" >&2
    return 1
  }
  return 0
}

status=0
times=""
for stage in $stages; do
  echo "=== $stage"
  start=$SECONDS
  case $stage in
    release)
      build build/release "${python_args[@]}" || status=1
      run_ctest build/release || status=1
      ;;
    consumer)
      [ -d build/release ] || build build/release
      if bash tests/consumer/run.sh build/release; then passed=$((passed + 2)); else
        failed=$((failed + 1)); status=1; fi
      ;;
    asan)
      # The stress tool runs a minute here (the "stress" test).
      build build/asan -DAMSKV_SANITIZE=address,undefined -DAMSKV_BUILD_BENCH=OFF \
        -DAMSKV_STRESS_SECONDS=60 -DCMAKE_BUILD_TYPE=RelWithDebInfo || status=1
      ASAN_OPTIONS=detect_leaks=1 run_ctest build/asan || status=1
      ;;
    tsan)
      # OpenMP off: libgomp is not instrumented, so TSan would report its internals; oneDNN
      # off too (it runs on libgomp), which makes this the x86-64 build without oneDNN.
      cmake -S . -B build/tsan -DCMAKE_BUILD_TYPE=RelWithDebInfo -DAMSKV_SANITIZE=thread \
        -DAMSKV_OPENMP=OFF -DAMSKV_ONEDNN=OFF -DAMSKV_BUILD_BENCH=OFF -DAMSKV_STRESS_SECONDS=30 > /dev/null
      if cmake --build build/tsan -j"$jobs" --target test_concurrency amskv_cli 2>&1 |
        grep -E "(warning|error):"; then
        echo "test.sh: build/tsan: the build printed warnings or errors" >&2
        status=1
      fi
      TSAN_OPTIONS=halt_on_error=1 run_ctest build/tsan -R "^(Concurrency\.|stress$)" || status=1
      ;;
    fuzz)
      bash tests/fuzz/run.sh build/fuzz "${FUZZ_SECONDS:-25}" && passed=$((passed + 6)) || {
        failed=$((failed + 1)); status=1; }
      ;;
    arm64)
      build build/arm64 -DCMAKE_TOOLCHAIN_FILE=toolchains/aarch64-linux-gnu.cmake || status=1
      run_ctest build/arm64 --timeout 900 || status=1
      ;;
    armhf)
      build build/armhf -DCMAKE_TOOLCHAIN_FILE=toolchains/arm-linux-gnueabihf.cmake || status=1
      run_ctest build/armhf --timeout 900 || status=1
      ;;
    *)
      echo "test.sh: unknown stage '$stage' (release, consumer, asan, tsan, fuzz, arm64, armhf)" >&2
      exit 2
      ;;
  esac
  times+=" $stage $((SECONDS - start))s"
done
echo "test.sh: stage times:$times"
echo "test.sh: $passed passed, $failed failed"
exit $status
