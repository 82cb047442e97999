#!/usr/bin/env python3
"""Every architecture the runner knows, in every weight type it computes with, against the
numpy reference (llama_ref.py), on tiny random-weight GGUF files written here.

    python check_tiny_models.py PATH/TO/amskv
    python check_tiny_models.py --write-seeds DIR   # small files for the fuzz_model corpus

For each architecture (llama with Llama 3's rope_freqs, qwen2 with q/k/v biases and linear
RoPE scaling, gemma3 with six layers, a window of 5 tokens, so 12 tokens pass it, and linear
scaling of its global layers) and each type (F32, F16, Q8_0,
Q4_0, Q4_1, Q5_0, Q5_1, Q4_K, Q5_K, Q6_K): every matrix of the model in that type, its blocks
random (the f16 scales drawn so that weights stay within about 0.1), norms and biases random
F32, a SentencePiece vocabulary of 320 tokens. `amskv logits` on 12 tokens must agree with
the reference to 2e-3 of the largest logit (16-bit activations move them by about 1e-4).
"""
import os
import subprocess
import sys
import tempfile

import numpy as np
import gguf
from gguf import GGMLQuantizationType as T, GGUFWriter, TokenType
from gguf.constants import GGML_QUANT_SIZES

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import llama_ref  # noqa: E402

E, FF, HEADS, KV_HEADS, HEAD_DIM, VOCAB = 256, 512, 4, 2, 64, 320
TOKENS = [1, 7, 300, 45, 128, 9, 260, 33, 77, 301, 5, 200]
TOLERANCE = 2e-3
# Byte offset of each f16 scale in a block, and its magnitude (weights within about 0.1).
SCALES = {
    T.Q8_0: [(0, 0.1 / 127)], T.Q4_0: [(0, 0.1 / 8)], T.Q4_1: [(0, 0.1 / 16), (2, 0.05)],
    T.Q5_0: [(0, 0.1 / 16)], T.Q5_1: [(0, 0.1 / 32), (2, 0.05)],
    T.Q4_K: [(0, 0.1 / (63 * 15)), (2, 0.05 / 63)], T.Q5_K: [(0, 0.1 / (63 * 31)), (2, 0.05 / 63)],
    T.Q6_K: [(208, 0.1 / (127 * 32))],
}
TYPES = [T.F32, T.F16, *SCALES]


