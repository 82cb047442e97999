// surprisal: the tokens the model could not predict, and their neighbours. The app (the
// runner) gives each token's surprisal, -log p(token | the tokens before it) in nats, with
// amskv_set_surprisal; a held token scores the largest surprisal among the held tokens
// within `radius` positions of it, so a surprising token keeps the words around it (a
// fact's key and its value, a name and what is said of it). Selective Context's idea
// (Li et al., 2023) at the cache level: what the model can predict it can do without.
#include "ams/policy.h"
#include "ams/score.h"
#include "ams/scorer.h"

namespace amskv {

void surprisal_scores(const float* nats, const int32_t* pos, int T, int radius, float* out) {
  for (int j = 0, lo = 0; j < T; ++j) {
    while (pos[j] - pos[lo] > radius) ++lo;
    float mx = nats[lo];
    for (int i = lo + 1; i < T && pos[i] - pos[j] <= radius; ++i) mx = nats[i] > mx ? nats[i] : mx;
    out[j] = mx;
  }
}

namespace {

// Channel 0: the token's surprisal (0 until the app sets it), travelling with the token.
void needs(const Policy&, const Geometry&, int, ScorerNeeds* out) {
  out->channels = 1;
  out->moves[0] = true;
  out->surprisal = true;
}

void store(const ScorerCtx& c, int h, int slot) {
  kv_f32(c.kv, c.ch[0], c.layer, h)[slot] = 0.f;
}

void score(const ScorerCtx& c, int h, int T, char* const*, float* out) {
  surprisal_scores(kv_f32(c.kv, c.ch[0], c.layer, h), kv_positions(c.kv, c.layer, h), T, c.p.radius,
                   out);
}

}  // namespace

constexpr amskv_scorer_info kInfo = {
    "surprisal", "the largest surprisal (given by the app) within `radius` positions", "surprisal",
    0};
const Scorer kScorer_surprisal = {kInfo, needs, store, nullptr, nullptr, score, nullptr};

}  // namespace amskv
