// runtime: the session object. It lives at the start of its own block (kv/arena.h); every
// pointer in it points into that block. The C API (runtime/api.cpp) is a thin layer over
// the functions below.
#pragma once

#include <cstdint>

#include "ams/event.h"
#include "amskv/amskv.h"
#include "arch/error.h"
#include "arch/kernels.h"
#include "kv/arena.h"
#include "kv/cache.h"

struct amskv_session {
  uint32_t magic;
  bool owns_block;
  amskv::Geometry geo;
  const amskv::Kernels* kern;
  amskv::ArenaLayout layout;
  amskv::KvCache kv;            // the global layers' storage (kv/cache.h)
  amskv::KvCache ring;          // the local (sliding-window) layers' rings
  const int32_t* layer_index;   // [n_layers] index among the layers of its kind
  const int32_t* layer_window;  // [n_layers] 0: global; else the local layer's window
  amskv::PolicyState policy;    // the eviction policy (ams/event.h)
  amskv::LayerState* layers;    // [n_layers]
  float rope_theta;
  amskv_rope_style rope_style;
  size_t budget;
  uint64_t tokens_seen;
  char* base;
  char error[amskv::kErrorBytes];
};

namespace amskv {

constexpr uint32_t kSessionMagic = 0x616d736bu;  // "amsk"
constexpr int kMaxCapacity = 1 << 24;

inline bool session_valid(const amskv_session* s) {
  return s && s->magic == kSessionMagic;
}

// runtime/session.cpp: sizing, creation, stats.
size_t session_bytes(const amskv_config* config, size_t budget, amskv_status* status);
size_t session_budget_for_capacity(const amskv_config* config, int capacity);
amskv_status session_create_in(const amskv_config* config, void* mem, size_t bytes,
                               amskv_session** out);
amskv_status session_create(const amskv_config* config, size_t budget, amskv_session** out);
void session_destroy(amskv_session* s);
amskv_status session_copy(amskv_session* dst, const amskv_session* src);
amskv_stats session_stats(const amskv_session* s);

// runtime/attend.cpp: the decode step and prefill (arguments checked there).
amskv_status session_attend(amskv_session* s, int layer, int32_t pos, const float* q,
                            const float* k, const float* v, float* out);
amskv_status session_prefill(amskv_session* s, int layer, int32_t pos0, int n_tokens,
                             const float* q, const float* k, const float* v, float* out);

}  // namespace amskv
