#include "runtime/model/llama.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "arch/kernels.h"
#include "arch/parallel.h"
#include "arch/rope.h"
#include "runtime/model/matmul.h"

namespace amskv {
namespace {

// The architectures (llama.h). Gemma 3: every sixth layer global, the local ones at RoPE base
// 10000 (as llama.cpp sets them; the file gives the global base and the window).
const LlamaArch kArchs[] = {
    {"llama", AMSKV_ROPE_NORMAL, false, false, false, false, false, 0, 0.f},
    {"qwen2", AMSKV_ROPE_NEOX, true, false, false, false, false, 0, 0.f},
    {"gemma3", AMSKV_ROPE_NEOX, false, true, true, true, true, 6, 10000.f},
};

bool fail(std::string* err, const std::string& msg) {
  if (err) *err = msg;
  return false;
}

std::string shape(int64_t d0, int64_t d1) {
  return "[" + std::to_string(d0) + ", " + std::to_string(d1) + "]";
}

// The tensor `name` with ne[0] = d0 and d1 rows (d1 = 1: a vector). Vectors (the norms)
// must be F32; matrices any type the matrix products support.
bool get(const GgufFile& f, const std::string& name, int64_t d0, int64_t d1, const GgufTensor** out,
         std::string* err) {
  const GgufTensor* t = gguf_tensor(f, name.c_str());
  if (!t) return fail(err, "model: tensor '" + name + "' is missing");
  if (t->ne[0] != d0 || t->n_rows != d1 || t->n_dims > 2)
    return fail(err, "model: tensor '" + name + "' has shape " + shape(t->ne[0], t->n_rows) +
                         ", expected " + shape(d0, d1));
  const bool ok = d1 == 1 ? t->type == GGML_TYPE_F32 : matmul_supported(t->type, t->ne[0]);
  if (!ok)
    return fail(
        err, "model: tensor '" + name + "' has type " + ggml_type_name(t->type) + " and rows of " +
                 std::to_string(t->ne[0]) +
                 ", which the runner does not compute with (F32, F16, Q8_0, Q4_0, Q4_1, "
                 "Q5_0, Q5_1, Q4_K, Q5_K, Q6_K; rows a multiple of the type's block, up to " +
                 std::to_string(kMatmulMaxRow) + ")");
  *out = t;
  return true;
}

// An optional integer key: `def` when absent.
bool get_int(const GgufFile& f, const char* key, int def, int* out, std::string* err) {
  uint32_t v = (uint32_t)def;
  if (gguf_find(f, key) && !gguf_get_u32(f, key, &v, err)) return false;
  if (v > (1u << 30)) return fail(err, std::string("model: ") + key + " is out of range");
  *out = (int)v;
  return true;
}

bool get_float(const GgufFile& f, const char* key, float* out, std::string* err) {
  return !gguf_find(f, key) || gguf_get_f32(f, key, out, err);
}

bool check_hparams(const LlamaHparams& hp, std::string* err) {
  auto in = [](int v, int lo, int hi) { return v >= lo && v <= hi; };
  if (!in(hp.n_layer, 1, 1024)) return fail(err, "model: block_count out of range (1..1024)");
  if (!in(hp.n_embd, 32, 65536) || hp.n_embd % 32)
    return fail(err, "model: embedding_length must be a multiple of 32 in 32..65536");
  if (!in(hp.n_head, 1, 1024) || !in(hp.n_head_kv, 1, hp.n_head) || hp.n_head % hp.n_head_kv)
    return fail(err, "model: head_count " + std::to_string(hp.n_head) +
                         " is not a multiple of head_count_kv " + std::to_string(hp.n_head_kv));
  if (!in(hp.head_dim, 1, 1024) || (hp.n_head * hp.head_dim) % 32)
    return fail(err, "model: head size " + std::to_string(hp.head_dim) + " does not fit " +
                         std::to_string(hp.n_head) + " heads in rows of 32");
  if (!in(hp.n_ff, 32, 1 << 20) || hp.n_ff % 32)
    return fail(err, "model: feed_forward_length must be a multiple of 32 in 32..1048576");
  if (!(hp.rms_eps > 0.f && hp.rms_eps < 1.f))
    return fail(err, "model: layer_norm_rms_epsilon out of range");
  if (!(hp.rope_theta > 0.f && hp.rope_theta < 1e12f))
    return fail(err, "model: rope.freq_base out of range");
  return true;
}

// Every matrix of the model repacked for the products (matmul.h), in one block.
bool pack_weights(LlamaModel* m, std::string* err) {
  std::vector<Matrix*> all = {&m->output};
  for (LlamaLayer& L : m->layers)
    for (Matrix* x : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down}) all.push_back(x);
  size_t bytes = 0;
  for (Matrix* x : all) bytes += matmul_packed_bytes(*x->t);
  m->packed = PackedWeights();
  m->packed.bytes = bytes;
  m->packed.mem = bytes ? (uint8_t*)std::aligned_alloc(64, bytes) : nullptr;
  if (bytes && !m->packed.mem)
    return fail(err, "model: cannot allocate " + std::to_string(bytes) + " bytes of weights");
  uint8_t* at = m->packed.mem;
  for (Matrix* x : all) {
    *x = matmul_pack(*x->t, at);
    at += matmul_packed_bytes(*x->t);
    // The products read the copy, and so do tied embeddings (forward): the file's pages of
    // the tensor go back, so the weights are resident once.
    if (x->packed.q) gguf_release(m->file, *x->t);
  }
  return true;
}

void rmsnorm(float* out, const float* x, const GgufTensor* w, int n, float eps) {
  double ss = 0;
  for (int i = 0; i < n; ++i) ss += (double)x[i] * x[i];
  const float inv = (float)(1.0 / std::sqrt(ss / n + eps));
  const float* g = (const float*)w->data;  // F32, checked at load; any alignment is fine
  for (int i = 0; i < n; ++i) out[i] = x[i] * inv * g[i];
}

}  // namespace

