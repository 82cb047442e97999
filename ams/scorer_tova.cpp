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

// Channel 0: the latest query's attention rows, summed over the group, in the step before
// an event (window evidence: cleared at the event). Counter 0: queries in that window.
void needs(const Policy&, const Geometry&, int, ScorerNeeds* out) {
  out->channels = 1;
}

void observe(const ScorerCtx& c, int h, int n_keys, const float* rows, int ld, const float*,
             int32_t) {
  if (in_window(c.kv, n_keys, 1))
    add_rows(rows, c.group, ld, n_keys, kv_f32(c.kv, c.ch[0], c.layer, h));
}

void step(const ScorerCtx& c, int n_keys, int32_t) {
  if (in_window(c.kv, n_keys, 1)) c.counts.count[0]++;
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

void reset(const ScorerCtx& c, int) {
  for (int h = 0; h < c.kv.g.n_kv_heads; ++h)
    std::memset(kv_f32(c.kv, c.ch[0], c.layer, h), 0, (size_t)c.kv.capacity * 4);
  c.counts.count[0] = 0;
}

}  // namespace

const Scorer kScorer_tova = {
    {"tova", "attention of the latest query, mean over the layer's query heads", "attention", 0},
    needs,
    nullptr,
    observe,
    step,
    score,
    reset};

}  // namespace amskv
