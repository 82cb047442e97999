// tova: the attention of the latest query, averaged over every query head of the layer (so
// each KV head gets the same row); the newest token gets the row maximum.
#include <cstring>

#include "ams/policy.h"
#include "ams/score.h"
#include "ams/scorer.h"

namespace amskv {

void tova_scores(const float* latest_sum, int T, float divisor, float* out) {
  const float inv = divisor > 0.f ? 1.f / divisor : 0.f;
  float mx = 0.f;
  for (int j = 0; j < T; ++j) {
    out[j] = latest_sum[j] * inv;
    mx = out[j] > mx ? out[j] : mx;
  }
  out[T - 1] = mx;
}

namespace {

// A window of one query: channel 0 holds the latest query's attention (group summed),
// counter 0 how many queries it sums.
void needs(const Policy&, const Geometry&, int, ScorerNeeds* out) {
  out->window = 1;
  out->channels = 1;
}

void score(const ScorerCtx& c, int, int T, char* const*, float* out) {
  std::memset(out, 0, (size_t)T * 4);
  for (int k = 0; k < c.kv.g.n_kv_heads; ++k) {
    const float* b = kv_f32(c.kv, c.ch[0], c.layer, k);
    for (int j = 0; j < T; ++j) out[j] += b[j];
  }
  const int rows = c.counts.count[0] > 0 ? c.counts.count[0] : 1;
  tova_scores(out, T, (float)c.kv.g.n_q_heads * rows, out);
}

}  // namespace

constexpr amskv_scorer_info kInfo = {
    "tova", "attention of the latest query, mean over the layer's query heads", "attention", 0};
const Scorer kScorer_tova = {kInfo, needs, nullptr, nullptr, nullptr, score, nullptr};

}  // namespace amskv