PackedWeights::PackedWeights(PackedWeights&& o) noexcept : mem(o.mem), bytes(o.bytes) {
  o.mem = nullptr;
  o.bytes = 0;
}

PackedWeights& PackedWeights::operator=(PackedWeights&& o) noexcept {
  if (this != &o) {
    std::free(mem);
    mem = o.mem, bytes = o.bytes;
    o.mem = nullptr, o.bytes = 0;
  }
  return *this;
}

PackedWeights::~PackedWeights() {
  std::free(mem);
}

namespace {

// Everything after the file is open: m->file holds it.
bool load_opened(LlamaModel* m, std::string* err) {
  const GgufFile& f = m->file;
  std::string_view arch;
  if (!gguf_get_str(f, "general.architecture", &arch, err)) return false;
  for (const LlamaArch& a : kArchs)
    if (arch == a.name) m->arch = &a;
  if (!m->arch)
    return fail(err, "model: architecture '" + std::string(arch) +
                         "' is not one the runner knows (llama, qwen2, gemma3)");
  const LlamaArch& A = *m->arch;
  const std::string pre = std::string(A.name) + ".";
  const auto key = [&](const char* k) { return pre + k; };
  LlamaHparams& hp = m->hp;
  uint32_t u;
  const char* required[] = {"block_count", "embedding_length", "attention.head_count",
                            "feed_forward_length"};
  int* dst[] = {&hp.n_layer, &hp.n_embd, &hp.n_head, &hp.n_ff};
  for (int i = 0; i < 4; ++i) {
    if (!gguf_get_u32(f, key(required[i]).c_str(), &u, err)) return false;
    *dst[i] = u > (1u << 30) ? -1 : (int)u;
  }
  if (!get_int(f, key("attention.head_count_kv").c_str(), hp.n_head, &hp.n_head_kv, err) ||
      !get_float(f, key("attention.layer_norm_rms_epsilon").c_str(), &hp.rms_eps, err) ||
      !get_float(f, key("rope.freq_base").c_str(), &hp.rope_theta, err))
    return false;
  if (hp.n_head < 1 || hp.n_embd < 1)
    return fail(err, "model: head_count and embedding_length must be positive");
  int key_len, value_len, rope_dims;
  if (!get_int(f, key("attention.key_length").c_str(), hp.n_embd / hp.n_head, &key_len, err) ||
      !get_int(f, key("attention.value_length").c_str(), key_len, &value_len, err) ||
      !get_int(f, key("rope.dimension_count").c_str(), key_len, &rope_dims, err))
    return false;
  if (value_len != key_len) return fail(err, "model: key_length and value_length differ");
  if (rope_dims != key_len) return fail(err, "model: partial RoPE is not supported");
  // Linear RoPE scaling divides the (global layers') frequencies by its factor.
  float rope_scale = 1.f;
  if (gguf_find(f, key("rope.scaling.type").c_str())) {
    std::string_view scaling;
    if (!gguf_get_str(f, key("rope.scaling.type").c_str(), &scaling, err)) return false;
    if (scaling == "linear") {
      if (!gguf_get_f32(f, key("rope.scaling.factor").c_str(), &rope_scale, err)) return false;
      if (!(rope_scale >= 1.f && rope_scale <= 1024.f))
        return fail(err, "model: rope.scaling.factor must be in [1, 1024]");
    } else if (scaling != "none") {
      return fail(err, "model: RoPE scaling '" + std::string(scaling) +
                           "' is not supported (none and linear are)");
    }
  }
  if (A.swa_period > 0) {
    if (!gguf_find(f, key("attention.sliding_window").c_str()))
      return fail(err, "model: " + key("attention.sliding_window") + " is missing");
    if (!get_int(f, key("attention.sliding_window").c_str(), 0, &hp.sliding_window, err))
      return false;
    if (hp.sliding_window < 1) return fail(err, "model: attention.sliding_window must be >= 1");
  }
  hp.head_dim = key_len;
  if (!check_hparams(hp, err)) return false;
  // The session scales scores by 1 / sqrt(head_dim); Gemma 3 27B (62 layers) scales by
  // 1 / sqrt(n_embd / n_head) instead (its query_pre_attn_scalar; llama.cpp does the same).
  if (A.swa_period > 0 && hp.n_layer == 62)
    hp.q_scale = std::sqrt((float)hp.head_dim / (float)(hp.n_embd / hp.n_head));

  const GgufTensor* emb = gguf_tensor(f, "token_embd.weight");
  if (!emb) return fail(err, "model: tensor 'token_embd.weight' is missing");
  if (emb->n_rows < 1 || emb->n_rows > (1 << 24))
    return fail(err, "model: token_embd.weight has an unusable number of rows");
  hp.n_vocab = (int)emb->n_rows;
  const int q_dim = hp.n_head * hp.head_dim, kv_dim = hp.n_head_kv * hp.head_dim;
  if (!get(f, "token_embd.weight", hp.n_embd, hp.n_vocab, &m->tok_embd, err) ||
      !get(f, "output_norm.weight", hp.n_embd, 1, &m->output_norm, err))
    return false;
  m->output.t = m->tok_embd;  // tied unless the file has its own
  if (gguf_tensor(f, "output.weight") &&
      !get(f, "output.weight", hp.n_embd, hp.n_vocab, &m->output.t, err))
    return false;
  m->layers.resize(hp.n_layer);
  for (int l = 0; l < hp.n_layer; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    LlamaLayer& L = m->layers[l];
    if (!get(f, p + "attn_norm.weight", hp.n_embd, 1, &L.attn_norm, err) ||
        !get(f, p + "attn_q.weight", hp.n_embd, q_dim, &L.wq.t, err) ||
        !get(f, p + "attn_k.weight", hp.n_embd, kv_dim, &L.wk.t, err) ||
        !get(f, p + "attn_v.weight", hp.n_embd, kv_dim, &L.wv.t, err) ||
        !get(f, p + "attn_output.weight", q_dim, hp.n_embd, &L.wo.t, err) ||
        !get(f, p + "ffn_norm.weight", hp.n_embd, 1, &L.ffn_norm, err) ||
        !get(f, p + "ffn_gate.weight", hp.n_embd, hp.n_ff, &L.w_gate.t, err) ||
        !get(f, p + "ffn_up.weight", hp.n_embd, hp.n_ff, &L.w_up.t, err) ||
        !get(f, p + "ffn_down.weight", hp.n_ff, hp.n_embd, &L.w_down.t, err))
      return false;
    if (A.qkv_bias && (!get(f, p + "attn_q.bias", q_dim, 1, &L.bq, err) ||
                       !get(f, p + "attn_k.bias", kv_dim, 1, &L.bk, err) ||
                       !get(f, p + "attn_v.bias", kv_dim, 1, &L.bv, err)))
      return false;
    if (A.qk_norm && (!get(f, p + "attn_q_norm.weight", hp.head_dim, 1, &L.q_norm, err) ||
                      !get(f, p + "attn_k_norm.weight", hp.head_dim, 1, &L.k_norm, err)))
      return false;
    if (A.post_norms &&
        (!get(f, p + "post_attention_norm.weight", hp.n_embd, 1, &L.post_attn_norm, err) ||
         !get(f, p + "post_ffw_norm.weight", hp.n_embd, 1, &L.post_ffn_norm, err)))
      return false;
    L.local = A.swa_period > 0 && (l + 1) % A.swa_period != 0;
    if (A.swa_period > 0) m->layer_window.push_back(L.local ? hp.sliding_window : 0);
  }
  // Llama 3.1 and later: per-frequency factors that divide the frequencies (rope_freqs).
  const GgufTensor* factors = nullptr;
  if (gguf_tensor(f, "rope_freqs.weight") &&
      !get(f, "rope_freqs.weight", hp.head_dim / 2, 1, &factors, err))
    return false;
  // RoPE in the runner where the layers differ or the frequencies are the file's; the session
  // then stores the keys as given.
  m->rope_in_runner = A.swa_period > 0 || factors || rope_scale != 1.f;
  if (m->rope_in_runner)
    for (int kind = 0; kind < 2; ++kind) {
      m->inv_freq[kind].resize(hp.head_dim / 2);
      rope_inv_freq(kind ? A.swa_rope_theta : hp.rope_theta, hp.head_dim, m->inv_freq[kind].data());
      if (kind == 0)  // local layers keep their own base unscaled (as llama.cpp does)
        for (double& v : m->inv_freq[0]) v /= rope_scale;
      for (int i = 0; factors && i < hp.head_dim / 2; ++i) {
        const float fi = ((const float*)factors->data)[i];
        if (!(fi > 0.f && fi < 1e6f))
          return fail(err, "model: rope_freqs.weight holds a factor that is not positive");
        m->inv_freq[kind][i] /= fi;
      }
    }
  TokenizerData td;
  if (!tokenizer_data_from_gguf(f, &td, err)) return false;
  if ((int64_t)td.tokens.size() != hp.n_vocab)
    return fail(err, "model: the tokenizer has " + std::to_string(td.tokens.size()) +
                         " tokens but token_embd has " + std::to_string(hp.n_vocab) + " rows");
  if (gguf_find(f, "tokenizer.chat_template")) {
    std::string_view tmpl;
    if (!gguf_get_str(f, "tokenizer.chat_template", &tmpl, err)) return false;
    m->chat_template_present = true;
    m->chat = chat_format_recognise(tmpl);
  } else {  // none in the file: the architecture's, or ChatML (as llama.cpp falls back)
    m->chat = chat_format_named(A.swa_period > 0 ? "gemma" : "chatml");
  }
  return tokenizer_init(m->tok, td, err) && pack_weights(m, err);
}

}  // namespace

