// snapkv: the attention of the last snap_window queries, averaged over them and the group,
// box-filtered with width 5; the window itself gets the row maximum (AMS step 1 over its own
// window).
#include "ams/ams_select.h"
#include "ams/policy.h"
#include "ams/scorer.h"

namespace amskv {
namespace {

// Channel 0: the attention of the last snap_window queries (group summed), counter 0 how
// many queries it sums.
void needs(const Policy& p, const Geometry&, int, ScorerNeeds* out) {
  out->window = p.snap_window;
  out->channels = 1;
}

void score(const ScorerCtx& c, int h, int T, char* const*, float* out) {
  const int w = c.counts.count[0];
  window_scores(kv_f32(c.kv, c.ch[0], c.layer, h), T, w, (float)(w > 0 ? w : 1) * c.group, out);
}

}  // namespace

constexpr amskv_scorer_info kInfo = {
    "snapkv", "attention of the last snap_window queries, box-filtered", "attention", 0};
const Scorer kScorer_snapkv = {kInfo, needs, nullptr, nullptr, nullptr, score, nullptr};

}  // namespace amskv
