#include "runtime/model/llama.h"

#include <cmath>
#include <cstring>

namespace amskv {
namespace {

bool fail(std::string* err, const std::string& msg) {
  if (err) *err = msg;
  return false;
}

bool supported(int type) {
  return type == GGML_TYPE_F32 || type == GGML_TYPE_F16 || type == GGML_TYPE_Q8_0 ||
         type == GGML_TYPE_Q4_0 || type == GGML_TYPE_Q4_1;
}

uint16_t rd16(const uint8_t* p) {
  uint16_t v;
  std::memcpy(&v, p, 2);
  return v;
}

// dot(row of n weights in `type`, x). Quantized blocks of 32 are dotted without
// dequantizing the row first: d * sum(q x) (+ m * sum(x) for Q4_1).
float dot_row(int type, const uint8_t* w, const float* x, int n) {
  float sum = 0.f;
  switch (type) {
    case GGML_TYPE_F32: {
      const float* f = (const float*)w;
      for (int i = 0; i < n; ++i) sum += f[i] * x[i];
      break;
    }
    case GGML_TYPE_F16:
      for (int i = 0; i < n; ++i) sum += gguf_f16_to_f32(rd16(w + 2 * i)) * x[i];
      break;
    case GGML_TYPE_Q8_0:  // {f16 d; int8 q[32]}
      for (int b = 0; b < n / 32; ++b, w += 34) {
        const int8_t* q = (const int8_t*)(w + 2);
        const float* xb = x + b * 32;
        float s = 0.f;
        for (int i = 0; i < 32; ++i) s += (float)q[i] * xb[i];
        sum += gguf_f16_to_f32(rd16(w)) * s;
      }
      break;
    case GGML_TYPE_Q4_0:  // {f16 d; u8 q[16]}: low nibbles are 0..15, high 16..31, minus 8
      for (int b = 0; b < n / 32; ++b, w += 18) {
        const uint8_t* q = w + 2;
        const float* xb = x + b * 32;
        float s = 0.f;
        for (int i = 0; i < 16; ++i)
          s += (float)((q[i] & 15) - 8) * xb[i] + (float)((q[i] >> 4) - 8) * xb[i + 16];
        sum += gguf_f16_to_f32(rd16(w)) * s;
      }
      break;
    case GGML_TYPE_Q4_1:  // {f16 d; f16 m; u8 q[16]}: value = d * q + m
      for (int b = 0; b < n / 32; ++b, w += 20) {
        const uint8_t* q = w + 4;
        const float* xb = x + b * 32;
        float s = 0.f, sx = 0.f;
        for (int i = 0; i < 16; ++i) {
          s += (float)(q[i] & 15) * xb[i] + (float)(q[i] >> 4) * xb[i + 16];
          sx += xb[i] + xb[i + 16];
        }
        sum += gguf_f16_to_f32(rd16(w)) * s + gguf_f16_to_f32(rd16(w + 2)) * sx;
      }
      break;
  }
  return sum;
}

// y = W x: W has n_rows rows of ne[0] weights.
void matvec(const GgufTensor* W, const float* x, float* y, int n_threads) {
  const int n = (int)W->ne[0], rows = (int)W->n_rows;
#pragma omp parallel for num_threads(n_threads) schedule(static) if (n_threads > 1)
  for (int r = 0; r < rows; ++r) y[r] = dot_row(W->type, W->data + (size_t)r * W->row_bytes, x, n);
}

void rmsnorm(float* out, const float* x, const GgufTensor* w, int n, float eps) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += (double)x[i] * x[i];
  const float inv = (float)(1.0 / std::sqrt(ss / n + eps));
  const float* g = (const float*)w->data;
  for (int i = 0; i < n; ++i) out[i] = x[i] * inv * g[i];
}

// The tensor `name`, of `type_ok` types, with ne[0] = d0 and rows = d1.
bool get(const GgufFile& f, const std::string& name, int64_t d0, int64_t d1, const GgufTensor** out,
         std::string* err) {
  const GgufTensor* t = gguf_tensor(f, name.c_str());
  if (!t) return fail(err, "model: tensor '" + name + "' is missing");
  if (t->ne[0] != d0 || t->n_rows != d1)
    return fail(err, "model: tensor '" + name + "' has shape [" + std::to_string(t->ne[0]) + ", " +
                         std::to_string(t->n_rows) + "], expected [" + std::to_string(d0) + ", " +
                         std::to_string(d1) + "]");
  if (!supported(t->type) || (d0 % 32 != 0 && t->type != GGML_TYPE_F32 && t->type != GGML_TYPE_F16))
    return fail(err, "model: tensor '" + name + "' has type " + ggml_type_name(t->type) +
                         ", which the runner does not compute with");
  *out = t;
  return true;
}

}  // namespace