bool llama_load(const char* path, LlamaModel* m, std::string* err, bool* unsupported) {
  *m = LlamaModel();
  if (unsupported) *unsupported = false;
  if (!gguf_open(path, &m->file, err)) return false;
  const bool ok = load_opened(m, err);
  if (unsupported) *unsupported = !ok;
  return ok;
}

bool llama_load_memory(const void* data, size_t size, LlamaModel* m, std::string* err,
                       bool* unsupported) {
  *m = LlamaModel();
  if (unsupported) *unsupported = false;
  if (!gguf_open_memory(data, size, &m->file, err)) return false;
  const bool ok = load_opened(m, err);
  if (unsupported) *unsupported = !ok;
  return ok;
}

amskv_config llama_session_config(const LlamaModel& m, amskv_dtype kv_dtype, const char* policy,
                                  int n_threads) {
  amskv_config cfg = amskv_config_default();
  cfg.n_layers = m.hp.n_layer;
  cfg.n_q_heads = m.hp.n_head;
  cfg.n_kv_heads = m.hp.n_head_kv;
  cfg.head_dim = m.hp.head_dim;
  cfg.kv_dtype = kv_dtype;
  cfg.rope_theta = m.hp.rope_theta;
  cfg.rope_style = m.rope_in_runner ? AMSKV_ROPE_NONE : m.arch->rope;
  cfg.layer_window = m.layer_window.empty() ? nullptr : m.layer_window.data();
  cfg.policy = policy;
  cfg.n_threads = n_threads;
  return cfg;
}

