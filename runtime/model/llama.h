// The llama forward pass over a GGUF file, with attention through an amskv session so the
// KV budget and the eviction policy apply. Weights stay in the mapped file and are
// dequantized block by block inside the matrix products (matmul.h); a context allocates
// its activations once, so prefill and decode allocate nothing.
//
// Per layer: RMSNorm -> q, k, v projections -> attention in amskv (RoPE at each absolute
// position, the KV cache, eviction) -> output projection -> residual -> RMSNorm -> SwiGLU
// FFN -> residual. Then the final RMSNorm and logits = output (or the tied token_embd) x h.
// What an architecture does differently is one row of a table (LlamaArch, llama.cpp): biases
// on q, k and v (qwen2); per-head RMSNorm of q and k, norms after attention and FFN, scaled
// embeddings, a GELU gate, local layers with their own RoPE base (gemma3). Where the RoPE
// differs by layer the runner rotates q and k itself and the session is told ROPE_NONE.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "amskv/amskv.h"
#include "runtime/model/gguf.h"
#include "runtime/model/matmul.h"
#include "runtime/model/tokenizer.h"

namespace amskv {

// One row per architecture: general.architecture (also the prefix of its keys) and how its
// forward pass differs from llama's.
struct LlamaArch {
  const char* name;
  amskv_rope_style rope;  // NORMAL (adjacent pairs) or NEOX (halves)
  bool qkv_bias;          // q, k and v have biases (attn_q.bias, ...)
  bool qk_norm;           // RMSNorm of each head of q and k (attn_q_norm, attn_k_norm)
  bool post_norms;        // RMSNorm of the attention and FFN outputs (post_attention_norm,
                          // post_ffw_norm) before their residual add
  bool embd_scale;        // embeddings times sqrt(n_embd)
  bool gelu;              // GELU (tanh form) gate, else SiLU
  int swa_period;         // > 0: every swa_period-th layer is global, the others local
  float swa_rope_theta;   // the local layers' RoPE base
};

struct LlamaHparams {
  int n_layer = 0, n_embd = 0, n_head = 0, n_head_kv = 0, head_dim = 0, n_ff = 0, n_vocab = 0;
  float rms_eps = 1e-5f, rope_theta = 10000.f;
  int sliding_window = 0;  // tokens a local layer sees (gemma3), 0: every layer global
  float q_scale = 1.f;     // queries times this before attention (an attention scale other
                           // than the session's 1 / sqrt(head_dim))
};

struct LlamaLayer {
  const GgufTensor *attn_norm, *ffn_norm;
  Matrix wq, wk, wv, wo, w_gate, w_up, w_down;
  const GgufTensor *bq = nullptr, *bk = nullptr, *bv = nullptr;          // qkv_bias
  const GgufTensor *q_norm = nullptr, *k_norm = nullptr;                 // qk_norm
  const GgufTensor *post_attn_norm = nullptr, *post_ffn_norm = nullptr;  // post_norms
  bool local = false;  // a sliding-window layer (its own RoPE base)
};

// The repacked weights of a model (matmul_pack), one block for all of them.
struct PackedWeights {
  uint8_t* mem = nullptr;
  size_t bytes = 0;
  PackedWeights() = default;
  PackedWeights(const PackedWeights&) = delete;
  PackedWeights& operator=(const PackedWeights&) = delete;
  PackedWeights(PackedWeights&& o) noexcept;
  PackedWeights& operator=(PackedWeights&& o) noexcept;
  ~PackedWeights();
};

struct LlamaModel {
  GgufFile file;
  const LlamaArch* arch = nullptr;
  LlamaHparams hp;
  std::vector<double> inv_freq[2];    // runner-side RoPE (global, local) when rope_in_runner
  std::vector<int32_t> layer_window;  // the session's (amskv_config.layer_window), or empty
  bool rope_in_runner = false;
  std::vector<LlamaLayer> layers;
  const GgufTensor* tok_embd = nullptr;
  const GgufTensor* output_norm = nullptr;
  Matrix output;  // of token_embd itself when the embeddings are tied
  PackedWeights packed;
  Tokenizer tok;
  // The chat template: recognised from tokenizer.chat_template, else the architecture's own
  // when the file has none (gemma3: gemma, others ChatML); null when the file's template is
  // not one the runner knows.
  const ChatFormat* chat = nullptr;
  bool chat_template_present = false;
};

// Opens and validates the file: an architecture of the table, hyperparameters that agree with each
// other and fit, every tensor present with the shape they imply and a type the matrix
// products compute with, a tokenizer of the embedding's size. false + one line in err.
// *unsupported (if non-null) tells a readable GGUF the runner does not support (its
// architecture, a tensor type, a key, a shape, the tokenizer) from a file that cannot be read.
bool llama_load(const char* path, LlamaModel* m, std::string* err, bool* unsupported = nullptr);
// The same from a caller's buffer (which must outlive m): for tests and fuzzing.
bool llama_load_memory(const void* data, size_t size, LlamaModel* m, std::string* err,
                       bool* unsupported = nullptr);

// The amskv session config for the model's geometry (RoPE NORMAL with the file's theta).
amskv_config llama_session_config(const LlamaModel& m, amskv_dtype kv_dtype, const char* policy,
                                  int n_threads);

struct LlamaParams {
  size_t kv_budget = 8u << 20;  // bytes for the whole KV session
  amskv_dtype kv_dtype = AMSKV_F16;
  const char* policy = "full";  // any amskv policy string; copied by the session
  int n_threads = 1;            // OpenMP threads for matrix products and attention
  int max_batch = 32;           // prompt tokens per pass over the weights
  bool onednn = false;          // prompt batches of max_batch / 2 tokens or more on oneDNN
                                // (matmul.h; max_batch >= kOnednnMinBatch)
};

// One sequence: its KV session, its position and every activation buffer it needs.
struct LlamaContext {
  const LlamaModel* m = nullptr;
  amskv_session* kv = nullptr;
  int n_threads = 1, max_batch = 1;
  int32_t pos = 0;                 // absolute position of the next token
  bool broken = false;             // a layer failed halfway through a token: no further calls
  amskv_status status = AMSKV_OK;  // the session's status when the last call failed there
  std::string error;               // why the last call failed
  // Activations, [max_batch][...]: the residual stream x, a normed/projected scratch xb,
  // q, k, v, the attention output att, and the FFN's gate and up projections.
  std::vector<float> x, xb, q, k, v, att, hb, hb2;
  std::vector<float> rope;  // [max_batch][2][2 head_dim]: the tokens' RoPE tables (runner)
  MatmulScratch xq;         // the input of a matrix product quantized to 16 bits
  // With a policy that reads surprisals (amskv_uses_surprisal) every call computes every
  // token's logits and gives the session each token's surprisal: `logits` [max_batch][n_vocab]
  // holds a call's rows, `last` [n_vocab] the row that predicts the next token, `nats`
  // [max_batch] a call's surprisals (of the sequences it decodes, with llama_decode_many).
  bool surprisal = false;
  bool have_last = false;
  std::vector<float> logits, last, nats;
  double output_seconds = 0;  // spent in the output layer (final norm and logits), all calls

