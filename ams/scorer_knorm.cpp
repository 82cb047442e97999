// knorm: low-norm keys attract attention, so the score is minus the key's norm.
#include <cmath>

#include "ams/policy.h"
#include "ams/score.h"
#include "ams/scorer.h"

namespace amskv {

void knorm_scores(const float* keys, int T, int d, float* out) {
  for (int j = 0; j < T; ++j) {
    const float* k = keys + (size_t)j * d;
    double n2 = 0;
    for (int c = 0; c < d; ++c) n2 += (double)k[c] * k[c];
    out[j] = (float)-std::sqrt(n2);
  }
}

namespace {

// Scratch 0: the head's keys as f32 [capacity][head_dim].
void needs(const Policy&, const Geometry& g, int capacity, ScorerNeeds* out) {
  out->scratch[0] = (size_t)capacity * g.head_dim * 4;
}

void score(const ScorerCtx& c, int h, int T, char* const* scratch, float* out) {
  float* keys = (float*)scratch[0];
  kv_load_keys(c.kv, c.layer, h, 0, T, keys);
  knorm_scores(keys, T, c.kv.g.head_dim, out);
}

}  // namespace

const Scorer kScorer_knorm = {
    {"knorm", "minus the key's norm", "keys", 0}, needs, nullptr, nullptr, nullptr, score, nullptr};

}  // namespace amskv
