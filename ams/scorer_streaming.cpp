// streaming (StreamingLLM) as a scorer: the first n_sink tokens, then recency. As a policy
// name "streaming" is the streaming policy itself; "ams:streaming" uses this scorer.
#include "ams/policy.h"
#include "ams/score.h"
#include "ams/scorer.h"

namespace amskv {

void streaming_scores(int T, int n_sink, float* out) {
  for (int j = 0; j < T; ++j) out[j] = j < n_sink ? 1e30f : (float)j;
}

namespace {

void score(const ScorerCtx& c, int, int T, char* const*, float* out) {
  streaming_scores(T, c.p.n_sink, out);
}

}  // namespace

constexpr amskv_scorer_info kInfo = {"streaming", "the first n_sink tokens, then recency", "none",
                                     1};
const Scorer kScorer_streaming = {kInfo, nullptr, nullptr, nullptr, nullptr, score, nullptr};

}  // namespace amskv
