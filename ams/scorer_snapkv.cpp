// snapkv: the attention of the last snap_window queries, averaged over them and the group,
// box-filtered with width 5; the window itself gets the row maximum (AMS step 1 over its own
// window).
#include <cstring>

#include "ams/ams_select.h"
#include "ams/policy.h"
#include "ams/scorer.h"

namespace amskv {
namespace {

// Channel 0: attention rows of the window queries, summed over the group (cleared at the
// event). Counter 0: queries in the window.
void needs(const Policy&, const Geometry&, int, ScorerNeeds* out) {
  out->channels = 1;
}

void observe(const ScorerCtx& c, int h, int n_keys, const float* rows, int ld, const float*,
             int32_t) {
  if (in_window(c.kv, n_keys, c.p.snap_window))
    add_rows(rows, c.group, ld, n_keys, kv_f32(c.kv, c.ch[0], c.layer, h));
}

void step(const ScorerCtx& c, int n_keys, int32_t) {
  if (in_window(c.kv, n_keys, c.p.snap_window)) c.counts.count[0]++;
}

void score(const ScorerCtx& c, int h, int T, char* const*, float* out) {
  const int w = c.counts.count[0];
  window_scores(kv_f32(c.kv, c.ch[0], c.layer, h), T, w, (float)(w > 0 ? w : 1) * c.group, out);
}

void reset(const ScorerCtx& c, int) {
  for (int h = 0; h < c.kv.g.n_kv_heads; ++h)
    std::memset(kv_f32(c.kv, c.ch[0], c.layer, h), 0, (size_t)c.kv.capacity * 4);
  c.counts.count[0] = 0;
}

}  // namespace

const Scorer kScorer_snapkv = {
    {"snapkv", "attention of the last snap_window queries, box-filtered", "attention", 0},
    needs,
    nullptr,
    observe,
    step,
    score,
    reset};

}  // namespace amskv