size_t llama_context_bytes(const LlamaContext& c) {
  size_t floats = 0;
  for (const std::vector<float>* v :
       {&c.x, &c.xb, &c.q, &c.k, &c.v, &c.att, &c.hb, &c.hb2, &c.rope, &c.logits, &c.last, &c.nats})
    floats += v->capacity();
  return floats * 4 + c.xq.q.capacity() * 2 + (c.xq.d.capacity() + c.xq.s.capacity()) * 4 +
         c.xq.lo.capacity() + c.xq.hi.capacity() + onednn_plan_bytes(c.xq.dnn);
}

bool llama_context_copy(LlamaContext* dst, const LlamaContext& src, std::string* err) {
  if (dst->m != src.m || src.broken) return *err = "context copy: another model, or broken", false;
  if (amskv_session_copy(dst->kv, src.kv) != AMSKV_OK)
    return *err = amskv_last_error(dst->kv), false;
  dst->pos = src.pos;
  dst->broken = false;
  dst->have_last = src.have_last;
  std::copy(src.last.begin(), src.last.end(), dst->last.begin());  // the same sizes
  return true;
}

bool llama_context_init(LlamaContext* c, const LlamaModel& m, const LlamaParams& p,
                        std::string* err) {
  if (p.n_threads < 1 || p.max_batch < 1 || p.max_batch > 4096)
    return fail(err, "llama: n_threads must be >= 1 and max_batch in 1..4096");
  const LlamaHparams& hp = m.hp;
  const size_t B = (size_t)p.max_batch, q_dim = (size_t)hp.n_head * hp.head_dim,
               kv_dim = (size_t)hp.n_head_kv * hp.head_dim;
  // Activations stay well under 2 GiB so that sizes fit on 32-bit hosts too.
  if ((double)B * (2.0 * hp.n_embd + 2.0 * q_dim + 2.0 * kv_dim + 2.0 * hp.n_ff) > (1 << 29))
    return fail(err, "llama: max_batch is too large for this model's activations");
  amskv_session_destroy(c->kv);
  c->kv = nullptr;
  onednn_plan_destroy(c->xq.dnn);
  c->xq.dnn = nullptr;
  if (p.onednn) {
    std::vector<const Matrix*> ws;
    for (const LlamaLayer& L : m.layers)
      for (const Matrix* w : {&L.wq, &L.wk, &L.wv, &L.wo, &L.w_gate, &L.w_up, &L.w_down})
        ws.push_back(w);
    c->xq.dnn = onednn_plan_create(ws.data(), (int)ws.size(), p.max_batch, p.n_threads, err);
    if (!c->xq.dnn) {
      c->status = AMSKV_E_UNSUPPORTED;
      return false;
    }
  }
  const amskv_config cfg = llama_session_config(m, p.kv_dtype, p.policy, p.n_threads);
  c->status = amskv_session_create(&cfg, p.kv_budget, &c->kv);
  if (c->status != AMSKV_OK) {
    onednn_plan_destroy(c->xq.dnn);
    c->xq.dnn = nullptr;
    return fail(err, std::string("kv: ") + amskv_last_error(nullptr));
  }
  c->m = &m;
  c->n_threads = p.n_threads;
  c->max_batch = p.max_batch;
  c->pos = 0;
  c->broken = false;
  c->error.clear();
  c->x.assign(B * hp.n_embd, 0.f);
  c->xb.assign(B * hp.n_embd, 0.f);
  c->q.assign(B * q_dim, 0.f);
  c->k.assign(B * kv_dim, 0.f);
  c->v.assign(B * kv_dim, 0.f);
  c->att.assign(B * q_dim, 0.f);
  c->hb.assign(B * hp.n_ff, 0.f);
  c->hb2.assign(B * hp.n_ff, 0.f);
  c->rope.assign(m.rope_in_runner ? B * 4 * hp.head_dim : 0, 0.f);
  c->surprisal = amskv_uses_surprisal(c->kv) != 0;
  c->have_last = false;
  c->logits.assign(c->surprisal ? B * hp.n_vocab : 0, 0.f);
  c->last.assign(c->surprisal ? (size_t)hp.n_vocab : 0, 0.f);
  c->nats.assign(B, 0.f);
  const size_t k_max = std::max({(size_t)hp.n_embd, q_dim, (size_t)hp.n_ff});
  matmul_scratch_init(&c->xq, (int)B, (int)k_max);
  return true;
}