bool llama_load(const char* path, LlamaModel* m, std::string* err) {
  if (!gguf_open(path, &m->file, err)) return false;
  const GgufFile& f = m->file;
  std::string_view arch;
  if (!gguf_get_str(f, "general.architecture", &arch, err)) return false;
  if (arch != "llama")
    return fail(err, "model: architecture '" + std::string(arch) + "' is not llama");
  uint32_t u[6];
  const char* keys[] = {"llama.block_count",          "llama.embedding_length",
                        "llama.attention.head_count", "llama.attention.head_count_kv",
                        "llama.feed_forward_length",  nullptr};
  for (int i = 0; keys[i]; ++i)
    if (!gguf_get_u32(f, keys[i], &u[i], err)) return false;
  LlamaHparams& hp = m->hp;
  hp.n_layer = (int)u[0], hp.n_embd = (int)u[1], hp.n_head = (int)u[2], hp.n_head_kv = (int)u[3],
  hp.n_ff = (int)u[4];
  if (hp.n_layer < 1 || hp.n_layer > 4096 || hp.n_embd < 1 || hp.n_embd > 65536 || hp.n_head < 1 ||
      hp.n_head_kv < 1 || hp.n_head % hp.n_head_kv != 0 || hp.n_embd % hp.n_head != 0 ||
      hp.n_ff < 1 || hp.n_ff > 1 << 20)
    return fail(err, "model: inconsistent hyperparameters (layers, embedding, heads, ffn)");
  hp.head_dim = hp.n_embd / hp.n_head;
  hp.rms_eps = 1e-5f;
  hp.rope_theta = 10000.f;
  if (gguf_find(f, "llama.attention.layer_norm_rms_epsilon") &&
      !gguf_get_f32(f, "llama.attention.layer_norm_rms_epsilon", &hp.rms_eps, err))
    return false;
  if (gguf_find(f, "llama.rope.freq_base") &&
      !gguf_get_f32(f, "llama.rope.freq_base", &hp.rope_theta, err))
    return false;
  if (!(hp.rms_eps > 0.f && hp.rms_eps < 1.f) || !(hp.rope_theta > 0.f && hp.rope_theta < 1e12f))
    return fail(err, "model: rms epsilon or rope theta out of range");
  const GgufTensor* emb = gguf_tensor(f, "token_embd.weight");
  if (!emb) return fail(err, "model: tensor 'token_embd.weight' is missing");
  hp.n_vocab = (int)emb->n_rows;
  const int kv_dim = hp.n_head_kv * hp.head_dim;
  if (!get(f, "token_embd.weight", hp.n_embd, hp.n_vocab, &m->tok_embd, err)) return false;
  if (!get(f, "output_norm.weight", hp.n_embd, 1, &m->output_norm, err)) return false;
  m->output = m->tok_embd;  // tied unless the file has its own
  if (gguf_tensor(f, "output.weight") &&
      !get(f, "output.weight", hp.n_embd, hp.n_vocab, &m->output, err))
    return false;
  if (m->output_norm->type != GGML_TYPE_F32) return fail(err, "model: output_norm must be F32");
  m->layers.resize(hp.n_layer);
  for (int l = 0; l < hp.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LlamaLayer& L = m->layers[l];
    if (!get(f, p + "attn_norm.weight", hp.n_embd, 1, &L.attn_norm, err) ||
        !get(f, p + "attn_q.weight", hp.n_embd, hp.n_embd, &L.wq, err) ||
        !get(f, p + "attn_k.weight", hp.n_embd, kv_dim, &L.wk, err) ||
        !get(f, p + "attn_v.weight", hp.n_embd, kv_dim, &L.wv, err) ||
        !get(f, p + "attn_output.weight", hp.n_embd, hp.n_embd, &L.wo, err) ||
        !get(f, p + "ffn_norm.weight", hp.n_embd, 1, &L.ffn_norm, err) ||
        !get(f, p + "ffn_gate.weight", hp.n_embd, hp.n_ff, &L.w_gate, err) ||
        !get(f, p + "ffn_up.weight", hp.n_embd, hp.n_ff, &L.w_up, err) ||
        !get(f, p + "ffn_down.weight", hp.n_ff, hp.n_embd, &L.w_down, err))
      return false;
    if (L.attn_norm->type != GGML_TYPE_F32 || L.ffn_norm->type != GGML_TYPE_F32)
      return fail(err, "model: layer norms must be F32");
  }
  TokenizerData td;
  if (!tokenizer_data_from_gguf(f, &td, err)) return false;
  if ((int)td.tokens.size() != hp.n_vocab)
    return fail(err, "model: the tokenizer has " + std::to_string(td.tokens.size()) +
                         " tokens but the embedding has " + std::to_string(hp.n_vocab));
  return tokenizer_init(m->tok, td, err);
}

