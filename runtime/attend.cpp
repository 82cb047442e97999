// The decode step and prefill: store the new token's key and value, attend over the held
// ones, and run a compression event first when the layer is full. A local (sliding-window)
// layer instead drops the tokens that left its window from its ring: no events, no policy.
// A ring shorter than the layer's window (a budget too small for the windows) is the window.
#include <cmath>
#include <cstring>

#include "arch/parallel.h"
#include "arch/rope.h"
#include "runtime/session.h"

namespace amskv {
namespace {

// Finite and at most AMSKV_MAX_ABS in magnitude: larger finite values would overflow the
// float scores (|q| |k| d) into Inf and the softmax into NaN.
bool all_finite(const float* x, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (!(std::fabs(x[i]) <= AMSKV_MAX_ABS)) return false;
  return true;
}

// Argument checks shared by attend and prefill. Nothing is modified before they pass.
amskv_status check_call(amskv_session* s, int layer, int32_t pos0, int n_tokens, const float* q,
                        const float* k, const float* v, const float* out) {
  if (!q || !k || !v || !out) {
    format_error(s->error, "%s is NULL", !q ? "q" : !k ? "k" : !v ? "v" : "out");
    return AMSKV_E_NULL;
  }
  if (layer < 0 || layer >= s->geo.n_layers) {
    format_error(s->error, "layer %d out of range [0, %d)", layer, s->geo.n_layers);
    return AMSKV_E_RANGE;
  }
  if (n_tokens < 1) {
    format_error(s->error, "n_tokens must be >= 1, got %d", n_tokens);
    return AMSKV_E_INVALID;
  }
  const KvLayer& ls = s->layers[layer].cells;
  if (pos0 < 0 || pos0 <= ls.last_pos || pos0 > INT32_MAX - (n_tokens - 1)) {
    format_error(s->error,
                 "layer %d: position %d must be >= 0 and after the last one (%d), and the "
                 "%d tokens' positions must fit in int32",
                 layer, pos0, ls.last_pos, n_tokens);
    return AMSKV_E_POSITION;
  }
  const size_t d = (size_t)s->geo.head_dim, n = (size_t)n_tokens;
  const char* bad = !all_finite(q, n * s->geo.n_q_heads * d)    ? "q"
                    : !all_finite(k, n * s->geo.n_kv_heads * d) ? "k"
                    : !all_finite(v, n * s->geo.n_kv_heads * d) ? "v"
                                                                : nullptr;
  if (bad) {
    format_error(s->error, "layer %d: %s holds NaN or Inf or a magnitude above %g", layer, bad,
                 (double)AMSKV_MAX_ABS);
    return AMSKV_E_NONFINITE;
  }
  const int capacity = s->layout.capacity;
  if (s->policy.p.kind == PolicyKind::kFull && !s->layer_window[layer] &&
      ls.n_tokens + n_tokens > capacity) {
    format_error(s->error,
                 "layer %d is full: it holds %d of %d tokens and policy 'full' evicts nothing "
                 "(%d more requested); raise the budget or choose an eviction policy",
                 layer, ls.n_tokens, capacity, n_tokens);
    return AMSKV_E_FULL;
  }
  return AMSKV_OK;
}

void rope_table_for(const amskv_session* s, int32_t pos, float* table) {
  if (s->rope_style == AMSKV_ROPE_NONE) return;
  rope_table(s->rope_style == AMSKV_ROPE_NEOX, pos, (const double*)(s->base + s->layout.rope_freqs),
             s->geo.head_dim, table);
}

void apply_rope(const amskv_session* s, float* x, int n_heads, const float* table) {
  if (s->rope_style == AMSKV_ROPE_NORMAL)
    s->kern->rope_normal(x, n_heads, s->geo.head_dim, table);
  else if (s->rope_style == AMSKV_ROPE_NEOX)
    s->kern->rope_neox(x, n_heads, s->geo.head_dim, table);
}

// One thread's slot of scratch (kv/arena.h), and a span of it.
char* slot(amskv_session* s, int thread) {
  return s->base + s->layout.thread_slots + (size_t)thread * s->layout.thread_bytes;
}
float* slot_f32(amskv_session* s, int thread, size_t offset) {
  return (float*)(slot(s, thread) + offset);
}

// Stores one token's keys and values (all KV heads) at `slot`, rotating the keys with
// `table` (the token's RoPE table). Uses thread 0's key scratch. A global layer's policy
// sees the store; a local layer has none.
void store_token(amskv_session* s, int layer, int slot_index, int32_t pos, const float* k,
                 const float* v, const float* table) {
  const int d = s->geo.head_dim, li = s->layer_index[layer];
  const bool local = s->layer_window[layer] > 0;
  float* krow = slot_f32(s, 0, s->layout.k);
  for (int h = 0; h < s->geo.n_kv_heads; ++h) {
    std::memcpy(krow, k + (size_t)h * d, (size_t)d * 4);
    apply_rope(s, krow, 1, table);
    kv_store(local ? s->ring : s->kv, li, h, slot_index, krow, v + (size_t)h * d, pos);
    if (!local) policy_store(s->policy, s->kv, li, s->layers[layer], h, slot_index);
  }
}

// Attention of KV head h's query group over the first n_keys held tokens.
// q: the token's [n_q_heads][d] queries; out: its [n_q_heads][d] output; table: the token's
// RoPE table.
void attend_group(amskv_session* s, int layer, int h, int n_keys, int32_t pos, const float* q,
                  float* out, const float* table, int thread) {
  const bool local = s->layer_window[layer] > 0;
  const KvCache& kv = local ? s->ring : s->kv;
  const int li = s->layer_index[layer];
  const int d = s->geo.head_dim, G = s->policy.group, ld = kv.capacity;
  float* scores = slot_f32(s, thread, s->layout.scores);
  float* qg = slot_f32(s, thread, s->layout.q);
  const float scale = 1.f / std::sqrt((float)d);
  const float* src = q + (size_t)h * G * d;
  for (int i = 0; i < G * d; ++i) qg[i] = src[i] * scale;
  apply_rope(s, qg, G, table);
  kv_qk(kv, li, h, qg, G, n_keys, scores, ld);
  for (int g = 0; g < G; ++g) s->kern->softmax(scores + (size_t)g * ld, n_keys);
  // While the rows are hot.
  if (!local) policy_observe(s->policy, kv, li, s->layers[layer], h, n_keys, scores, ld, src, pos);
  kv_av(kv, li, h, scores, G, ld, n_keys, out + (size_t)h * G * d);
}

// One token of a local layer (arguments checked): the tokens at positions pos - window or
// older leave the ring (the last slot moves into each one's place; with consecutive positions
// that is one token, once the ring is full), the new one goes last, attention over the ring.
void attend_local(amskv_session* s, int layer, int32_t pos, const float* q, const float* k,
                  const float* v, float* out, float* table) {
  LayerState& l = s->layers[layer];
  const int li = s->layer_index[layer];
  const int w = s->layer_window[layer] < s->geo.window ? s->layer_window[layer] : s->geo.window;
  int n = l.cells.n_tokens;
  const int32_t* held = kv_positions(s->ring, li, 0);  // the same for every KV head
  for (int i = 0; i < n;) {
    if (held[i] > pos - w) {
      ++i;
      continue;
    }
    --n;
    if (i != n)
      for (int h = 0; h < s->geo.n_kv_heads; ++h) kv_move(s->ring, li, h, n, i);
  }
  rope_table_for(s, pos, table);
  store_token(s, layer, n, pos, k, v, table);
  l.cells.n_tokens = n + 1;
  l.cells.last_pos = pos;
  s->tokens_seen++;
  parallel_for(s->geo.n_threads, s->geo.n_kv_heads, [&](int h, int thread) {
    attend_group(s, layer, h, n + 1, pos, q, out, table, thread);
  });
}

}  // namespace

amskv_status session_attend(amskv_session* s, int layer, int32_t pos, const float* q,
                            const float* k, const float* v, float* out) {
  amskv_status st = check_call(s, layer, pos, 1, q, k, v, out);
  if (st != AMSKV_OK) return st;
  // One RoPE table for the token, shared read-only by every head and thread.
  float* table = slot_f32(s, 0, s->layout.rope);
  if (s->layer_window[layer]) {
    attend_local(s, layer, pos, q, k, v, out, table);
    return AMSKV_OK;
  }
  LayerState& l = s->layers[layer];
  const int li = s->layer_index[layer];
  if (l.cells.n_tokens == s->layout.capacity) policy_event(s->policy, s->kv, li, l);
  rope_table_for(s, pos, table);
  store_token(s, layer, l.cells.n_tokens, pos, k, v, table);
  l.cells.n_tokens++;
  l.cells.last_pos = pos;
  s->tokens_seen++;
  const int n_keys = l.cells.n_tokens;
  parallel_for(s->geo.n_threads, s->geo.n_kv_heads, [&](int h, int thread) {
    attend_group(s, layer, h, n_keys, pos, q, out, table, thread);
  });
  policy_step(s->policy, s->kv, li, l, n_keys, pos);
  return AMSKV_OK;
}

amskv_status session_prefill(amskv_session* s, int layer, int32_t pos0, int n_tokens,
                             const float* q, const float* k, const float* v, float* out) {
  amskv_status st = check_call(s, layer, pos0, n_tokens, q, k, v, out);
  if (st != AMSKV_OK) return st;
  LayerState& l = s->layers[layer];
  const int capacity = s->layout.capacity, li = s->layer_index[layer];
  const size_t d = (size_t)s->geo.head_dim;
  const size_t q_stride = s->geo.n_q_heads * d, kv_stride = s->geo.n_kv_heads * d;
  if (s->layer_window[layer]) {  // a local layer: token by token through its ring
    for (int t = 0; t < n_tokens; ++t)
      attend_local(s, layer, pos0 + t, q + t * q_stride, k + t * kv_stride, v + t * kv_stride,
                   out + t * q_stride, slot_f32(s, 0, s->layout.rope));
    return AMSKV_OK;
  }
  // Chunks fill the free space; a full layer is compressed between chunks, so a prompt of
  // any length fits the budget.
  for (int done = 0; done < n_tokens;) {
    if (l.cells.n_tokens == capacity) policy_event(s->policy, s->kv, li, l);
    const int free = capacity - l.cells.n_tokens;
    const int chunk = n_tokens - done < free ? n_tokens - done : free;
    const int held = l.cells.n_tokens;
    float* table0 = slot_f32(s, 0, s->layout.rope);
    for (int t = 0; t < chunk; ++t) {
      rope_table_for(s, pos0 + done + t, table0);
      store_token(s, layer, held + t, pos0 + done + t, k + (done + t) * kv_stride,
                  v + (done + t) * kv_stride, table0);
    }
    // Causal: token t of the chunk sees the held tokens and chunk tokens 0..t. A thread
    // takes whole heads, tokens in order, so per-head evidence sums need no locks.
    parallel_for(s->geo.n_threads, s->geo.n_kv_heads, [&](int h, int thread) {
      float* table = slot_f32(s, thread, s->layout.rope);
      for (int t = 0; t < chunk; ++t) {
        rope_table_for(s, pos0 + done + t, table);
        attend_group(s, layer, h, held + t + 1, pos0 + done + t, q + (done + t) * q_stride,
                     out + (done + t) * q_stride, table, thread);
      }
    });
    for (int t = 0; t < chunk; ++t)
      policy_step(s->policy, s->kv, li, l, held + t + 1, pos0 + done + t);
    l.cells.n_tokens = held + chunk;
    l.cells.last_pos = pos0 + done + chunk - 1;
    s->tokens_seen += (uint64_t)chunk;
    done += chunk;
  }
  return AMSKV_OK;
}

}  // namespace amskv
