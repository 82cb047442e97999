#!/usr/bin/env python3
"""An independent numpy reference of the llama forward pass over a GGUF file.

Reads the file with the `gguf` package (gguf.GGUFReader, gguf.quants.dequantize), runs the
whole prompt with causal attention in float64 and returns the last position's logits.
RoPE is llama's NORMAL style: adjacent pairs (2i, 2i+1) of each head rotate by
pos * theta^(-2i/head_dim).

    python llama_ref.py MODEL.gguf 1,2,3   # prints the logits, one per line
"""
import sys

import numpy as np
from gguf import GGUFReader
from gguf.quants import dequantize


def field(reader, key, default=None):
    f = reader.fields.get(key)
    if f is None:
        return default
    return f.contents()


class Model:
    def __init__(self, path):
        r = GGUFReader(path)
        arch = field(r, "general.architecture")
        assert arch == "llama", f"architecture {arch} is not llama"
        self.n_layer = int(field(r, "llama.block_count"))
        self.n_embd = int(field(r, "llama.embedding_length"))
        self.n_head = int(field(r, "llama.attention.head_count"))
        self.n_head_kv = int(field(r, "llama.attention.head_count_kv", self.n_head))
        self.head_dim = int(field(r, "llama.attention.key_length", self.n_embd // self.n_head))
        self.eps = float(field(r, "llama.attention.layer_norm_rms_epsilon", 1e-5))
        self.theta = float(field(r, "llama.rope.freq_base", 10000.0))
        self.t = {}
        for t in r.tensors:
            # dequantize gives [rows][ne0] for matrices, [ne0] for vectors.
            w = dequantize(t.data, t.tensor_type).astype(np.float32)
            self.t[t.name] = w.reshape([int(d) for d in reversed(t.shape.tolist())])
        self.out_name = "output.weight" if "output.weight" in self.t else "token_embd.weight"


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, pos, theta):
    """x: [n][heads][d]; rotates pairs (2i, 2i+1) at absolute positions pos."""
    d = x.shape[-1]
    freq = theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)  # [d/2]
    ang = pos[:, None].astype(np.float64) * freq[None, :]  # [n][d/2]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    x0, x1 = x[..., 0::2], x[..., 1::2]
    out = np.empty_like(x)
    out[..., 0::2] = x0 * cos - x1 * sin
    out[..., 1::2] = x0 * sin + x1 * cos
    return out


def last_logits(m, tokens):
    n = len(tokens)
    t = m.t

    def mm(name, x):
        return x @ t[name].astype(np.float64).T

    x = t["token_embd.weight"][np.asarray(tokens)].astype(np.float64)  # [n][E]
    pos = np.arange(n)
    group = m.n_head // m.n_head_kv
    mask = np.triu(np.full((n, n), -np.inf), k=1)
    for l in range(m.n_layer):
        p = f"blk.{l}."
        h = rmsnorm(x, t[p + "attn_norm.weight"], m.eps)
        q = mm(p + "attn_q.weight", h).reshape(n, m.n_head, m.head_dim)
        k = mm(p + "attn_k.weight", h).reshape(n, m.n_head_kv, m.head_dim)
        v = mm(p + "attn_v.weight", h).reshape(n, m.n_head_kv, m.head_dim)
        q, k = rope(q, pos, m.theta), rope(k, pos, m.theta)
        att = np.empty((n, m.n_head, m.head_dim))
        for hd in range(m.n_head):
            kv = hd // group
            s = q[:, hd, :] @ k[:, kv, :].T / np.sqrt(m.head_dim) + mask
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            att[:, hd, :] = s @ v[:, kv, :]
        x = x + mm(p + "attn_output.weight", att.reshape(n, -1))
        h = rmsnorm(x, t[p + "ffn_norm.weight"], m.eps)
        g, u = mm(p + "ffn_gate.weight", h), mm(p + "ffn_up.weight", h)
        x = x + mm(p + "ffn_down.weight", g / (1 + np.exp(-g)) * u)
    h = rmsnorm(x[-1:], t["output_norm.weight"], m.eps)
    return mm(m.out_name, h)[0]


if __name__ == "__main__":
    model = Model(sys.argv[1])
    ids = [int(v) for v in sys.argv[2].split(",")]
    for v in last_logits(model, ids):
        print(f"{v:.6g}")
