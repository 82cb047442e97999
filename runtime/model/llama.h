// The llama forward pass over a GGUF file, with attention through an amskv session, so the
// KV budget and the eviction policy apply. Weights stay in the mapped file (quantized rows
// are dotted directly); activations are allocated once per context.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "amskv/amskv.h"
#include "runtime/model/gguf.h"
#include "runtime/model/tokenizer.h"

namespace amskv {

struct LlamaHparams {
  int n_layer, n_embd, n_head, n_head_kv, head_dim, n_ff, n_vocab;
  float rms_eps, rope_theta;
};

struct LlamaLayer {
  const GgufTensor *attn_norm, *wq, *wk, *wv, *wo, *ffn_norm, *w_gate, *w_up, *w_down;
};

struct LlamaModel {
  GgufFile file;
  LlamaHparams hp{};
  std::vector<LlamaLayer> layers;
  const GgufTensor* tok_embd = nullptr;
  const GgufTensor* output_norm = nullptr;
  const GgufTensor* output = nullptr;  // token_embd when the embeddings are tied
  Tokenizer tok;
};

// Opens and validates the file: every tensor present with the shape the hyperparameters
// imply and a supported type. false + one line in err otherwise.
bool llama_load(const char* path, LlamaModel* m, std::string* err);

struct LlamaContext {
  const LlamaModel* m = nullptr;
  amskv_session* kv = nullptr;
  int n_threads = 1;
  int32_t pos = 0;  // position of the next token
  std::vector<float> x, xb, q, k, v, att, hb, hb2, logits;
  LlamaContext() = default;
  LlamaContext(const LlamaContext&) = delete;
  LlamaContext& operator=(const LlamaContext&) = delete;
  ~LlamaContext() { amskv_session_destroy(kv); }
};

// A session of `kv_budget` bytes for the model's geometry with this dtype and policy.
bool llama_context_init(LlamaContext* c, const LlamaModel& m, size_t kv_budget,
                        amskv_dtype kv_dtype, const char* policy, int n_threads, std::string* err);

// One token through every layer at position c->pos (then pos + 1); logits in c->logits.
bool llama_decode(LlamaContext* c, int32_t token, std::string* err);

}  // namespace amskv
