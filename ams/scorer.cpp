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

int scorer_find(const char* name, size_t len) {
  for (int i = 0; i < kCount; ++i)
    if (std::strlen(kTable[i]->info.name) == len &&
        std::strncmp(name, kTable[i]->info.name, len) == 0)
      return i;
  return -1;
}

}  // namespace amskv
