#include "kv/arena.h"

#include "amskv/amskv.h"

namespace amskv {
namespace {

constexpr size_t kAlign = 64;
constexpr size_t kLayerStateBytes = 32;  // see runtime/session.h LayerState (static_assert)

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

size_t dtype_bytes(int dtype) {
  return dtype == AMSKV_F32 ? 4 : dtype == AMSKV_F16 ? 2 : 1;
}

ThreadScratch thread_scratch_layout(const Geometry& g, const StateSpec& st, int capacity) {
  const size_t G = (size_t)(g.n_q_heads / g.n_kv_heads), d = (size_t)g.head_dim;
  ThreadScratch s{};
  size_t cur = 0;
  carve(&cur, G * (size_t)capacity * 4, &s.scores);
  carve(&cur, G * d * 4, &s.q);
  carve(&cur, d * 4, &s.k);
  carve(&cur, 2 * d * 4, &s.rope);
  carve(&cur, (size_t)capacity * 4, &s.kept);
  carve(&cur, st.event_bytes ? st.event_bytes(st.event_ctx, capacity) : 0, &s.event);
  s.bytes = (cur + kAlign - 1) / kAlign * kAlign;
  return s;
}

bool arena_layout(const Geometry& g, const StateSpec& st, int capacity, size_t header_bytes,
                  ArenaLayout* out) {
  ArenaLayout a{};
  a.capacity = capacity;
  size_t rows, kv_elems, span, cur = 0;
  // rows = layers * kv heads * capacity; each holds head_dim elements.
  if (!mul((size_t)g.n_layers * g.n_kv_heads, (size_t)capacity, &rows)) return false;
  if (!mul(rows, (size_t)g.head_dim, &kv_elems)) return false;
  if (!mul(kv_elems, dtype_bytes(g.dtype), &span)) return false;
  if (!carve(&cur, header_bytes, &a.header)) return false;
  if (!carve(&cur, (size_t)g.n_layers * kLayerStateBytes, &a.layers)) return false;
  if (!carve(&cur, span, &a.keys) || !carve(&cur, span, &a.values)) return false;
  a.kv_bytes = 2 * span;
  const size_t scale_span = g.dtype == AMSKV_Q8 ? rows * 4 : 0;
  if (!carve(&cur, scale_span, &a.key_scales) || !carve(&cur, scale_span, &a.value_scales))
    return false;
  a.kv_bytes += 2 * scale_span;
  if (!carve(&cur, rows * 4, &a.positions)) return false;
  if (!carve(&cur, (size_t)g.head_dim / 2 * 8, &a.rope_freqs)) return false;
  // Per-token policy state: one float or int32 per held token and KV head.
  if (!carve(&cur, st.evidence ? rows * 4 : 0, &a.evidence)) return false;
  if (!carve(&cur, st.base_evidence ? rows * 4 : 0, &a.base_evidence)) return false;
  if (!carve(&cur, st.h2o ? rows * 4 : 0, &a.h2o_sum)) return false;
  if (!carve(&cur, st.h2o ? rows * 4 : 0, &a.h2o_born)) return false;
  if (!carve(&cur, st.credit ? rows * 4 : 0, &a.credit)) return false;
  if (!carve(&cur, (size_t)g.n_layers * g.n_q_heads * st.q_stat_floats * 4, &a.q_stats))
    return false;
  const ThreadScratch ts = thread_scratch_layout(g, st, capacity);
  a.thread_scratch_bytes = ts.bytes;
  a.event_scratch_bytes = ts.bytes - ts.event;
  size_t scratch;
  if (!mul(a.thread_scratch_bytes, (size_t)g.n_threads, &scratch)) return false;
  if (!carve(&cur, scratch, &a.thread_scratch)) return false;
  a.total = cur;
  *out = a;
  return true;
}

int arena_capacity_for(const Geometry& g, const StateSpec& st, size_t header_bytes, size_t budget,
                       int max_capacity) {
  // total(capacity) only grows with capacity: binary search the largest that fits.
  int lo = 0, hi = max_capacity;
  while (lo < hi) {
    int mid = lo + (hi - lo + 1) / 2;
    ArenaLayout a;
    if (arena_layout(g, st, mid, header_bytes, &a) && a.total <= budget)
      lo = mid;
    else
      hi = mid - 1;
  }
  return lo;
}

}  // namespace amskv