bool llama_context_init(LlamaContext* c, const LlamaModel& m, size_t kv_budget,
                        amskv_dtype kv_dtype, const char* policy, int n_threads, std::string* err) {
  const LlamaHparams& hp = m.hp;
  amskv_config cfg = amskv_config_default();
  cfg.n_layers = hp.n_layer;
  cfg.n_q_heads = hp.n_head;
  cfg.n_kv_heads = hp.n_head_kv;
  cfg.head_dim = hp.head_dim;
  cfg.kv_dtype = kv_dtype;
  cfg.rope_theta = hp.rope_theta;
  cfg.rope_style = AMSKV_ROPE_NORMAL;  // llama GGUF files rotate adjacent pairs
  cfg.policy = policy;
  cfg.n_threads = n_threads;
  amskv_status st = amskv_session_create(&cfg, kv_budget, &c->kv);
  if (st != AMSKV_OK) return fail(err, std::string("kv session: ") + amskv_last_error(nullptr));
  c->m = &m;
  c->n_threads = n_threads;
  c->pos = 0;
  const int kv_dim = hp.n_head_kv * hp.head_dim;
  c->x.assign(hp.n_embd, 0.f), c->xb.assign(hp.n_embd, 0.f), c->q.assign(hp.n_embd, 0.f);
  c->k.assign(kv_dim, 0.f), c->v.assign(kv_dim, 0.f), c->att.assign(hp.n_embd, 0.f);
  c->hb.assign(hp.n_ff, 0.f), c->hb2.assign(hp.n_ff, 0.f), c->logits.assign(hp.n_vocab, 0.f);
  return true;
}

bool llama_decode(LlamaContext* c, int32_t token, std::string* err) {
  const LlamaModel& m = *c->m;
  const LlamaHparams& hp = m.hp;
  if (token < 0 || token >= hp.n_vocab) return fail(err, "token id out of range");
  float* x = c->x.data();
  gguf_dequantize_row(m.tok_embd->type, m.tok_embd->data + (size_t)token * m.tok_embd->row_bytes, x,
                      hp.n_embd);
  const int nt = c->n_threads;
  for (int l = 0; l < hp.n_layer; ++l) {
    const LlamaLayer& L = m.layers[l];
    rmsnorm(c->xb.data(), x, L.attn_norm, hp.n_embd, hp.rms_eps);
    matvec(L.wq, c->xb.data(), c->q.data(), nt);
    matvec(L.wk, c->xb.data(), c->k.data(), nt);
    matvec(L.wv, c->xb.data(), c->v.data(), nt);
    // RoPE, the KV cache, eviction and attention: all inside amskv.
    if (amskv_attend(c->kv, l, c->pos, c->q.data(), c->k.data(), c->v.data(), c->att.data()) !=
        AMSKV_OK)
      return fail(err, std::string("attention: ") + amskv_last_error(c->kv));
    matvec(L.wo, c->att.data(), c->xb.data(), nt);
    for (int i = 0; i < hp.n_embd; ++i) x[i] += c->xb[i];
    rmsnorm(c->xb.data(), x, L.ffn_norm, hp.n_embd, hp.rms_eps);
    matvec(L.w_gate, c->xb.data(), c->hb.data(), nt);
    matvec(L.w_up, c->xb.data(), c->hb2.data(), nt);
    for (int i = 0; i < hp.n_ff; ++i) {  // SwiGLU
      const float g = c->hb[i];
      c->hb[i] = g / (1.f + std::exp(-g)) * c->hb2[i];
    }
    matvec(L.w_down, c->hb.data(), c->xb.data(), nt);
    for (int i = 0; i < hp.n_embd; ++i) x[i] += c->xb[i];
  }
  rmsnorm(c->xb.data(), x, m.output_norm, hp.n_embd, hp.rms_eps);
  matvec(m.output, c->xb.data(), c->logits.data(), nt);
  c->pos++;
  return true;
}

}  // namespace amskv
