#!/usr/bin/env python3
"""Compares `amskv logits` with the numpy reference (llama_ref.py) on short token lists.

    python check_logits.py PATH/TO/amskv [MODEL.gguf]

The model defaults to $AMSKV_MODEL, else ~/.cache/amskv/SmolLM2-135M-Instruct.Q4_1.gguf;
exit 77 (a skip for ctest) when it is absent. Each architecture has its own token lists; a
gemma3 file (Gemma 3 270M, tools/setup.sh --model gemma3-270m) is also asked, greedily, to
continue "The Eiffel Tower is located in the city of" with the full cache and with ams:tova
with room to spare (both must name Paris, as llama.cpp does on the same file), and to
generate 400 tokens in a 4 MiB budget that forces compression events (too small for the
local layers' windows at f16, 7.5 MiB: every layer holds the same 224 tokens).

Tolerance: the weights are dequantized identically on both sides; the reference runs in
float64 with float activations. amskv accumulates in float32 and, before each product with
quantized weights, rounds the activations to 16-bit integers with a scale per block of 32
(the integer dot products of runtime/model/matmul.h). On SmolLM2-135M Q4_1 that moves the
logits (magnitude 20-30) by 0.002-0.009 on the cases below and by up to 0.024 on a row of
special tokens alone (their activations have large outliers, which coarsen their blocks'
scale); with float activations the difference was ~1e-4. A 0.05 bound catches any real error (a wrong RoPE
pair, norm or head mapping moves logits by whole units) with margin over that noise.
"""
import os
import re
import subprocess
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402

TOLERANCE = 0.05

# Token id lists: five ordinary tokens, six with SmolLM2's <|im_start|> (1) and <|im_end|>
# (2) specials, and twenty ordinary ones.
CASES_LLAMA = [
    [504, 3575, 282, 4649, 314],
    [1, 4093, 198, 19556, 18, 2],
    [504, 2385, 282, 260, 28688, 15297, 2327, 253, 1789, 1365, 30, 378, 2019, 3452, 28, 47,
     1132, 338, 2130, 28],
]
# Gemma 3: <bos> "The Eiffel Tower is located in the city of", and <bos> <start_of_turn>
# "user" "\n" "Hi" <end_of_turn> "\n" <start_of_turn> "model" "\n".
# The third, 700 tokens, passes the 512-token window of the local layers (without the window
# the logits move by about 6).
CASES_GEMMA = [
    [2, 818, 94648, 25822, 563, 5628, 528, 506, 3207, 529],
    [2, 105, 2364, 107, 10979, 106, 107, 105, 4368, 107],
    [2] + [1000 + (i * 7919) % 50000 for i in range(699)],
]


def run(binary, model_path, *args):
    # One thread: ctest runs tests side by side on two cores.
    return subprocess.run([binary, "run", "--model", model_path, "--temp", "0", "--threads", "1",
                           *args],
                          capture_output=True, text=True)


def gemma_generation(binary, model_path):
    """Failures of the generation checks on a gemma3 file."""
    failures = []
    for policy, budget in (("full", "16MiB"), ("ams:tova", "16MiB")):
        out = run(binary, model_path, "--prompt", "The Eiffel Tower is located in the city of",
                  "-n", "8", "--policy", policy, "--kv-budget", budget)
        ok = out.returncode == 0 and "Paris" in out.stdout
        print(f"gemma3 {policy} {budget}: {out.stdout.strip()!r}: {'ok' if ok else 'FAIL'}")
        if not ok:
            failures.append(policy)
    out = run(binary, model_path, "--prompt", "Once upon a time", "-n", "400", "--ignore-eos",
              "--policy", "ams:tova", "--kv-budget", "4MiB", "--kv-dtype", "f16")
    m = re.search(r"KV session ([0-9.]+) of ([0-9.]+) MiB budget.*?; ([0-9]+) events", out.stderr)
    ok = out.returncode == 0 and m and float(m.group(1)) <= float(m.group(2)) and int(m.group(3)) > 0
    print(f"gemma3 400 tokens in 4 MiB: {m.group(0) if m else out.stderr.strip()}: "
          f"{'ok' if ok else 'FAIL'}")
    if not ok:
        failures.append("budget")
    return failures


def main():
    if len(sys.argv) < 2:
        print("usage: check_logits.py AMSKV_BINARY [MODEL]", file=sys.stderr)
        return 2
    binary = sys.argv[1]
    model_path = sys.argv[2] if len(sys.argv) > 2 else os.environ.get("AMSKV_MODEL") or \
        os.path.expanduser("~/.cache/amskv/SmolLM2-135M-Instruct.Q4_1.gguf")
    if not os.path.exists(model_path):
        print(f"check_logits: skipped, no model at {model_path}")
        return 77
    model = llama_ref.Model(model_path)
    passed = failed = 0
    for ids in CASES_GEMMA if model.arch == "gemma3" else CASES_LLAMA:
        out = subprocess.run([binary, "logits", "--threads", "1", "--model", model_path, "--tokens",
                              ",".join(map(str, ids))], capture_output=True, text=True)
        if out.returncode != 0:
            print(f"tokens {ids}: amskv failed: {out.stderr.strip()}")
            failed += 1
            continue
        got = np.array([float(v) for v in out.stdout.split()])
        ref = llama_ref.last_logits(model, ids)
        diff = float(np.abs(got - ref).max()) if got.shape == ref.shape else float("inf")
        top_got, top_ref = np.argsort(-got)[:5], np.argsort(-ref)[:5]
        top5 = len(set(top_got) & set(top_ref))
        ok = diff <= TOLERANCE and top_got[0] == top_ref[0]
        print(f"{len(ids)} tokens: max |diff| {diff:.3g} (logits up to {np.abs(ref).max():.3g}), "
              f"argmax {top_got[0]} vs {top_ref[0]}, top-5 overlap {top5}/5: "
              f"{'ok' if ok else 'FAIL'}")
        passed += ok
        failed += not ok
    if model.arch == "gemma3":
        bad = gemma_generation(binary, model_path)
        failed += len(bad)
        passed += 3 - len(bad)
    print(f"check_logits: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
