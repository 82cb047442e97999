#!/usr/bin/env bash
# Machine-code check of the ISA split:
#  1. in each library (the core and the model runner), the AVX-512 kernel objects have zmm
#     instructions and no other object has any;
#  2. in a linked binary, every function that uses AVX/AVX-512 instructions belongs to a
#     per-ISA kernel (its name says avx2 or avx512), so nothing generic can fault on a
#     CPU without them (an inline function shared between translation units would show
#     up here).
# usage: check_isa.sh libamskv.a libamskv_model.a binary...
set -euo pipefail
libs=("$1" "$2")
shift 2
OBJDUMP=${OBJDUMP:-objdump}
fail=0
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for lib in "${libs[@]}"; do
  rm -f "$tmp"/*.o
  (cd "$tmp" && ar x "$lib")
  for obj in "$tmp"/*.o; do
    name=$(basename "$obj")
    n=$("$OBJDUMP" -d --no-show-raw-insn "$obj" | grep -c '%zmm' || true)
    case $name in
      *_avx512.cpp.o | *_avx512vnni.cpp.o)
        if [ "$n" -eq 0 ]; then echo "FAIL: $name has no zmm instructions"; fail=1;
        else echo "ok: $name has $n zmm instructions"; fi ;;
      *)
        if [ "$n" -ne 0 ]; then echo "FAIL: $name has $n zmm instructions"; fail=1; fi ;;
    esac
  done
done
for bin in "$@"; do
# Per function of the linked binary: which use VEX/EVEX (mnemonics v*, ymm, zmm, k-regs)?
"$OBJDUMP" -d -C --no-show-raw-insn "$bin" | awk '
  /^[0-9a-f]+ <.*>:$/ { fn = substr($0, index($0, "<") + 1); sub(/>:$/, "", fn); next }
  NF >= 2 && fn != "" {
    ins = $2
    if ($0 ~ /%zmm|%k[0-7]/) avx512[fn] = 1
    else if (ins ~ /^v/ || $0 ~ /%ymm/) avx[fn] = 1
  }
  END {
    bad = 0
    for (f in avx512) if (f !~ /avx512/) { print "FAIL: AVX-512 code outside the AVX-512 kernels: " f; bad = 1 }
    for (f in avx) if (f !~ /avx2|avx512/) { print "FAIL: AVX code outside the SIMD kernels: " f; bad = 1 }
    n512 = 0; for (f in avx512) n512++
    navx = 0; for (f in avx) navx++
    if (!bad) printf "linked binary: %d functions with AVX-512, %d with AVX/AVX2, all inside per-ISA kernels\n", n512, navx
    exit bad
  }' || fail=1
done
exit $fail
