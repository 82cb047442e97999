// Next-token sampling: greedy, temperature, top-k, top-p. Seeded with its own small PRNG so
// a seed gives the same draws everywhere; scratch is sized once, nothing is allocated per
// token.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace amskv {

struct SamplerParams {
  float temperature = 0.f;  // <= 0: greedy (argmax)
  int top_k = 0;            // keep the k most likely tokens; 0 = all; 1 = greedy
  float top_p = 1.f;        // then the smallest set whose probability reaches top_p
  uint64_t seed = 1;
};

struct Sampler {
  SamplerParams p;
  int n_vocab = 0;
  uint64_t state = 0;        // xorshift64* state, never 0
  std::vector<int32_t> idx;  // [n_vocab] candidate ids
  std::vector<float> prob;   // [n_vocab] probabilities by id
};

// false + err for n_vocab < 1, temperature/top_p not finite or out of range, top_k < 0.
bool sampler_init(Sampler* s, int n_vocab, const SamplerParams& p, std::string* err);

// The next token for logits [n_vocab].
int32_t sampler_sample(Sampler& s, const float* logits);

// The next uniform draw in [0, 1), 24 bits (what sampling consumes, one per sampled token).
float sampler_uniform(Sampler& s);

}  // namespace amskv
