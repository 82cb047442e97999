// libFuzzer: the model loader on arbitrary bytes (every architecture's keys and tensors, the
// types the matrix products take, the tokenizer), then, for a model it accepts that is small,
// a few tokens through it (past a gemma3 seed's window of 5). Seeds: tiny
// llama, qwen2 and gemma3 files written by
//   python tests/model/reference/check_tiny_models.py --write-seeds tests/fuzz/corpus/fuzz_model
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/model/llama.h"

using namespace amskv;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  LlamaModel m;
  std::string err;
  if (!llama_load_memory(data, size, &m, &err)) {
    if (err.empty()) __builtin_trap();  // a rejection always says why
    return 0;
  }
  const LlamaHparams& hp = m.hp;
  // Compute only on small models: the loader is what is under test, not the speed.
  if ((double)hp.n_layer * hp.n_embd * (hp.n_ff + 4.0 * hp.n_head * hp.head_dim) > 4e6 ||
      (double)hp.n_vocab * hp.n_embd > 4e6)
    return 0;
  LlamaParams p;
  p.policy = "streaming";
  p.kv_budget = 1 << 20;
  p.max_batch = 4;
  LlamaContext c;
  if (!llama_context_init(&c, m, p, &err)) return 0;
  std::vector<int32_t> ids;
  tokenize(m.tok, "Hello, world! 123", m.tok.add_bos_token, true, &ids);
  for (int32_t& id : ids) id = id % hp.n_vocab;
  if (ids.empty()) ids.push_back(0);
  std::vector<float> logits(hp.n_vocab);
  if (!llama_prefill(c, ids.data(), (int)ids.size(), logits.data())) return 0;
  for (int t = 0; t < 3; ++t)
    if (!llama_decode(c, t % hp.n_vocab, logits.data())) return 0;
  return 0;
}
