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

void score(const ScorerCtx& c, int h, int T, char* const* scratch, float* out) {
  knorm_scores(load_keys(c, h, T, scratch), T, c.kv.g.head_dim, out);
}

}  // namespace

constexpr amskv_scorer_info kInfo = {"knorm", "minus the key's norm", "keys", 0};
const Scorer kScorer_knorm = {kInfo, needs_keys, nullptr, nullptr, nullptr, score, nullptr};

}  // namespace amskv
