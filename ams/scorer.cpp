#include "ams/scorer.h"

#include <cstring>

namespace amskv {

namespace {

#define AMSKV_ENTRY(name) &kScorer_##name,
const Scorer* const kTable[] = {AMSKV_SCORERS(AMSKV_ENTRY)};
#undef AMSKV_ENTRY
constexpr int kCount = (int)(sizeof kTable / sizeof *kTable);

}  // namespace

int scorer_count() {
  return kCount;
}

const Scorer& scorer_at(int i) {
  return *kTable[i];
}

void needs_keys(const Policy&, const Geometry& g, int capacity, ScorerNeeds* out) {
  out->scratch[0] = (size_t)capacity * g.head_dim * 4;
}

const float* load_keys(const ScorerCtx& c, int h, int n, char* const* scratch) {
  float* keys = (float*)scratch[0];
  kv_load_keys(c.kv, c.layer, h, 0, n, keys);
  return keys;
}

int scorer_find(const char* name, size_t len) {
  for (int i = 0; i < kCount; ++i)
    if (std::strlen(kTable[i]->info.name) == len &&
        std::strncmp(name, kTable[i]->info.name, len) == 0)
      return i;
  return -1;
}

}  // namespace amskv
