// ams: a session's policy at work. While a layer attends, the decode step hands the policy
// each new token (policy_store), each attention row while it is hot (policy_observe) and the
// end of each query step (policy_step). When the layer is full it runs policy_event, the
// event driver: window evidence, scores, selection (streaming, global top-k or AMS), region
// wipe-out, observers, then kv_compact, the one step that changes the cache.
#pragma once

#include <cstddef>
#include <cstdint>

#include "ams/policy.h"
#include "ams/scorer.h"
#include "kv/arena.h"
#include "kv/cache.h"

namespace amskv {

// One layer's counters in the block: the cache's cells and the policy's counts.
struct LayerState {
  KvLayer cells;
  PolicyLayer policy;
};
static_assert(sizeof(LayerState) == kLayerStateBytes, "kv/arena.h sizes LayerState");

// The policy's part of a session, set up once at creation (it lives in the session header,
// and its pointers point into the block).
struct PolicyState {
  Policy p;
  const Scorer* scorer;  // top-k and AMS; null for full and streaming
  int target;            // tokens per KV head after an event
  int group;             // query heads per KV head
  int ch_window;         // channel of the AMS evidence window; -1 for full
  int ch_credit;         // channel of the AMS credit; -1 without
  int ch_scorer[kScorerChannels];
  int scorer_window;  // ScorerNeeds::window of the scorer (0: none)
  int ch_surprisal;   // the channel amskv_set_surprisal writes; -1: the scorer reads none
  float* head_state;  // [n_layers][n_q_heads][head_floats]
  // The session's layer of each global-layer index (the policy runs on global layers only and
  // indexes them among themselves); null: the same numbers.
  const int32_t* global_layers;
  size_t head_floats;
  const ArenaLayout* layout;  // the thread slots' spans
  char* base;
  float rope_theta;
  bool neox;
  amskv_event_observer observer;
  void* observer_user;
  uint64_t events, tokens_evicted;
  uint64_t wipe_segments, wiped_segments;  // region wipe-out over all events (docs/ams.md)
};

// What the policy needs of the block (a NeedsFn for kv/arena.h; ctx: a PolicyNeedsCtx).
struct PolicyNeedsCtx {
  const Geometry* g;
  const Policy* p;
};
void policy_needs(const void* ctx, int capacity, ArenaNeeds* out);

// Sets up ps for the block `base` carved by `layout` (which must outlive ps).
void policy_init(PolicyState* ps, const Policy& p, const Geometry& g, const ArenaLayout& layout,
                 char* base, int target, float rope_theta, bool neox);

// A token was stored in `slot` of head h (layer l.cells.n_tokens not yet counted).
void policy_store(const PolicyState& ps, const KvCache& kv, int layer, LayerState& l, int h,
                  int slot);
// One query step's attention rows of head h (G rows of stride ld over n_keys held tokens,
// its own included); q: the group's un-rotated queries; pos: the query's position.
void policy_observe(const PolicyState& ps, const KvCache& kv, int layer, LayerState& l, int h,
                    int n_keys, const float* rows, int ld, const float* q, int32_t pos);
// After every head of the step was observed (serial).
void policy_step(const PolicyState& ps, const KvCache& kv, int layer, LayerState& l, int n_keys,
                 int32_t pos);
// The app's surprisal of the token at `pos` (ch_surprisal >= 0), in every KV head of the
// layer that holds it.
void policy_set_surprisal(const PolicyState& ps, const KvCache& kv, int layer, const LayerState& l,
                          int32_t pos, float nats);
// A compression event: every KV head of the full layer keeps ps.target tokens.
void policy_event(PolicyState& ps, const KvCache& kv, int layer, LayerState& l);

}  // namespace amskv
