// h2o (heavy hitters): the attention a token has received from every query since it
// arrived, divided by the number of queries that could see it; group mean.
#include "ams/policy.h"
#include "ams/score.h"
#include "ams/scorer.h"

namespace amskv {

void h2o_scores(const float* attn_sum, const int32_t* n_queries, int T, int G, float* out) {
  for (int j = 0; j < T; ++j)
    out[j] = attn_sum[j] / ((float)G * (float)(n_queries[j] > 0 ? n_queries[j] : 1));
}

namespace {

// Channel 0: attention received so far (float), channel 1: the layer step at which the token
// arrived (int32); both travel with their tokens. Scratch 0: queries each token has seen.
void needs(const Policy&, const Geometry&, int capacity, ScorerNeeds* out) {
  out->channels = 2;
  out->moves[0] = out->moves[1] = true;
  out->scratch[0] = (size_t)capacity * 4;
}

void store(const ScorerCtx& c, int h, int slot) {
  // Its own query is the first to see it: slot - n_tokens steps after the current one.
  kv_f32(c.kv, c.ch[0], c.layer, h)[slot] = 0.f;
  kv_i32(c.kv, c.ch[1], c.layer, h)[slot] = c.counts.steps + (slot - c.cells.n_tokens);
}

void observe(const ScorerCtx& c, int h, int n_keys, const float* rows, int ld, const float*,
             int32_t) {
  add_rows(rows, c.group, ld, n_keys, kv_f32(c.kv, c.ch[0], c.layer, h));
}

void score(const ScorerCtx& c, int h, int T, char* const* scratch, float* out) {
  int32_t* seen = (int32_t*)scratch[0];
  const int32_t* born = kv_i32(c.kv, c.ch[1], c.layer, h);
  for (int j = 0; j < T; ++j) seen[j] = c.counts.steps - born[j];
  h2o_scores(kv_f32(c.kv, c.ch[0], c.layer, h), seen, T, c.group, out);
}

}  // namespace

constexpr amskv_scorer_info kInfo = {
    "h2o", "attention received since arrival, per query that could see it", "attention", 0};
const Scorer kScorer_h2o = {kInfo, needs, store, observe, nullptr, score, nullptr};

}  // namespace amskv