namespace {

enum class Mode { kPrefill, kDecode, kDecodeMany };

// -log softmax(prev)[token], prev the V logits that predicted `token` (null for a first
// token: 0). Overwrites prev with its softmax (the kernel's, vectorised): log(sum) is -log of
// the softmax at the argmax, whose exp is 1.
float surprisal_nats(float* prev, size_t V, int32_t token, const Kernels& kern) {
  if (!prev) return 0.f;
  size_t top = 0;
  for (size_t i = 1; i < V; ++i) top = prev[i] > prev[top] ? i : top;
  const double gap = (double)prev[top] - (double)prev[token];
  kern.softmax(prev, (int)V);
  return (float)std::max(0.0, gap - std::log((double)prev[top]));
}

// n <= max_batch tokens through every layer. kPrefill: tokens at c.pos, c.pos + 1, ... with
// amskv_prefill; kDecode: one token at c.pos with amskv_attend; kDecodeMany: token t is the
// next token of seqs[t] (its session, its position), c only lends its activations. Logits:
// of the last token, or with kDecodeMany of every token ([n][n_vocab]); unless null.
bool forward(LlamaContext& c, const int32_t* tokens, int n, Mode mode, float* logits,
             LlamaContext* const* seqs = nullptr) {
  const LlamaModel& m = *c.m;
  const LlamaHparams& hp = m.hp;
  const int E = hp.n_embd, F = hp.n_ff, nt = c.n_threads;
  float *x = c.x.data(), *xb = c.xb.data(), *hb = c.hb.data(), *hb2 = c.hb2.data();
  MatmulScratch* xq = &c.xq;
  Matrix file_embd;  // embeddings from the file unless they are the tied output's copy
  file_embd.t = m.tok_embd;
  const Matrix& embd = m.output.t == m.tok_embd ? m.output : file_embd;
  const LlamaArch& A = *m.arch;
  const int D = hp.head_dim, HQ = hp.n_head, HK = hp.n_head_kv;
  for (int t = 0; t < n; ++t) matmul_row(embd, tokens[t], x + t * E);
  if (A.embd_scale) {
    const float scale = std::sqrt((float)E);
    for (size_t i = 0; i < (size_t)n * E; ++i) x[i] *= scale;
  }
  // The runner's RoPE tables: each token's, global and local.
  const Kernels* kern = active_kernels();
  if (m.rope_in_runner)
    for (int t = 0; t < n; ++t) {
      const int32_t pos = mode == Mode::kDecodeMany ? seqs[t]->pos : c.pos + t;
      for (int kind = 0; kind < 2; ++kind)
        rope_table(A.rope == AMSKV_ROPE_NEOX, pos, m.inv_freq[kind].data(), D,
                   c.rope.data() + ((size_t)t * 2 + kind) * 2 * D);
    }
  for (int l = 0; l < hp.n_layer; ++l) {
    const LlamaLayer& L = m.layers[l];
    for (int t = 0; t < n; ++t) rmsnorm(xb + t * E, x + t * E, L.attn_norm, E, hp.rms_eps);
    const MatmulOut qkv[] = {{&L.wq, c.q.data()}, {&L.wk, c.k.data()}, {&L.wv, c.v.data()}};
    matmul(qkv, 3, xb, n, xq, nt);
    for (int t = 0; t < n; ++t) {
      float *q = c.q.data() + (size_t)t * HQ * D, *k = c.k.data() + (size_t)t * HK * D,
            *v = c.v.data() + (size_t)t * HK * D;
      if (A.qkv_bias) {
        const float *bq = (const float*)L.bq->data, *bk = (const float*)L.bk->data,
                    *bv = (const float*)L.bv->data;
        for (int i = 0; i < HQ * D; ++i) q[i] += bq[i];
        for (int i = 0; i < HK * D; ++i) k[i] += bk[i], v[i] += bv[i];
      }
      if (A.qk_norm) {
        for (int h = 0; h < HQ; ++h) rmsnorm(q + h * D, q + h * D, L.q_norm, D, hp.rms_eps);
        for (int h = 0; h < HK; ++h) rmsnorm(k + h * D, k + h * D, L.k_norm, D, hp.rms_eps);
      }
      if (hp.q_scale != 1.f)
        for (int i = 0; i < HQ * D; ++i) q[i] *= hp.q_scale;
      if (m.rope_in_runner) {
        const float* table = c.rope.data() + ((size_t)t * 2 + (L.local ? 1 : 0)) * 2 * D;
        auto rot = A.rope == AMSKV_ROPE_NEOX ? kern->rope_neox : kern->rope_normal;
        rot(q, HQ, D, table);
        rot(k, HK, D, table);
      }
    }
    // RoPE, the KV cache, eviction and attention: all inside amskv.
    if (mode == Mode::kDecodeMany) {
      const size_t qd = (size_t)hp.n_head * hp.head_dim, kd = (size_t)hp.n_head_kv * hp.head_dim;
      for (int t = 0; t < n; ++t) {
        LlamaContext& s = *seqs[t];
        const amskv_status st =
            amskv_attend(s.kv, l, s.pos, c.q.data() + t * qd, c.k.data() + t * kd,
                         c.v.data() + t * kd, c.att.data() + t * qd);
        if (st != AMSKV_OK) {
          // Other sequences already hold layer l (or earlier layers) of this step.
          for (int u = 0; u < n; ++u) seqs[u]->broken = l > 0 || u != t;
          s.status = c.status = st;
          s.error = c.error = std::string("attention: ") + amskv_last_error(s.kv);
          return false;
        }
      }
    } else {
      const amskv_status st =
          mode == Mode::kDecode
              ? amskv_attend(c.kv, l, c.pos, c.q.data(), c.k.data(), c.v.data(), c.att.data())
              : amskv_prefill(c.kv, l, c.pos, n, c.q.data(), c.k.data(), c.v.data(), c.att.data());
      if (st != AMSKV_OK) {
        // amskv rejected the call and left layer l as it was; layers before it already hold
        // these tokens, so unless l is 0 the context can no longer go on.
        c.status = st;
        c.broken = l > 0;
        c.error = std::string("attention: ") + amskv_last_error(c.kv);
        return false;
      }
    }
    const MatmulOut o[] = {{&L.wo, xb}};
    matmul(o, 1, c.att.data(), n, xq, nt);
    if (A.post_norms)
      for (int t = 0; t < n; ++t) rmsnorm(xb + t * E, xb + t * E, L.post_attn_norm, E, hp.rms_eps);
    for (size_t i = 0; i < (size_t)n * E; ++i) x[i] += xb[i];
    for (int t = 0; t < n; ++t) rmsnorm(xb + t * E, x + t * E, L.ffn_norm, E, hp.rms_eps);
    const MatmulOut gate_up[] = {{&L.w_gate, hb}, {&L.w_up, hb2}};
    matmul(gate_up, 2, xb, n, xq, nt);
    if (A.gelu)
      for (size_t i = 0; i < (size_t)n * F; ++i) {  // GELU, tanh form (as llama.cpp's)
        const float g = hb[i];
        hb[i] =
            0.5f * g * (1.f + std::tanh(0.7978845608f * g * (1.f + 0.044715f * g * g))) * hb2[i];
      }
    else
      for (size_t i = 0; i < (size_t)n * F; ++i)
        hb[i] = hb[i] / (1.f + std::exp(-hb[i])) * hb2[i];  // SwiGLU
    const MatmulOut down[] = {{&L.w_down, xb}};
    matmul(down, 1, hb, n, xq, nt);
    if (A.post_norms)
      for (int t = 0; t < n; ++t) rmsnorm(xb + t * E, xb + t * E, L.post_ffn_norm, E, hp.rms_eps);
    for (size_t i = 0; i < (size_t)n * E; ++i) x[i] += xb[i];
  }
  // The output layer: every token's logits with kDecodeMany, else the last token's (every
  // token's into c.logits when the session reads surprisals).
  const bool many = mode == Mode::kDecodeMany, every = !many && c.surprisal;
  const int32_t pos0 = many ? 0 : c.pos;
  if (many)
    for (int t = 0; t < n; ++t) seqs[t]->pos += 1;
  else
    c.pos += n;
  float* rows_out = every ? c.logits.data() : logits;
  if (rows_out) {
    const auto t0 = std::chrono::steady_clock::now();
    const int first = many || every ? 0 : n - 1, rows = many || every ? n : 1;
    const size_t V = (size_t)hp.n_vocab;
    for (int t = 0; t < rows; ++t)
      rmsnorm(xb + t * E, x + (first + t) * E, m.output_norm, E, hp.rms_eps);
    const MatmulOut out[] = {{&m.output, rows_out}};
    matmul(out, 1, xb, rows, xq, nt);
    // Weights of an untrusted file can make them NaN or Inf; nothing downstream (sampling,
    // log-probabilities) means anything then.
    for (size_t i = 0; i < (size_t)rows * V; ++i)
      if (!std::isfinite(rows_out[i])) {
        c.error =
            "llama: the logits are not finite (the model's weights hold NaN, Inf or "
            "values that overflow)";
        c.broken = true;  // the tokens are in the cache already
        return false;
      }
    // Each token's surprisal from the row before it (the previous call's last row for the
    // first), the tokens' rows on every thread, given to the sessions in order; each
    // sequence keeps its last row for its next token.
    if (every || many) {
      parallel_for(nt, n, [&](int t, int) {
        LlamaContext& s = every ? c : *seqs[t];
        if (!s.surprisal) return;
        float* prev = every && t > 0 ? rows_out + (t - 1) * V
                      : s.have_last  ? s.last.data()
                                     : nullptr;
        c.nats[t] = surprisal_nats(prev, V, tokens[t], *kern);
      });
      // A session that refuses one breaks alone: the others still take theirs and their rows.
      bool given = true;
      for (int t = 0; t < n; ++t) {
        LlamaContext& s = every ? c : *seqs[t];
        if (!s.surprisal || s.broken) continue;
        const amskv_status st = amskv_set_surprisal(s.kv, every ? pos0 + t : s.pos - 1, c.nats[t]);
        if (st != AMSKV_OK) {
          s.status = st;
          s.error = std::string("surprisal: ") + amskv_last_error(s.kv);
          s.broken = true;  // the token is in the cache already
          if (given && &s != &c) c.error = s.error;
          given = false;
          continue;
        }
        if (many || t == n - 1) {
          const float* row = rows_out + t * V;
          std::copy(row, row + V, s.last.begin());
          s.have_last = true;
        }
      }
      if (!given) return false;
    }
    if (every && logits) std::copy(rows_out + (n - 1) * V, rows_out + n * V, logits);
    c.output_seconds +=
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  }
  return true;
}

// Checks that apply to every call, before anything changes.
bool check_call(LlamaContext& c, const int32_t* tokens, int n) {
  c.status = AMSKV_OK;
  if (!c.m || !c.kv) return fail(&c.error, "llama: context not initialized");
  if (c.broken) return fail(&c.error, "llama: an earlier call failed halfway; start a new context");
  if (n < 0 || (n > 0 && !tokens)) return fail(&c.error, "llama: bad token array");
  for (int i = 0; i < n; ++i)
    if (tokens[i] < 0 || tokens[i] >= c.m->hp.n_vocab)
      return fail(&c.error, "llama: token id " + std::to_string(tokens[i]) + " is out of range");
  if ((int64_t)c.pos + n > INT32_MAX) return fail(&c.error, "llama: position overflow");
  return true;
}

}  // namespace