def matrix(rng, rows, cols, t):
    """A [rows][cols] weight in type t: its raw data and shape for GGUFWriter.add_tensor."""
    if t in (T.F32, T.F16):
        w = (rng.standard_normal((rows, cols)) * 0.05).astype(np.float32)
        return (w if t == T.F32 else w.astype(np.float16)), None
    blck, size = GGML_QUANT_SIZES[t]
    blocks = rng.integers(0, 256, (rows * cols // blck, size), dtype=np.uint8)
    for off, mag in SCALES[t]:
        h = (rng.uniform(0.3, 1.0, blocks.shape[0]) * mag * rng.choice([-1, 1], blocks.shape[0]))
        blocks[:, off:off + 2] = h.astype(np.float16).view(np.uint8).reshape(-1, 2)
    return blocks.reshape(rows, -1), (rows, cols)


def write_model(path, arch, t, rng, small=False):
    global E, FF, HEADS, KV_HEADS, HEAD_DIM, VOCAB
    saved = E, FF, HEADS, KV_HEADS, HEAD_DIM, VOCAB
    if small:  # rows of 32: the block types only
        E, FF, HEADS, KV_HEADS, HEAD_DIM, VOCAB = 32, 64, 2, 1, 32, 262
    try:
        write_model_dims(path, arch, t, rng)
    finally:
        E, FF, HEADS, KV_HEADS, HEAD_DIM, VOCAB = saved


def write_model_dims(path, arch, t, rng):
    n_layer = 6 if arch == "gemma3" else 2
    w = GGUFWriter(path, arch)
    w.add_block_count(n_layer)
    w.add_context_length(4096)
    w.add_embedding_length(E)
    w.add_feed_forward_length(FF)
    w.add_head_count(HEADS)
    w.add_head_count_kv(KV_HEADS)
    w.add_key_length(HEAD_DIM)
    w.add_value_length(HEAD_DIM)
    w.add_layer_norm_rms_eps(1e-6)
    w.add_rope_freq_base(1e6 if arch == "gemma3" else 10000.0)
    if arch == "gemma3":
        w.add_sliding_window(5)
    if arch in ("qwen2", "gemma3"):  # linear RoPE scaling (gemma3: its global layers only)
        w.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        w.add_rope_scaling_factor(2.0 if arch == "qwen2" else 4.0)
    tokens = ["<unk>", "<s>", "</s>"] + [f"<0x{b:02X}>" for b in range(256)]
    tokens += [f"\u2581t{i}" for i in range(VOCAB - len(tokens))]
    types = [TokenType.UNKNOWN, TokenType.CONTROL, TokenType.CONTROL] + [TokenType.BYTE] * 256
    types += [TokenType.NORMAL] * (VOCAB - len(types))
    w.add_tokenizer_model("llama")
    w.add_token_list(tokens)
    w.add_token_scores([0.0] * VOCAB)
    w.add_token_types(types)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)

    def add(name, data_shape):
        data, shape = data_shape
        if shape is None:
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_shape=data.shape, raw_dtype=t)

    def vec(name, n, base=1.0, spread=0.1):
        w.add_tensor(name, (base + rng.standard_normal(n) * spread).astype(np.float32))

    add("token_embd.weight", matrix(rng, VOCAB, E, t))
    vec("output_norm.weight", E)
    if arch == "llama":
        vec("rope_freqs.weight", HEAD_DIM // 2, 2.0, 0.5)
    q, kv = HEADS * HEAD_DIM, KV_HEADS * HEAD_DIM
    for l in range(n_layer):
        p = f"blk.{l}."
        vec(p + "attn_norm.weight", E)
        vec(p + "ffn_norm.weight", E)
        add(p + "attn_q.weight", matrix(rng, q, E, t))
        add(p + "attn_k.weight", matrix(rng, kv, E, t))
        add(p + "attn_v.weight", matrix(rng, kv, E, t))
        add(p + "attn_output.weight", matrix(rng, E, q, t))
        add(p + "ffn_gate.weight", matrix(rng, FF, E, t))
        add(p + "ffn_up.weight", matrix(rng, FF, E, t))
        add(p + "ffn_down.weight", matrix(rng, E, FF, t))
        if arch == "qwen2":
            vec(p + "attn_q.bias", q, 0.0)
            vec(p + "attn_k.bias", kv, 0.0)
            vec(p + "attn_v.bias", kv, 0.0)
        if arch == "gemma3":
            vec(p + "attn_q_norm.weight", HEAD_DIM)
            vec(p + "attn_k_norm.weight", HEAD_DIM)
            vec(p + "post_attention_norm.weight", E)
            vec(p + "post_ffw_norm.weight", E)
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--write-seeds":
        rng = np.random.default_rng(5)
        for arch, t in (("llama", T.Q8_0), ("qwen2", T.Q4_0), ("gemma3", T.Q5_0)):
            write_model(os.path.join(sys.argv[2], f"{arch}_{t.name.lower()}.gguf"), arch, t, rng,
                        small=True)
        return 0
    if len(sys.argv) != 2:
        print("usage: check_tiny_models.py AMSKV_BINARY | --write-seeds DIR", file=sys.stderr)
        return 2
    binary = sys.argv[1]
    rng = np.random.default_rng(12)
    failed = passed = 0
    with tempfile.TemporaryDirectory() as tmp:
        for arch in ("llama", "qwen2", "gemma3"):
            for t in TYPES:
                path = os.path.join(tmp, f"{arch}-{t.name}.gguf")
                write_model(path, arch, t, rng)
                out = subprocess.run([binary, "logits", "--model", path, "--tokens",
                                      ",".join(map(str, TOKENS))], capture_output=True, text=True)
                if out.returncode != 0:
                    print(f"{arch} {t.name}: amskv failed: {out.stderr.strip()}")
                    failed += 1
                    continue
                got = np.array([float(v) for v in out.stdout.split()])
                ref = llama_ref.last_logits(llama_ref.Model(path), TOKENS)
                scale = float(np.abs(ref).max())
                diff = float(np.abs(got - ref).max()) if got.shape == ref.shape else float("inf")
                ok = diff <= TOLERANCE * scale
                print(f"{arch} {t.name}: max |diff| {diff:.3g} of logits up to {scale:.3g}: "
                      f"{'ok' if ok else 'FAIL'}")
                passed += ok
                failed += not ok
    print(f"check_tiny_models: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
