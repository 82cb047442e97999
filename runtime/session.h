// runtime: the session object. It lives at the start of its own block; every pointer in it
// points into that block.
#pragma once

#include <cstdint>

#include "ams/policy.h"
#include "amskv/amskv.h"
#include "arch/kernels.h"
#include "kv/arena.h"
#include "runtime/error.h"

namespace amskv {
// What a policy's event scratch is sized from (runtime/event.cpp).
struct ScratchCtx {
  const Geometry* g;
  const Policy* p;
};
}  // namespace amskv

struct LayerState {
  int32_t n_tokens;      // tokens held per KV head
  int32_t last_pos;      // position of the newest token; -1 when empty
  int32_t steps;         // queries attended so far (H2O counts queries since a token came)
  int32_t ev_queries;    // queries in the evidence window since the last event
  int32_t base_queries;  // queries in the base scorer's window since the last event
  int32_t q_count;       // query steps in expected_attention's statistics
  uint64_t reserved;
};
static_assert(sizeof(LayerState) == 32, "kv/arena.cpp sizes LayerState as 32 bytes");

struct amskv_session {
  uint32_t magic;
  bool owns_block;
  amskv::Geometry geo;
  amskv::Policy policy;
  const amskv::Kernels* kern;
  amskv::ArenaLayout layout;
  amskv::ThreadScratch scratch;
  amskv::StateSpec state;
  amskv::ScratchCtx scratch_ctx;  // what state.event_bytes sizes from
  int group;                      // query heads per KV head
  int capacity;                   // tokens per KV head per layer
  int target;                     // tokens after an event
  float rope_theta;
  amskv_rope_style rope_style;
  size_t budget;
  uint64_t events, tokens_seen, tokens_evicted;
  uint64_t wipe_segments, wiped_segments;  // region wipe-out over all events (ams.md)
  amskv_event_observer observer;
  void* observer_user;
  char* base;
  LayerState* layers;
  char error[amskv::kErrorBytes];
};

namespace amskv {

constexpr uint32_t kSessionMagic = 0x616d736bu;  // "amsk"
constexpr int kMaxCapacity = 1 << 24;

// Rows of one (layer, KV head): `capacity` rows each.
inline size_t row0(const amskv_session* s, int layer, int h) {
  return head_index(s->geo, layer, h) * (size_t)s->capacity;
}
inline char* keys_at(amskv_session* s, int layer, int h) {
  return s->base + s->layout.keys + row0(s, layer, h) * s->geo.head_dim * dtype_bytes(s->geo.dtype);
}
inline char* values_at(amskv_session* s, int layer, int h) {
  return s->base + s->layout.values +
         row0(s, layer, h) * s->geo.head_dim * dtype_bytes(s->geo.dtype);
}
inline float* key_scales_at(amskv_session* s, int layer, int h) {
  return (float*)(s->base + s->layout.key_scales) + row0(s, layer, h);
}
inline float* value_scales_at(amskv_session* s, int layer, int h) {
  return (float*)(s->base + s->layout.value_scales) + row0(s, layer, h);
}
inline int32_t* positions_at(amskv_session* s, int layer, int h) {
  return (int32_t*)(s->base + s->layout.positions) + row0(s, layer, h);
}
// Per-token policy state of one (layer, KV head).
inline float* evidence_at(amskv_session* s, int layer, int h) {
  return (float*)(s->base + s->layout.evidence) + row0(s, layer, h);
}
inline float* base_evidence_at(amskv_session* s, int layer, int h) {
  return (float*)(s->base + s->layout.base_evidence) + row0(s, layer, h);
}
inline float* h2o_sum_at(amskv_session* s, int layer, int h) {
  return (float*)(s->base + s->layout.h2o_sum) + row0(s, layer, h);
}
inline int32_t* h2o_born_at(amskv_session* s, int layer, int h) {
  return (int32_t*)(s->base + s->layout.h2o_born) + row0(s, layer, h);
}
inline float* credit_at(amskv_session* s, int layer, int h) {
  return (float*)(s->base + s->layout.credit) + row0(s, layer, h);
}
// expected_attention's statistics of query head hq: [d] sums of q, then [d*d] (or [d]) of q q^T.
inline float* q_stats_at(amskv_session* s, int layer, int hq) {
  return (float*)(s->base + s->layout.q_stats) +
         ((size_t)layer * s->geo.n_q_heads + hq) * s->state.q_stat_floats;
}
inline char* thread_scratch(amskv_session* s, int thread) {
  return s->base + s->layout.thread_scratch + (size_t)thread * s->layout.thread_scratch_bytes;
}

// The policy's state and event scratch for a geometry (runtime/event.cpp).
StateSpec policy_state(const Geometry& g, const Policy& p);
// Folds one query step's attention rows of KV head h (scores: G rows of n_keys, stride ld)
// into the policy state; n_keys is the tokens held after storing the query's own token.
// q: the group's un-rotated queries [G][d]; pos: the query's position.
void observe_attention(amskv_session* s, int layer, int h, int n_keys, const float* scores, int ld,
                       const float* q, int32_t pos);
// Per layer, after a step's heads were observed (serial): counters of the windows.
void observe_step(amskv_session* s, int layer, int n_keys, int32_t pos);
// A compression event: every KV head of the layer keeps `target` tokens.
void compress_layer(amskv_session* s, int layer);

// Runs fn(item, thread) for item in [0, n): on the OpenMP pool when the session has more
// than one thread, else inline (no thread pool is ever touched).
template <typename Fn>
void parallel_for(const amskv_session* s, int n, Fn fn);

}  // namespace amskv

#ifdef _OPENMP
#include <omp.h>
#endif

template <typename Fn>
void amskv::parallel_for(const amskv_session* s, int n, Fn fn) {
#ifdef _OPENMP
  if (s->geo.n_threads > 1 && n > 1) {
#pragma omp parallel for num_threads(s->geo.n_threads) schedule(static)
    for (int i = 0; i < n; ++i) fn(i, omp_get_thread_num());
    return;
  }
#else
  (void)s;  // built without OpenMP: always inline
#endif
  for (int i = 0; i < n; ++i) fn(i, 0);
}
