// ams: the scorer interface and the scorer table. A scorer turns what the decode step saw
// into one score per held token of one KV head (higher means keep); global top-k and AMS
// (ams/event.cpp) select with any of them.
//
// Adding a scorer: write ams/scorer_<name>.cpp defining `const Scorer kScorer_<name>` and add
// X(<name>) to AMSKV_SCORERS below. Its entry says what it needs of the block (`needs`:
// per-token channels, per-head state, event scratch, and an attention window the driver
// gathers for it), what else it records while a layer attends (`store`, `observe`, `step`),
// how it scores at an event (`score`) and what it clears after the event compacted the layer
// (`reset`). Every hook but `score` may be null. docs/scorers.md describes each scorer.
#pragma once

#include <cstddef>
#include <cstdint>

#include "amskv/amskv.h"
#include "arch/kernels.h"
#include "kv/cache.h"

namespace amskv {

struct Policy;

// The table, in the order users see it. The first is the reference scorer (the default of
// the tools); baselines come last.
#define AMSKV_SCORERS(X) \
  X(tova)                \
  X(h2o)                 \
  X(snapkv)              \
  X(expected_attention)  \
  X(keydiff)             \
  X(knorm)               \
  X(surprisal)           \
  X(random)              \
  X(streaming)           \
  /* one line per scorer, above this one */

constexpr int kScorerChannels = 2;  // per-token channels a scorer may keep
constexpr int kScorerScratch = 3;   // per-thread event scratch spans it may ask for
constexpr int kScorerCounters = 4;  // per-layer int32 counters it may keep

// What a scorer needs of the block, for one policy, geometry and capacity.
struct ScorerNeeds {
  // > 0: the scorer reads the attention of the last `window` queries before an event. The
  // driver sums their rows (group summed) into channel 0 and counts them in counter 0, and
  // clears both after the event; the scorer only scores.
  int window;
  int channels;                    // per-token 4-byte values per (layer, KV head) slot
  bool moves[kScorerChannels];     // true: travels with its token at compaction
  size_t head_floats;              // floats per (layer, query head)
  size_t scratch[kScorerScratch];  // bytes of each per-thread event scratch span
  bool surprisal;                  // channel 0 holds the surprisal amskv_set_surprisal gives
};

// The policy's per-layer counters (part of the session's 32-byte LayerState).
struct PolicyLayer {
  int32_t steps;                   // queries the layer has attended
  int32_t window_queries;          // queries in the AMS evidence window since the last event
  int32_t count[kScorerCounters];  // the scorer's own
};

// One layer of a session, as a scorer sees it.
struct ScorerCtx {
  const Policy& p;
  const KvCache& kv;  // storage views and the channels
  int layer;
  int group;             // query heads per KV head
  const int* ch;         // the scorer's channels as channel numbers of kv
  float* head_state;     // this layer's [n_q_heads][head_floats]
  const KvLayer& cells;  // tokens held, newest position
  PolicyLayer& counts;   // steps and the scorer's counters
  float rope_theta;
  bool neox;
  uint64_t events;  // events of the whole session so far
};

struct Scorer {
  amskv_scorer_info info;  // name, summary, evidence, baseline
  void (*needs)(const Policy& p, const Geometry& g, int capacity, ScorerNeeds* out);
  // A token arrives in `slot` of head h (before its query attends).
  void (*store)(const ScorerCtx& c, int h, int slot);
  // The attention of one query step over the n_keys held tokens of head h: G rows of stride
  // ld; q is the group's un-rotated queries [G][head_dim], pos the query's position.
  void (*observe)(const ScorerCtx& c, int h, int n_keys, const float* rows, int ld, const float* q,
                  int32_t pos);
  // After every head of a query step was observed (serial).
  void (*step)(const ScorerCtx& c, int n_keys, int32_t pos);
  // Scores of the n held tokens of head h into out [n]; scratch: the spans it asked for.
  void (*score)(const ScorerCtx& c, int h, int n, char* const* scratch, float* out);
  // After the event compacted the layer to `keep` tokens per head.
  void (*reset)(const ScorerCtx& c, int keep);
};

#define AMSKV_DECLARE(name) extern const Scorer kScorer_##name;
AMSKV_SCORERS(AMSKV_DECLARE)
#undef AMSKV_DECLARE

int scorer_count();
const Scorer& scorer_at(int i);
// Index of the scorer named [name, name + len), or -1.
int scorer_find(const char* name, size_t len);

// Whether a query that sees n_keys held tokens (its own included) is among the last w
// queries before the event that fires when the layer holds `capacity` tokens.
inline bool in_window(const KvCache& kv, int n_keys, int w) {
  return n_keys > kv.capacity - w;
}

// Helpers for scorers that read the keys: needs_keys asks for scratch span 0 to hold one
// head's keys as f32, load_keys fills it with the n held keys of head h and returns it.
void needs_keys(const Policy& p, const Geometry& g, int capacity, ScorerNeeds* out);
const float* load_keys(const ScorerCtx& c, int h, int n, char* const* scratch);

// acc[j] += sum over the G rows (stride ld) of row[j], j < n.
inline void add_rows(const float* rows, int G, int ld, int n, float* acc) {
  for (int g = 0; g < G; ++g) {
    const float* r = rows + (size_t)g * ld;
    for (int j = 0; j < n; ++j) acc[j] += r[j];
  }
}

}  // namespace amskv
