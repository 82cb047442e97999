#!/usr/bin/env python3
"""The runner's dequantization of every GGUF type it reads against the gguf package's own
numpy dequantization (gguf.quants.dequantize), bit for bit.

    python check_dequant.py PATH/TO/dequant_dump

For each type: a tensor of random blocks (every bit pattern of the quantized values and the
scales, with the f16 scales drawn as finite numbers), written by gguf.GGUFWriter, read back
by dequant_dump (tests/model/dequant_dump.cpp).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
from gguf import GGMLQuantizationType as T, GGUFWriter
from gguf.constants import GGML_QUANT_SIZES
from gguf.quants import dequantize

# Byte offsets of each type's f16 fields inside a block.
HALVES = {
    T.Q4_0: [0], T.Q4_1: [0, 2], T.Q5_0: [0], T.Q5_1: [0, 2], T.Q8_0: [0],
    T.Q4_K: [0, 2], T.Q5_K: [0, 2], T.Q6_K: [208],
}
ROW = 512  # elements per row: two K-quant super-blocks, 16 blocks of 32
ROWS = 7


def random_tensor(rng, t):
    """[ROWS][bytes per row] uint8 of random blocks of type t."""
    if t in (T.F32, T.F16, T.BF16):
        v = rng.standard_normal((ROWS, ROW)).astype(np.float32)
        if t == T.F32:
            return v.view(np.uint8)
        if t == T.F16:
            return v.astype(np.float16).view(np.uint8)
        bits = v.view(np.uint32)  # truncate to bf16: any finite bf16 will do
        return (bits >> 16).astype(np.uint16).view(np.uint8)
    blck, size = GGML_QUANT_SIZES[t]
    blocks = rng.integers(0, 256, (ROWS * ROW // blck, size), dtype=np.uint8)
    for off in HALVES[t]:
        h = (rng.standard_normal(blocks.shape[0]) * 0.01).astype(np.float16)
        blocks[:, off:off + 2] = h.view(np.uint8).reshape(-1, 2)
    return blocks.reshape(ROWS, -1)


def main():
    if len(sys.argv) != 2:
        print("usage: check_dequant.py DEQUANT_DUMP", file=sys.stderr)
        return 2
    tool = sys.argv[1]
    rng = np.random.default_rng(7)
    types = [T.F32, T.F16, T.BF16, *HALVES]
    failed = 0
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "types.gguf")
        w = GGUFWriter(path, "llama")
        data = {}
        for t in types:
            data[t] = random_tensor(rng, t)
            w.add_tensor(t.name, data[t], raw_dtype=t)  # [rows][bytes]: the writer works out the shape
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        for t in types:
            out = subprocess.run([tool, path, t.name], capture_output=True)
            if out.returncode != 0:
                print(f"{t.name}: dequant_dump failed: {out.stderr.decode().strip()}")
                failed += 1
                continue
            got = np.frombuffer(out.stdout, dtype=np.float32)
            want = dequantize(data[t], t).astype(np.float32).reshape(-1)
            same = got.shape == want.shape and np.array_equal(got.view(np.uint32),
                                                             want.view(np.uint32))
            if not same:
                bad = np.flatnonzero(got != want) if got.shape == want.shape else []
                where = f" first at {bad[0]}: {got[bad[0]]} vs {want[bad[0]]}" if len(bad) else ""
                print(f"{t.name}: differs from gguf.quants.dequantize ({len(bad)} values){where}")
                failed += 1
            else:
                print(f"{t.name}: {got.size} values equal")
    print(f"check_dequant: {len(types) - failed} of {len(types)} types equal")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
