// Session lifetime, sizing and stats: the block is planned (kv/arena.h), carved, and the
// cache (kv/cache.h) and the policy (ams/event.h) are set up over it.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <new>

#include "arch/parallel.h"
#include "arch/rope.h"
#include "runtime/session.h"

namespace amskv {
namespace {

constexpr size_t kHeaderBytes = sizeof(amskv_session);

// A C caller may store any int in an enum field; reading it as the enum type would be
// undefined for values outside the enumerators, so read the int.
template <typename E>
int enum_int(const E& e) {
  static_assert(sizeof(E) == sizeof(int), "C enums are int-sized here");
  int v;
  std::memcpy(&v, &e, sizeof v);
  return v;
}

// Checks the config and parses its policy; on failure sets the thread error.
bool check_config(const amskv_config* c, Geometry* geo, Policy* policy, amskv_status* status) {
  *status = AMSKV_E_INVALID;
  if (!c) {
    *status = AMSKV_E_NULL;
    set_thread_error("config is NULL");
    return false;
  }
  if (c->n_layers < 1 || c->n_layers > 4096) {
    set_thread_error("n_layers must be in [1, 4096], got %d", c->n_layers);
    return false;
  }
  if (c->n_kv_heads < 1 || c->n_kv_heads > 1024 || c->n_q_heads < 1 || c->n_q_heads > 4096) {
    set_thread_error("n_kv_heads must be in [1, 1024] and n_q_heads in [1, 4096], got %d and %d",
                     c->n_kv_heads, c->n_q_heads);
    return false;
  }
  if (c->n_q_heads % c->n_kv_heads != 0) {
    set_thread_error("n_q_heads (%d) must be a multiple of n_kv_heads (%d)", c->n_q_heads,
                     c->n_kv_heads);
    return false;
  }
  if (c->head_dim < 32 || c->head_dim > 256 || c->head_dim % 8 != 0) {
    *status = AMSKV_E_UNSUPPORTED;
    set_thread_error("head_dim %d is not supported: use a multiple of 8 in [32, 256]", c->head_dim);
    return false;
  }
  const int dtype = enum_int(c->kv_dtype), rope = enum_int(c->rope_style);
  const KvDtype* kvd = kv_dtype(dtype);
  if (!kvd) {
    set_thread_error(
        "kv_dtype %d is not one of AMSKV_F32, AMSKV_F16, AMSKV_Q8, AMSKV_Q4, "
        "AMSKV_K8V4, AMSKV_Q4H",
        dtype);
    return false;
  }
  const int block = kvd->key->block > kvd->value->block ? kvd->key->block : kvd->value->block;
  if (c->head_dim % block != 0) {
    *status = AMSKV_E_UNSUPPORTED;
    set_thread_error("kv_dtype %s needs head_dim to be a multiple of %d, got %d", kvd->name, block,
                     c->head_dim);
    return false;
  }
  if (kvd->key->rotated && (c->head_dim & (c->head_dim - 1)) != 0) {
    *status = AMSKV_E_UNSUPPORTED;
    set_thread_error("kv_dtype %s needs head_dim to be a power of two, got %d", kvd->name,
                     c->head_dim);
    return false;
  }
  if (rope != AMSKV_ROPE_NORMAL && rope != AMSKV_ROPE_NEOX && rope != AMSKV_ROPE_NONE) {
    set_thread_error("rope_style %d is not one of NORMAL, NEOX, NONE", rope);
    return false;
  }
  if (rope != AMSKV_ROPE_NONE && !(c->rope_theta > 0.f && c->rope_theta < 1e12f)) {
    set_thread_error("rope_theta must be a positive finite number, got %g", c->rope_theta);
    return false;
  }
  if (c->n_threads < 1 || c->n_threads > 256) {
    set_thread_error("n_threads must be in [1, 256], got %d", c->n_threads);
    return false;
  }
  if (c->interval < 0) {
    set_thread_error("interval must be >= 0 (0 = automatic), got %d", c->interval);
    return false;
  }
  char err[kErrorBytes];
  if (!policy_parse(c->policy, policy, err)) {
    *status = AMSKV_E_POLICY;
    set_thread_error("%s", err);
    return false;
  }
  *geo = Geometry{c->n_layers, c->n_q_heads, c->n_kv_heads, c->head_dim, dtype, c->n_threads};
  if (c->layer_window) {
    for (int l = 0; l < c->n_layers; ++l) {
      const int32_t w = c->layer_window[l];
      if (w < 0 || w > kMaxCapacity) {
        set_thread_error("layer_window[%d] must be 0 (global) or a window in [1, %d], got %d", l,
                         kMaxCapacity, w);
        return false;
      }
      if (w > 0) geo->n_local++, geo->window = w > geo->window ? w : geo->window;
    }
    if (geo->n_local == c->n_layers) {
      set_thread_error("layer_window marks all %d layers local: at least one must be global",
                       c->n_layers);
      return false;
    }
  }
  return true;
}

// Under an evicting policy a local layer's ring holds at most as many tokens as a global
// layer: a budget too small for the windows shortens them rather than starve the global
// layers. "full" keeps the windows (the model as trained).
bool shrinks_rings(const Geometry& geo, const Policy& p) {
  return geo.n_local && policy_evicts(p);
}

Geometry with_rings(const Geometry& geo, const Policy& p, int capacity) {
  return shrinks_rings(geo, p) ? rings_cut_to(geo, capacity) : geo;
}

// The policy's scorer keeps expected_attention's query statistics (the cov option applies).
bool has_ea_cov(const Policy& p) {
  return policy_scored(p) && !std::strcmp(scorer_at(p.scorer).info.evidence, "queries");
}

// cov=auto: expected_attention's full covariance when it costs at most an eighth of the
// tokens the diagonal leaves room for at this budget, else the diagonal.
void resolve_cov(const Geometry& geo, size_t budget, Policy* policy) {
  if (!policy->ea_cov_auto || !has_ea_cov(*policy)) return;
  const PolicyNeedsCtx ctx{&geo, policy};
  const NeedsFn needs{policy_needs, &ctx};
  const bool shrink = shrinks_rings(geo, *policy);
  policy->ea_diag = true;
  const int with_diag = arena_capacity_for(geo, needs, kHeaderBytes, budget, kMaxCapacity, shrink);
  policy->ea_diag = false;
  const int with_full = arena_capacity_for(geo, needs, kHeaderBytes, budget, kMaxCapacity, shrink);
  policy->ea_diag = with_full < with_diag - with_diag / 8;
}

// The layout for `budget`: largest capacity that fits, checked against the policy.
bool plan(const amskv_config* c, size_t budget, Geometry* geo, Policy* policy, ArenaLayout* layout,
          int* interval, amskv_status* status) {
  if (!check_config(c, geo, policy, status)) return false;
  const int min_cap = policy_min_capacity(*policy);
  const PolicyNeedsCtx ctx{geo, policy};
  const NeedsFn needs{policy_needs, &ctx};
  resolve_cov(*geo, budget, policy);
  const bool shrink = shrinks_rings(*geo, *policy);
  const int cap = arena_capacity_for(*geo, needs, kHeaderBytes, budget, kMaxCapacity, shrink);
  if (cap < min_cap) {
    ArenaLayout need;
    arena_layout(with_rings(*geo, *policy, min_cap), needs, min_cap, kHeaderBytes, &need);
    *status = AMSKV_E_BUDGET;
    set_thread_error(
        "budget of %zu bytes is too small: policy '%s' needs at least %d tokens per layer, "
        "which takes %zu bytes for this config%s",
        budget, c->policy, min_cap, need.total,
        geo->n_local && !shrink ? " (the local layers' windows included)" : "");
    return false;
  }
  *geo = with_rings(*geo, *policy, cap);
  arena_layout(*geo, needs, cap, kHeaderBytes, layout);
  const int room = cap - policy_must_keep(*policy);
  *interval = c->interval ? c->interval : policy_default_interval(*policy, cap);
  if (policy->kind != PolicyKind::kFull && (*interval < 1 || *interval > room)) {
    *status = AMSKV_E_INVALID;
    set_thread_error(
        "interval %d does not fit: capacity %d minus %d must-keep tokens allows "
        "1 to %d",
        *interval, cap, policy_must_keep(*policy), room);
    return false;
  }
  *status = AMSKV_OK;
  return true;
}

}  // namespace

size_t session_bytes(const amskv_config* config, size_t budget, amskv_status* status) {
  Geometry geo;
  Policy policy;
  ArenaLayout layout;
  int interval;
  return plan(config, budget, &geo, &policy, &layout, &interval, status) ? layout.total : 0;
}

size_t session_budget_for_capacity(const amskv_config* config, int capacity) {
  Geometry geo;
  Policy policy;
  amskv_status st;
  if (!check_config(config, &geo, &policy, &st)) return 0;
  if (capacity < 1 || capacity > kMaxCapacity) {
    set_thread_error("capacity must be in [1, %d], got %d", kMaxCapacity, capacity);
    return 0;
  }
  const PolicyNeedsCtx ctx{&geo, &policy};
  ArenaLayout layout;
  // cov=auto: the diagonal's budget, unless that budget would pick the full covariance (and
  // then fewer tokens); then the full one's.
  const bool auto_cov = policy.ea_cov_auto && has_ea_cov(policy);
  for (int diag = auto_cov ? 1 : policy.ea_diag; diag >= 0; --diag) {
    policy.ea_diag = diag;
    if (!arena_layout(with_rings(geo, policy, capacity), NeedsFn{policy_needs, &ctx}, capacity,
                      kHeaderBytes, &layout)) {
      set_thread_error("a session of %d tokens per layer does not fit in size_t", capacity);
      return 0;
    }
    Policy chosen = policy;
    resolve_cov(geo, layout.total, &chosen);
    if (chosen.ea_diag == policy.ea_diag) break;
  }
  return layout.total;
}

amskv_status session_create_in(const amskv_config* config, void* mem, size_t bytes,
                               amskv_session** out) {
  if (!out || !mem) {
    set_thread_error("%s is NULL", out ? "mem" : "out");
    return AMSKV_E_NULL;
  }
  if ((uintptr_t)mem % 64 != 0) {
    set_thread_error("mem must be aligned to 64 bytes");
    return AMSKV_E_INVALID;
  }
  Geometry geo;
  Policy policy;
  ArenaLayout layout;
  int interval;
  amskv_status st;
  if (!plan(config, bytes, &geo, &policy, &layout, &interval, &st)) return st;
  const Kernels* kern = active_kernels();
  if (!kern) {
    set_thread_error("AMSKV_ISA='%s' names a kernel variant this CPU or build cannot run",
                     getenv("AMSKV_ISA"));
    return AMSKV_E_UNSUPPORTED;
  }
  char* base = (char*)mem;
  amskv_session* s = new (base + layout.header) amskv_session();
  s->magic = kSessionMagic;
  s->owns_block = false;
  s->geo = geo;
  s->kern = kern;
  s->layout = layout;
  s->kv = kv_cache(geo, s->layout, base, kern);
  s->ring = kv_cache(geo, s->layout, base, kern, true);
  // Each layer's kind and index among its kind.
  int32_t* index = (int32_t*)(base + layout.layer_index);
  int32_t* window = (int32_t*)(base + layout.layer_window);
  int32_t* global_layers = (int32_t*)(base + layout.global_layers);
  for (int l = 0, n_global = 0, n_local = 0; l < geo.n_layers; ++l) {
    window[l] = config->layer_window ? config->layer_window[l] : 0;
    index[l] = window[l] ? n_local++ : n_global++;
    if (!window[l]) global_layers[index[l]] = l;
  }
  s->layer_index = index;
  s->layer_window = window;
  const int target =
      policy.kind == PolicyKind::kFull ? layout.capacity : layout.capacity - interval;
  policy_init(&s->policy, policy, geo, s->layout, base, target, config->rope_theta,
              config->rope_style == AMSKV_ROPE_NEOX);
  s->policy.global_layers = global_layers;
  s->rope_theta = config->rope_theta;
  s->rope_style = config->rope_style;
  s->budget = bytes;
  s->base = base;
  s->layers = (LayerState*)(base + layout.layers);
  for (int l = 0; l < geo.n_layers; ++l) s->layers[l] = LayerState{KvLayer{0, -1}, PolicyLayer{}};
  // The policy's state starts at zero: evidence and statistics are sums, credit starts empty.
  std::memset(base + layout.policy_begin, 0, layout.policy_end - layout.policy_begin);
  if (config->rope_style != AMSKV_ROPE_NONE)
    rope_inv_freq(config->rope_theta, geo.head_dim, (double*)(base + layout.rope_freqs));
  s->error[0] = 0;
  // The OpenMP runtime builds its thread pool and work-share state on the heap, once per
  // process, on first use: run the same construct now so attend and prefill never
  // allocate. A one-thread session touches no pool at all.
  parallel_for(geo.n_threads, geo.n_threads, [](int, int) {});
  *out = s;
  return AMSKV_OK;
}

amskv_status session_create(const amskv_config* config, size_t budget, amskv_session** out) {
  if (!out) {
    set_thread_error("out is NULL");
    return AMSKV_E_NULL;
  }
  amskv_status st;
  const size_t bytes = session_bytes(config, budget, &st);
  if (bytes == 0) return st;
  void* mem = std::aligned_alloc(64, (bytes + 63) / 64 * 64);
  if (!mem) {
    set_thread_error("could not allocate %zu bytes", bytes);
    return AMSKV_E_BUDGET;
  }
  st = session_create_in(config, mem, bytes, out);
  if (st != AMSKV_OK) {
    std::free(mem);
    return st;
  }
  (*out)->owns_block = true;
  (*out)->budget = budget;
  return AMSKV_OK;
}

void session_destroy(amskv_session* s) {
  if (!session_valid(s)) return;
  const bool owns = s->owns_block;
  void* block = s->base;
  s->magic = 0;
  s->~amskv_session();
  if (owns) std::free(block);
}

// Everything a session holds sits in its block after the header and before the thread
// slots (scratch): one copy of that range, plus the header's counters.
amskv_status session_copy(amskv_session* dst, const amskv_session* src) {
  if (dst == src) return AMSKV_OK;
  const ArenaLayout &a = dst->layout, &b = src->layout;
  const Geometry &g = dst->geo, &h = src->geo;
  char na[64], nb[64];
  policy_name(dst->policy.p, na, sizeof na);
  policy_name(src->policy.p, nb, sizeof nb);
  const bool same =
      a.total == b.total && a.capacity == b.capacity && a.n_channels == b.n_channels &&
      a.head_floats == b.head_floats && a.layers == b.layers && a.thread_slots == b.thread_slots &&
      g.n_layers == h.n_layers && g.n_q_heads == h.n_q_heads && g.n_kv_heads == h.n_kv_heads &&
      g.head_dim == h.head_dim && g.dtype == h.dtype && g.n_local == h.n_local &&
      g.window == h.window && dst->policy.target == src->policy.target &&
      dst->policy.p.seed == src->policy.p.seed && std::strcmp(na, nb) == 0 &&
      dst->rope_style == src->rope_style && dst->rope_theta == src->rope_theta;
  if (!same) {
    std::snprintf(dst->error, sizeof dst->error,
                  "session_copy: the sessions differ in config or block size (%zu and %zu bytes, "
                  "policy %s and %s)",
                  a.total, b.total, na, nb);
    return AMSKV_E_INVALID;
  }
  std::memcpy(dst->base + a.layers, src->base + b.layers, a.thread_slots - a.layers);
  PolicyState& p = dst->policy;
  const PolicyState& q = src->policy;
  p.events = q.events, p.tokens_evicted = q.tokens_evicted;
  p.wipe_segments = q.wipe_segments, p.wiped_segments = q.wiped_segments;
  dst->tokens_seen = src->tokens_seen;
  dst->error[0] = 0;
  return AMSKV_OK;
}

amskv_stats session_stats(const amskv_session* s) {
  const PolicyState& p = s->policy;
  amskv_stats st;
  st.budget_bytes = s->budget;
  st.bytes_used = s->layout.total;
  st.kv_bytes = s->layout.kv_bytes;
  st.capacity_tokens = s->layout.capacity;
  st.target_tokens = p.target;
  st.events = p.events;
  st.tokens_seen = s->tokens_seen;
  st.tokens_evicted = p.tokens_evicted;
  st.isa = s->kern->name;
  st.ea_cov = !has_ea_cov(p.p) ? nullptr : p.p.ea_diag ? "diag" : "full";
  st.wipe_segments = p.wipe_segments;
  st.wiped_segments = p.wiped_segments;
  st.wipe_rate = p.wipe_segments ? (double)p.wiped_segments / (double)p.wipe_segments : 0.0;
  st.local_layers = s->geo.n_local;
  st.local_capacity_tokens = s->geo.window;
  st.local_kv_bytes = s->layout.ring_kv_bytes;
  return st;
}

}  // namespace amskv
