// random: a seeded uniform draw per token, the same on every platform: the floor every
// other scorer must beat.
#include "ams/policy.h"
#include "ams/score.h"
#include "ams/scorer.h"

namespace amskv {

namespace {

uint64_t splitmix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

}  // namespace

void random_scores(uint64_t seed, uint64_t event, int layer, int head, int T, float* out) {
  const uint64_t base = splitmix64(
      seed ^ splitmix64(event ^ splitmix64(((uint64_t)(uint32_t)layer << 32) | (uint32_t)head)));
  for (int j = 0; j < T; ++j) out[j] = (float)(splitmix64(base + (uint64_t)j) >> 40) / 16777216.f;
}

namespace {

void score(const ScorerCtx& c, int h, int T, char* const*, float* out) {
  random_scores(c.p.seed, c.events, c.layer, h, T, out);
}

}  // namespace

constexpr amskv_scorer_info kInfo = {"random", "a seeded uniform draw: the floor", "none", 1};
const Scorer kScorer_random = {kInfo, nullptr, nullptr, nullptr, nullptr, score, nullptr};

}  // namespace amskv
