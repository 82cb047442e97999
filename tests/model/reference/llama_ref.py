#!/usr/bin/env python3
"""An independent numpy reference of the forward pass of the architectures the runner
knows (llama, qwen2, gemma3) over a GGUF file.

Reads the file with the `gguf` package (gguf.GGUFReader, gguf.quants.dequantize), runs the
whole prompt with causal attention in float64 and returns the last position's logits.
RoPE: llama's NORMAL style rotates adjacent pairs (2i, 2i+1) of each head by
pos * theta^(-2i/head_dim); qwen2 and gemma3 rotate the halves' pairs (i, i + head_dim/2).
Llama 3.1's rope_freqs factors divide the frequencies, and so does a linear RoPE scaling
factor (on gemma3's global layers only). qwen2 adds biases to q, k and v. gemma3 (as llama.cpp computes it from the converted file,
whose norm weights already hold 1 + w): embeddings times sqrt(n_embd), RMSNorm of every q and
k head, norms after attention and after the FFN, a GELU (tanh) gate, and five local layers
(a window of sliding_window tokens, RoPE base 10000) before every global one.

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
        assert arch in ("llama", "qwen2", "gemma3"), f"architecture {arch} is not known"
        self.arch = a = arch
        self.n_layer = int(field(r, f"{a}.block_count"))
        self.n_embd = int(field(r, f"{a}.embedding_length"))
        self.n_head = int(field(r, f"{a}.attention.head_count"))
        self.n_head_kv = int(field(r, f"{a}.attention.head_count_kv", self.n_head))
        self.head_dim = int(field(r, f"{a}.attention.key_length", self.n_embd // self.n_head))
        self.eps = float(field(r, f"{a}.attention.layer_norm_rms_epsilon", 1e-5))
        self.theta = float(field(r, f"{a}.rope.freq_base", 10000.0))
        self.window = int(field(r, f"{a}.attention.sliding_window", 0))
        # Linear RoPE scaling: the global layers' frequencies divided by the factor.
        scaling = field(r, f"{a}.rope.scaling.type", "none")
        self.rope_scale = float(field(r, f"{a}.rope.scaling.factor", 1.0)) \
            if scaling == "linear" else 1.0
        self.t = {}
        for t in r.tensors:
            # dequantize gives [rows][ne0] for matrices, [ne0] for vectors.
            w = dequantize(t.data, t.tensor_type).astype(np.float32)
            self.t[t.name] = w.reshape([int(d) for d in reversed(t.shape.tolist())])
        self.out_name = "output.weight" if "output.weight" in self.t else "token_embd.weight"


def rmsnorm(x, w, eps):
    return x / np.sqrt(np.mean(x * x, axis=-1, keepdims=True) + eps) * w


def rope(x, pos, theta, neox=False, factors=None):
    """x: [n][heads][d]; rotates pairs (2i, 2i+1), or (i, i + d/2) with neox, at absolute
    positions pos; Llama 3's rope_freqs factors divide the frequencies."""
    d = x.shape[-1]
    freq = theta ** (-np.arange(0, d, 2, dtype=np.float64) / d)  # [d/2]
    if factors is not None:
        freq = freq / factors
    ang = pos[:, None].astype(np.float64) * freq[None, :]  # [n][d/2]
    cos, sin = np.cos(ang)[:, None, :], np.sin(ang)[:, None, :]
    i0, i1 = (slice(0, d // 2), slice(d // 2, d)) if neox else (slice(0, d, 2), slice(1, d, 2))
    x0, x1 = x[..., i0], x[..., i1]
    out = np.empty_like(x)
    out[..., i0] = x0 * cos - x1 * sin
    out[..., i1] = x0 * sin + x1 * cos
    return out


def gelu(x):
    return 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x ** 3)))


def last_logits(m, tokens):
    n = len(tokens)
    t = m.t

    def mm(name, x):
        return x @ t[name].astype(np.float64).T

    gemma = m.arch == "gemma3"
    x = t["token_embd.weight"][np.asarray(tokens)].astype(np.float64)  # [n][E]
    if gemma:
        x = x * np.sqrt(np.float32(m.n_embd))
    pos = np.arange(n)
    group = m.n_head // m.n_head_kv
    causal = np.triu(np.full((n, n), -np.inf), k=1)
    # Local layers see the last `window` positions, their own included.
    local_mask = causal + np.tril(np.full((n, n), -np.inf), k=-m.window) if m.window else causal
    for l in range(m.n_layer):
        p = f"blk.{l}."
        local = gemma and (l + 1) % 6 != 0
        mask = local_mask if local else causal
        theta = 10000.0 if local else m.theta
        scale = 1.0 if local else m.rope_scale
        h = rmsnorm(x, t[p + "attn_norm.weight"], m.eps)
        q = mm(p + "attn_q.weight", h)
        k = mm(p + "attn_k.weight", h)
        v = mm(p + "attn_v.weight", h)
        if m.arch == "qwen2":
            q, k, v = q + t[p + "attn_q.bias"], k + t[p + "attn_k.bias"], v + t[p + "attn_v.bias"]
        q = q.reshape(n, m.n_head, m.head_dim)
        k = k.reshape(n, m.n_head_kv, m.head_dim)
        v = v.reshape(n, m.n_head_kv, m.head_dim)
        if gemma:
            q = rmsnorm(q, t[p + "attn_q_norm.weight"], m.eps)
            k = rmsnorm(k, t[p + "attn_k_norm.weight"], m.eps)
        neox = m.arch != "llama"
        factors = t.get("rope_freqs.weight")
        if scale != 1.0:
            factors = (factors if factors is not None else 1.0) * scale
        q, k = rope(q, pos, theta, neox, factors), rope(k, pos, theta, neox, factors)
        att = np.empty((n, m.n_head, m.head_dim))
        for hd in range(m.n_head):
            kv = hd // group
            s = q[:, hd, :] @ k[:, kv, :].T / np.sqrt(m.head_dim) + mask
            s = np.exp(s - s.max(axis=1, keepdims=True))
            s /= s.sum(axis=1, keepdims=True)
            att[:, hd, :] = s @ v[:, kv, :]
        o = mm(p + "attn_output.weight", att.reshape(n, -1))
        if gemma:
            o = rmsnorm(o, t[p + "post_attention_norm.weight"], m.eps)
        x = x + o
        h = rmsnorm(x, t[p + "ffn_norm.weight"], m.eps)
        g, u = mm(p + "ffn_gate.weight", h), mm(p + "ffn_up.weight", h)
        f = mm(p + "ffn_down.weight", (gelu(g) if gemma else g / (1 + np.exp(-g))) * u)
        if gemma:
            f = rmsnorm(f, t[p + "post_ffw_norm.weight"], m.eps)
        x = x + f
    h = rmsnorm(x[-1:], t["output_norm.weight"], m.eps)
    return mm(m.out_name, h)[0]


if __name__ == "__main__":
    model = Model(sys.argv[1])
    ids = [int(v) for v in sys.argv[2].split(",")]
    for v in last_logits(model, ids):
        print(f"{v:.6g}")