  LlamaContext() = default;
  LlamaContext(const LlamaContext&) = delete;
  LlamaContext& operator=(const LlamaContext&) = delete;
  ~LlamaContext() {
    amskv_session_destroy(kv);
    onednn_plan_destroy(xq.dnn);
  }
};

// Bytes of the context's own buffers (activations, their quantized copy, the oneDNN plan's
// block), beyond the model's weights and the KV session.
size_t llama_context_bytes(const LlamaContext& c);

// Creates the session (p.kv_budget bytes at most) and the buffers (and with p.onednn the
// oneDNN plan). false + err (and c->status from amskv: AMSKV_E_BUDGET, AMSKV_E_POLICY, ...)
// when the session is refused, or oneDNN is asked for and this build or CPU has none.
bool llama_context_init(LlamaContext* c, const LlamaModel& m, const LlamaParams& p,
                        std::string* err);

// dst takes src's tokens, position and last logits (amskv_session_copy: both made with the same
// model, budget, dtype and policy); false + err otherwise, dst unchanged. No allocation.
bool llama_context_copy(LlamaContext* dst, const LlamaContext& src, std::string* err);

// n tokens at positions pos, pos + 1, ...: max_batch tokens per pass over the weights,
// causal attention through amskv_prefill (which compresses a layer when it fills). The
// last token's logits go to logits_last [n_vocab] unless it is null.
bool llama_prefill(LlamaContext& c, const int32_t* tokens, int n, float* logits_last);

// One token through amskv_attend per layer; logits [n_vocab] unless null.
bool llama_decode(LlamaContext& c, int32_t token, float* logits);

// One token for each of n sequences in one pass over the weights (what an evaluation of
// many policies on the same text wants): tokens[t] goes through seqs[t]'s session at its
// position, and logits [n][n_vocab] unless null. `work` (max_batch >= n, the same model)
// lends its activation buffers; it may be one of seqs. Exactly what n llama_decode calls
// give, up to float summation order. A failure in one sequence's session marks the
// sequences that got partway as broken.
bool llama_decode_many(LlamaContext& work, LlamaContext* const* seqs, const int32_t* tokens, int n,
                       float* logits);

}  // namespace amskv