bool llama_prefill(LlamaContext& c, const int32_t* tokens, int n, float* logits_last) {
  if (!check_call(c, tokens, n)) return false;
  for (int done = 0; done < n;) {
    const int nb = n - done < c.max_batch ? n - done : c.max_batch;
    if (!forward(c, tokens + done, nb, Mode::kPrefill, done + nb == n ? logits_last : nullptr))
      return false;
    done += nb;
  }
  return true;
}

bool llama_decode(LlamaContext& c, int32_t token, float* logits) {
  return check_call(c, &token, 1) && forward(c, &token, 1, Mode::kDecode, logits);
}

bool llama_decode_many(LlamaContext& work, LlamaContext* const* seqs, const int32_t* tokens, int n,
                       float* logits) {
  if (!work.m) return fail(&work.error, "llama: context not initialized");
  if (n < 1 || n > work.max_batch || !seqs || !tokens)
    return fail(&work.error, "llama: decode_many needs 1..max_batch sequences and tokens");
  for (int t = 0; t < n; ++t) {
    if (!seqs[t] || seqs[t]->m != work.m)
      return fail(&work.error, "llama: decode_many sequences must use the work context's model");
    for (int u = 0; u < t; ++u)
      if (seqs[u] == seqs[t]) return fail(&work.error, "llama: a sequence appears twice");
    if (seqs[t]->surprisal && !logits)
      return fail(&work.error, "llama: decode_many needs logits for a policy that reads surprisal");
    if (!check_call(*seqs[t], tokens + t, 1)) {
      work.error = seqs[t]->error;
      return false;
    }
  }
  work.status = AMSKV_OK;
  return forward(work, tokens, n, Mode::kDecodeMany, logits, seqs);
}

}  // namespace amskv
