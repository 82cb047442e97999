// Next-token sampling in llama.cpp's order: a repetition penalty on the last tokens seen,
// then top-k, top-p and min-p on the probabilities at temperature 1, then the temperature on
// what is left, and a draw (or greedy: the argmax after the penalty). Seeded with its own
// small PRNG so a seed gives the same draws everywhere; scratch is sized once, nothing is
// allocated per token.
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
  float min_p = 0.f;           // then those at least min_p times as likely as the best
  float repeat_penalty = 1.f;  // > 1: logits of the last repeat_last_n tokens seen are
  int repeat_last_n = 64;      // divided by it (multiplied when negative); 1 = off
};

struct Sampler {
  SamplerParams p;
  int n_vocab = 0;
  uint64_t state = 0;           // xorshift64* state, never 0
  std::vector<int32_t> idx;     // [n_vocab] candidate ids
  std::vector<float> prob;      // [n_vocab] probabilities by id
  std::vector<float> work;      // [n_vocab] the logits after the penalty
  std::vector<int32_t> recent;  // the last repeat_last_n tokens seen, a ring
  int n_recent = 0, recent_at = 0;
};

// false + err for n_vocab < 1, temperature, top_p, min_p or repeat_penalty not finite or
// out of range, top_k < 0, repeat_last_n outside 0..4096.
bool sampler_init(Sampler* s, int n_vocab, const SamplerParams& p, std::string* err);

// A token seen (prompt or generated): what the repetition penalty looks back on.
void sampler_accept(Sampler& s, int32_t token);

// The next token for logits [n_vocab].
int32_t sampler_sample(Sampler& s, const float* logits);

// The next uniform draw in [0, 1), 24 bits (what sampling consumes, one per sampled token).
float sampler_uniform(Sampler& s);

}  // namespace amskv
