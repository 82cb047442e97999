#!/usr/bin/env bash
# amskv against llama.cpp on the same GGUF file, threads and depths, pinned, in alternating
# runs; prints one table of tokens/s with the ratios (docs/performance.md has its output).
#
#   tools/vs_llama.sh [--threads "1 2"] [--depths 0,2048,8192] [--reps 3] [--model PATH]
#
# llama.cpp's llama-bench and llama-completion come from the llama-cpp-python sdist on PyPI
# (its vendor/llama.cpp), built once into $AMSKV_CACHE/llama.cpp-build: outside the
# repository, never part of CI. llama-bench runs with flash attention off and on and the
# faster of the two counts; amskv bench with the full cache and with ams:tova at 25% of the
# tokens. Decode is what a user gets on both sides: logits computed every step (amskv also
# samples). The last rows compare equal KV bytes: llama-completion with --context-shift in a
# context of 256 tokens against amskv run with a KV budget of the same bytes, 600 tokens
# after the same prompt, one thread.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cache=${AMSKV_CACHE:-$HOME/.cache/amskv}
threads="1 2" depths="0,2048,8192" reps=3
model=${AMSKV_MODEL:-$cache/SmolLM2-135M-Instruct.Q4_1.gguf}
while [ $# -gt 0 ]; do
  case $1 in
    --threads) threads=$2; shift 2 ;;
    --depths) depths=$2; shift 2 ;;
    --reps) reps=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    *) echo "vs_llama.sh: unknown option $1" >&2; exit 2 ;;
  esac
done
say() { echo "vs_llama: $*" >&2; }

bash tools/setup.sh
cmake -S . -B build/release -DCMAKE_BUILD_TYPE=Release > /dev/null
cmake --build build/release -j"$(nproc)" --target amskv_cli > /dev/null
amskv=$root/build/release/tools/amskv

# llama.cpp, once.
version=0.3.36
src=$cache/llama-sdist/llama_cpp_python-$version/vendor/llama.cpp
bin=$cache/llama.cpp-build/bin
if [ ! -x "$bin/llama-bench" ] || [ ! -x "$bin/llama-completion" ]; then
  if [ ! -d "$src" ]; then
    say "fetching the llama-cpp-python==$version sdist from PyPI (77 MB)"
    mkdir -p "$cache/llama-sdist"
    python3 -m pip download --quiet --no-deps --no-binary :all: "llama-cpp-python==$version" \
      -d "$cache/llama-sdist"
    tar xzf "$cache/llama-sdist/llama_cpp_python-$version.tar.gz" -C "$cache/llama-sdist"
  fi
  say "building llama-bench and llama-completion into $cache/llama.cpp-build"
  cmake -S "$src" -B "$cache/llama.cpp-build" -DCMAKE_BUILD_TYPE=Release -DGGML_NATIVE=ON \
    -DLLAMA_CURL=OFF -DBUILD_SHARED_LIBS=OFF -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF \
    -DLLAMA_BUILD_SERVER=OFF > /dev/null
  cmake --build "$cache/llama.cpp-build" -j"$(nproc)" --target llama-bench llama-completion \
    > /dev/null
fi

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
cpus() { [ "$1" = 1 ] && echo 0 || echo "0-$(($1 - 1))"; }
for rep in $(seq "$reps"); do
  for t in $threads; do
    say "round $rep of $reps, $t thread(s)"
    for fa in 0 1; do
      taskset -c "$(cpus "$t")" "$bin/llama-bench" -m "$model" -t "$t" -p 512 -n 128 \
        -d "$depths" -fa "$fa" -r 1 -o jsonl 2> /dev/null >> "$out/llama.jsonl"
    done
    taskset -c "$(cpus "$t")" "$amskv" bench --model "$model" --threads "$t" --depth "$depths" \
      --prompt 512 --decode 128 2> /dev/null | sed "s/^/$t /" >> "$out/amskv.txt"
    # Prompt batches on oneDNN (builds and CPUs that have it), prefill only.
    taskset -c "$(cpus "$t")" "$amskv" bench --model "$model" --threads "$t" --depth "$depths" \
      --prompt 512 --decode 8 --policy full --onednn 2> /dev/null | sed "s/^/$t /" \
      >> "$out/dnn.txt" || true
  done
done

