#include "kv/arena.h"

#include "kv/dtype.h"

namespace amskv {
namespace {

constexpr size_t kAlign = 64;

// Appends a span of `bytes` at the next aligned offset; false on overflow.
bool carve(size_t* cursor, size_t bytes, size_t* offset) {
  size_t start = (*cursor + kAlign - 1) / kAlign * kAlign;
  if (start < *cursor || bytes > SIZE_MAX - start) return false;
  *offset = start;
  *cursor = start + bytes;
  return true;
}

bool mul(size_t a, size_t b, size_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

}  // namespace

bool arena_layout(const Geometry& g, NeedsFn needs_fn, int capacity, size_t header_bytes,
                  ArenaLayout* out) {
  ArenaNeeds needs{};
  if (needs_fn.fn) needs_fn.fn(needs_fn.ctx, capacity, &needs);
  if (needs.n_channels < 0 || needs.n_channels > kMaxChannels || needs.n_event_spans < 0 ||
      needs.n_event_spans > kMaxEventSpans)
    return false;
  const KvDtype* dt = kv_dtype(g.dtype);
  if (!dt || g.head_dim % dt->key->block != 0 || g.head_dim % dt->value->block != 0) return false;
  ArenaLayout a{};
  a.capacity = capacity;
  a.n_channels = needs.n_channels;
  a.n_event_spans = needs.n_event_spans;
  a.head_floats = needs.head_floats;
  size_t rows, cur = 0;
  const size_t n_global = (size_t)(g.n_layers - g.n_local);
  if (!carve(&cur, header_bytes, &a.header)) return false;
  if (!carve(&cur, (size_t)g.n_layers * kLayerStateBytes, &a.layers) ||
      !carve(&cur, (size_t)g.n_layers * 4, &a.layer_index) ||
      !carve(&cur, (size_t)g.n_layers * 4, &a.layer_window) ||
      !carve(&cur, n_global * 4, &a.global_layers))
    return false;
  // Keys, values, their scales and positions: of the global layers at `capacity`, then of
  // the local ones at `window`. rows = layers * kv heads * slots; each holds head_dim elements.
  const auto storage = [&](size_t layers, size_t slots, size_t* r, size_t* k, size_t* v, size_t* ks,
                           size_t* vs, size_t* pos, size_t* bytes) {
    size_t k_span, v_span;
    if (!mul(layers * g.n_kv_heads, slots, r) ||
        !mul(*r, dtype_row_bytes(*dt->key, g.head_dim), &k_span) ||
        !mul(*r, dtype_row_bytes(*dt->value, g.head_dim), &v_span))
      return false;
    const size_t ks_span = dt->key->row_scale ? *r * 4 : 0;
    const size_t vs_span = dt->value->row_scale ? *r * 4 : 0;
    *bytes = k_span + v_span + ks_span + vs_span;
    return carve(&cur, k_span, k) && carve(&cur, v_span, v) && carve(&cur, ks_span, ks) &&
           carve(&cur, vs_span, vs) && carve(&cur, *r * 4, pos);
  };
  size_t ring_rows;
  if (!storage(n_global, (size_t)capacity, &rows, &a.keys, &a.values, &a.key_scales,
               &a.value_scales, &a.positions, &a.kv_bytes) ||
      !storage((size_t)g.n_local, (size_t)g.window, &ring_rows, &a.ring_keys, &a.ring_values,
               &a.ring_key_scales, &a.ring_value_scales, &a.ring_positions, &a.ring_kv_bytes))
    return false;
  if (!carve(&cur, (size_t)g.head_dim / 2 * 8, &a.rope_freqs)) return false;
  a.policy_begin = (cur + kAlign - 1) / kAlign * kAlign;
  for (int c = 0; c < needs.n_channels; ++c) {
    if (!carve(&cur, rows * 4, &a.channel[c])) return false;
    a.channel_moves[c] = needs.channel_moves[c];
  }
  size_t head_bytes;
  if (!mul((size_t)g.n_layers * g.n_q_heads * 4, needs.head_floats, &head_bytes) ||
      !carve(&cur, head_bytes, &a.head_state))
    return false;
  a.policy_end = cur;
  // One thread's slot.
  const size_t G = (size_t)(g.n_q_heads / g.n_kv_heads), d = (size_t)g.head_dim;
  size_t slot = 0, scores;
  const size_t row = (size_t)(capacity > g.window ? capacity : g.window);
  if (!mul(G * 4, row, &scores) || !carve(&slot, scores, &a.scores) ||
      !carve(&slot, G * d * 4, &a.q) || !carve(&slot, d * 4, &a.k) ||
      !carve(&slot, 2 * d * 4, &a.rope) || !carve(&slot, (size_t)capacity * 4, &a.kept))
    return false;
  for (int i = 0; i < needs.n_event_spans; ++i)
    if (!carve(&slot, needs.event_bytes[i], &a.event[i])) return false;
  a.thread_bytes = (slot + kAlign - 1) / kAlign * kAlign;
  size_t slots;
  if (!mul(a.thread_bytes, (size_t)g.n_threads, &slots)) return false;
  if (!carve(&cur, slots, &a.thread_slots)) return false;
  a.total = cur;
  *out = a;
  return true;
}

int arena_capacity_for(const Geometry& g, NeedsFn needs, size_t header_bytes, size_t budget,
                       int max_capacity, bool shrink_rings) {
  // total(capacity) only grows with capacity: binary search the largest that fits.
  int lo = 0, hi = max_capacity;
  while (lo < hi) {
    int mid = lo + (hi - lo + 1) / 2;
    ArenaLayout a;
    if (arena_layout(shrink_rings ? rings_cut_to(g, mid) : g, needs, mid, header_bytes, &a) &&
        a.total <= budget)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

}  // namespace amskv
