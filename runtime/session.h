// runtime: the session object. It lives at the start of its own block; every pointer in it
// points into that block.
#pragma once

#include <cstdint>

#include "amskv/amskv.h"
#include "ams/policy.h"
#include "arch/kernels.h"
#include "kv/arena.h"
#include "runtime/error.h"

struct LayerState {
  int32_t n_tokens;  // tokens held per KV head
  int32_t last_pos;  // position of the newest token; -1 when empty
  uint64_t reserved;
};
static_assert(sizeof(LayerState) == 16, "kv/arena.cpp sizes LayerState as 16 bytes");

struct amskv_session {
  uint32_t magic;
  bool owns_block;
  amskv::Geometry geo;
  amskv::Policy policy;
  const amskv::Kernels* kern;
  amskv::ArenaLayout layout;
  amskv::ThreadScratch scratch;
  int group;     // query heads per KV head
  int capacity;  // tokens per KV head per layer
  int target;    // tokens after an event
  float rope_theta;
  amskv_rope_style rope_style;
  size_t budget;
  uint64_t events, tokens_seen, tokens_evicted;
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
inline char* thread_scratch(amskv_session* s, int thread) {
  return s->base + s->layout.thread_scratch + (size_t)thread * s->layout.thread_scratch_bytes;
}

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
#endif
  for (int i = 0; i < n; ++i) fn(i, 0);
}
