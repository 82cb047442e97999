// keydiff: keys unlike the mean (L2-normalised) key of the head are kept: -cos(k_j, a).
#include <cmath>

#include "ams/policy.h"
#include "ams/score.h"
#include "ams/scorer.h"

namespace amskv {

void keydiff_scores(const float* keys, int T, int d, float* out) {
  // a = mean of the normalised keys; out = -cos(k_j, a). Sums in double: T can be large.
  double a[256] = {0};
  for (int j = 0; j < T; ++j) {
    const float* k = keys + (size_t)j * d;
    double n2 = 0;
    for (int c = 0; c < d; ++c) n2 += (double)k[c] * k[c];
    const double inv = n2 > 0 ? 1.0 / std::sqrt(n2) : 0.0;
    for (int c = 0; c < d; ++c) a[c] += k[c] * inv;
  }
  double an = 0;
  for (int c = 0; c < d; ++c) an += a[c] * a[c];
  an = std::sqrt(an);
  for (int j = 0; j < T; ++j) {
    const float* k = keys + (size_t)j * d;
    double dot = 0, n2 = 0;
    for (int c = 0; c < d; ++c) dot += k[c] * a[c], n2 += (double)k[c] * k[c];
    const double den = std::sqrt(n2) * an;
    out[j] = den > 0 ? (float)(-dot / den) : 0.f;
  }
}

namespace {

void score(const ScorerCtx& c, int h, int T, char* const* scratch, float* out) {
  keydiff_scores(load_keys(c, h, T, scratch), T, c.kv.g.head_dim, out);
}

}  // namespace

constexpr amskv_scorer_info kInfo = {"keydiff", "how unlike the mean key the key is (-cos)", "keys",
                                     0};
const Scorer kScorer_keydiff = {kInfo, needs_keys, nullptr, nullptr, nullptr, score, nullptr};

}  // namespace amskv