# Equal KV bytes: llama.cpp's f16 cache of 256 tokens.
prompt_file=$out/prompt.txt
head -c 500 /usr/share/common-licenses/GPL-3 > "$prompt_file"  # about 110 tokens: room in 256
# f16 K and V per token: 2 * layers * KV heads * head_dim * 2 bytes.
geo=$("$amskv" inspect "$model" | sed -nE 's/^layers ([0-9]+),.*KV heads ([0-9]+), head_dim ([0-9]+).*/\1 \2 \3/p')
read -r n_layer n_kv head_dim <<< "$geo"
kv_bytes=$((256 * 2 * n_layer * n_kv * head_dim * 2))
say "equal KV bytes ($kv_bytes): llama-completion --context-shift -c 256 against amskv run"
for rep in $(seq "$reps"); do
  taskset -c 0 "$bin/llama-completion" -m "$model" -t 1 -c 256 --context-shift -n 600 \
    --ignore-eos --temp 0 -f "$prompt_file" -no-cnv < /dev/null > /dev/null 2>> "$out/shift.txt" || true
  for pol in ams:tova streaming; do
    taskset -c 0 "$amskv" run --model "$model" --threads 1 --kv-budget "$kv_bytes" --kv-dtype f16 \
      --policy "$pol" -n 600 --file "$prompt_file" --ignore-eos --temp 0 2>&1 > /dev/null |
      sed "s/^/$pol /" >> "$out/run.txt"
  done
done

python3 - "$out" "$depths" "$threads" "$kv_bytes" <<'PY'
import json, re, statistics, sys
out, depths, threads, kv_bytes = sys.argv[1], [int(d) for d in sys.argv[2].split(",")], sys.argv[3].split(), int(sys.argv[4])
med = lambda xs: statistics.median(xs) if xs else float("nan")
llama = {}  # (threads, depth, kind, fa) -> [tok/s]
for line in open(out + "/llama.jsonl"):
    line = line.strip()
    if not line.startswith("{"):
        continue
    r = json.loads(line)
    kind = "pp" if r["n_prompt"] > 0 else "tg"
    llama.setdefault((str(r["n_threads"]), r["n_depth"], kind, r["flash_attn"]), []).append(r["avg_ts"])
def bench_rows(path):  # (threads, depth, policy) -> ([prefill], [decode])
    rows = {}
    for line in open(path) if __import__("os").path.exists(path) else []:
        f = [x.strip() for x in line.split("|")]
        if len(f) < 9 or not f[1].isdigit():
            continue
        e = rows.setdefault((line.split()[0], int(f[1]), f[2]), ([], []))
        e[0].append(float(f[5])), e[1].append(float(f[6]))
    return rows
amskv, dnn = bench_rows(out + "/amskv.txt"), bench_rows(out + "/dnn.txt")
def best(t, d, kind):  # llama.cpp at its best flash-attention setting (median over rounds)
    opts = [(med(v), fa) for (tt, dd, k, fa), v in llama.items() if (tt, dd, k) == (t, d, kind)]
    return max(opts) if opts else (float("nan"), None)
print("| threads | depth | llama.cpp decode | amskv full | ratio | amskv ams:tova 25% | ratio "
      "| llama.cpp prefill 512 | amskv full | ratio | amskv full --onednn | ratio |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for t in threads:
    for d in depths:
        (lt, lfa), (lp, pfa) = best(t, d, "tg"), best(t, d, "pp")
        full, ams = amskv.get((t, d, "full"), ([], [])), amskv.get((t, d, "ams:tova"), ([], []))
        af, aa, ap = med(full[1]), med(ams[1]), med(full[0])
        dp = med(dnn.get((t, d, "full"), ([], []))[0])
        print(f"| {t} | {d} | {lt:.1f} (fa {int(lfa) if lfa is not None else '-'}) | {af:.1f} | "
              f"{af / lt:.2f}x | {aa:.1f} | {aa / lt:.2f}x | {lp:.1f} (fa {int(pfa) if pfa is not None else '-'}) | {ap:.1f} | {ap / lp:.2f}x | "
              f"{dp:.1f} | {dp / lp:.2f}x |")
shift = [float(m.group(1)) for m in
         re.finditer(r"(?<!prompt )eval time =.*?([0-9.]+) tokens per second", open(out + "/shift.txt").read())]
run = {}
for line in open(out + "/run.txt"):
    m = re.search(r"decode ([0-9.]+) tok/s", line)
    if m:
        run.setdefault(line.split()[0], []).append(float(m.group(1)))
print(f"\nEqual KV bytes ({kv_bytes}), 600 tokens, 1 thread: llama.cpp --context-shift "
      f"{med(shift):.1f} tok/s", end="")
for pol, v in run.items():
    print(f"; amskv {pol} {med(v):.1f} ({med(v) / med(shift):.2f}x)", end="")
print()
PY
