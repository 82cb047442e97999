// Every function of the public header (amskv/amskv.h), in one place: argument checks that
// need no session internals, then a call into the module that does the work.
#include <cstring>

#include "ams/ams_select.h"
#include "ams/scorer.h"
#include "amskv/amskv.h"
#include "arch/error.h"
#include "arch/kernels.h"
#include "kv/dtype.h"
#include "runtime/session.h"

using namespace amskv;

namespace {

constexpr const char* kNoSession = "session is NULL or destroyed";

}  // namespace

extern "C" {

// ---- sessions -------------------------------------------------------------------------

amskv_config amskv_config_default(void) {
  amskv_config c;
  c.n_layers = 1;
  c.n_q_heads = 1;
  c.n_kv_heads = 1;
  c.head_dim = 64;
  c.kv_dtype = AMSKV_F16;
  c.rope_theta = 10000.f;
  c.rope_style = AMSKV_ROPE_NORMAL;
  c.policy = "streaming";
  c.n_threads = 1;
  c.interval = 0;
  c.layer_window = NULL;
  return c;
}

size_t amskv_session_bytes(const amskv_config* config, size_t budget) {
  amskv_status st;
  return session_bytes(config, budget, &st);
}

size_t amskv_budget_for_capacity(const amskv_config* config, int capacity) {
  return session_budget_for_capacity(config, capacity);
}

amskv_status amskv_session_create_in(const amskv_config* config, void* mem, size_t bytes,
                                     amskv_session** out) {
  return session_create_in(config, mem, bytes, out);
}

amskv_status amskv_session_create(const amskv_config* config, size_t budget, amskv_session** out) {
  return session_create(config, budget, out);
}

void amskv_session_destroy(amskv_session* s) {
  session_destroy(s);
}

amskv_status amskv_session_copy(amskv_session* dst, const amskv_session* src) {
  if (!session_valid(dst) || !session_valid(src)) {
    set_thread_error("%s", kNoSession);
    return AMSKV_E_NULL;
  }
  return session_copy(dst, src);
}

amskv_status amskv_attend(amskv_session* s, int layer, int32_t pos, const float* q, const float* k,
                          const float* v, float* out) {
  if (!session_valid(s)) {
    set_thread_error("%s", kNoSession);
    return AMSKV_E_NULL;
  }
  return session_attend(s, layer, pos, q, k, v, out);
}

amskv_status amskv_prefill(amskv_session* s, int layer, int32_t pos0, int n_tokens, const float* q,
                           const float* k, const float* v, float* out) {
  if (!session_valid(s)) {
    set_thread_error("%s", kNoSession);
    return AMSKV_E_NULL;
  }
  return session_prefill(s, layer, pos0, n_tokens, q, k, v, out);
}

amskv_status amskv_get_stats(const amskv_session* s, amskv_stats* out) {
  if (!session_valid(s) || !out) {
    set_thread_error("%s", session_valid(s) ? "stats output is NULL" : kNoSession);
    return AMSKV_E_NULL;
  }
  *out = session_stats(s);
  return AMSKV_OK;
}

amskv_status amskv_set_event_observer(amskv_session* s, amskv_event_observer fn, void* user) {
  if (!session_valid(s)) {
    set_thread_error("%s", kNoSession);
    return AMSKV_E_NULL;
  }
  s->policy.observer = fn;
  s->policy.observer_user = user;
  return AMSKV_OK;
}

amskv_status amskv_set_surprisal(amskv_session* s, int32_t pos, float nats) {
  if (!session_valid(s)) {
    set_thread_error("%s", kNoSession);
    return AMSKV_E_NULL;
  }
  if (!(nats >= 0.f && nats <= AMSKV_MAX_ABS)) {
    format_error(s->error, "surprisal must be in [0, %g] nats, got %g", (double)AMSKV_MAX_ABS,
                 (double)nats);
    return AMSKV_E_INVALID;
  }
  if (s->policy.ch_surprisal < 0) return AMSKV_OK;
  for (int l = 0; l < s->geo.n_layers; ++l)
    if (!s->layer_window[l])
      policy_set_surprisal(s->policy, s->kv, s->layer_index[l], s->layers[l], pos, nats);
  return AMSKV_OK;
}

int amskv_uses_surprisal(const amskv_session* s) {
  return session_valid(s) && s->policy.ch_surprisal >= 0;
}

int amskv_layer_tokens(const amskv_session* s, int layer) {
  if (!session_valid(s) || layer < 0 || layer >= s->geo.n_layers) return -1;
  return s->layers[layer].cells.n_tokens;
}

int amskv_layer_positions(const amskv_session* s, int layer, int kv_head, int32_t* out, int max) {
  if (!session_valid(s) || layer < 0 || layer >= s->geo.n_layers || kv_head < 0 ||
      kv_head >= s->geo.n_kv_heads || (!out && max > 0) || max < 0)
    return -1;
  const int n = s->layers[layer].cells.n_tokens;
  const KvCache& kv = s->layer_window[layer] ? s->ring : s->kv;
  const int32_t* pos = kv_positions(kv, s->layer_index[layer], kv_head);
  for (int i = 0; i < n && i < max; ++i) out[i] = pos[i];
  return n;
}

// ---- errors ---------------------------------------------------------------------------

const char* amskv_status_string(amskv_status status) {
  return status_string(status);
}

const char* amskv_last_error(const amskv_session* s) {
  return session_valid(s) ? s->error : thread_error();
}

// ---- kernels --------------------------------------------------------------------------

amskv_status amskv_set_isa(const char* name) {
  return set_active_isa(name) ? AMSKV_OK : AMSKV_E_UNSUPPORTED;
}

const char* amskv_active_isa(void) {
  const Kernels* k = active_kernels();
  return k ? k->name : "none";
}

int amskv_isa_available(const char* name) {
  Isa isa;
  return name && isa_from_name(name, &isa) && isa_supported(isa);
}

// ---- what this build offers -----------------------------------------------------------

int amskv_scorer_count(void) {
  return scorer_count();
}

const amskv_scorer_info* amskv_scorer_at(int i) {
  return i >= 0 && i < scorer_count() ? &scorer_at(i).info : nullptr;
}

int amskv_dtype_count(void) {
  return kv_dtype_count();
}

const char* amskv_dtype_name(amskv_dtype dtype) {
  int d;
  std::memcpy(&d, &dtype, sizeof d);  // any int a C caller stored
  const KvDtype* kvd = kv_dtype(d);
  return kvd ? kvd->name : nullptr;
}

amskv_status amskv_dtype_from_name(const char* name, amskv_dtype* out) {
  if (!name || !out) {
    set_thread_error("%s is NULL", name ? "out" : "name");
    return AMSKV_E_NULL;
  }
  for (int d = 0; d < kv_dtype_count(); ++d)
    if (std::strcmp(name, kv_dtype(d)->name) == 0) {
      *out = (amskv_dtype)d;
      return AMSKV_OK;
    }
  set_thread_error("unknown KV dtype '%s'", name);
  return AMSKV_E_INVALID;
}

// ---- AMS selection alone ----------------------------------------------------------------

amskv_ams_params amskv_ams_params_default(void) {
  return ams_params_default();
}

size_t amskv_ams_workspace_bytes(int n_tokens) {
  return ams_workspace_bytes(n_tokens);
}

amskv_status amskv_ams_select_ws(const amskv_ams_params* p, const float* window_scores,
                                 const float* select_scores, float* credit, int n_tokens,
                                 int n_keep, int32_t* kept, void* workspace,
                                 size_t workspace_bytes) {
  if (!p) {
    set_thread_error("amskv_ams_select_ws: null params");
    return AMSKV_E_NULL;
  }
  return ams_select(*p, window_scores, select_scores, credit, n_tokens, n_keep, kept, workspace,
                    workspace_bytes, nullptr);
}

amskv_status amskv_ams_select(const amskv_ams_params* p, const float* window_scores,
                              const float* select_scores, float* credit, int n_tokens, int n_keep,
                              int32_t* kept) {
  if (!p) {
    set_thread_error("amskv_ams_select: null params");
    return AMSKV_E_NULL;
  }
  if (n_tokens > AMSKV_AMS_STACK_TOKENS) {
    set_thread_error(
        "amskv_ams_select: n_tokens %d > AMSKV_AMS_STACK_TOKENS (%d); use "
        "amskv_ams_select_ws",
        n_tokens, AMSKV_AMS_STACK_TOKENS);
    return AMSKV_E_WORKSPACE;
  }
  // About 84 KiB: fine on any thread stack that runs a decoder.
  alignas(64) unsigned char scratch[ams_workspace_bytes(AMSKV_AMS_STACK_TOKENS)];
  return amskv_ams_select_ws(p, window_scores, select_scores, credit, n_tokens, n_keep, kept,
                             scratch, sizeof(scratch));
}

}  // extern "C"
