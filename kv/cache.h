// kv: the cache itself. Storage (keys, values, their scales) apart from cell metadata (the
// position of every held token, the tokens a layer holds) apart from the per-token channels a
// policy asked for. Everything works on one (layer, KV head) row block of `capacity` slots;
// slots [0, n_tokens) hold tokens in position order.
//
// The policy changes the cache only through kv_compact: kept slots (ascending) move to the
// front, and every per-token array moves with them (keys, values, scales, positions and each
// channel marked `moves`). Channels not marked are window evidence their owner clears.
#pragma once

#include <cstddef>
#include <cstdint>

#include "arch/kernels.h"
#include "kv/arena.h"
#include "kv/dtype.h"

namespace amskv {

// A layer's cells: tokens held per KV head and the newest position (-1 when empty).
struct KvLayer {
  int32_t n_tokens;
  int32_t last_pos;
};

struct KvCache {
  Geometry g;
  int capacity;
  const DtypeOps* kdt;  // the keys' format
  const DtypeOps* vdt;  // the values'
  const Kernels* kern;
  size_t key_row_bytes;  // one stored row: head_dim elements
  size_t value_row_bytes;
  char* keys;
  char* values;
  float* key_scales;  // null unless the format has a row scale
  float* value_scales;
  int32_t* positions;
  int n_channels;
  char* channel[kMaxChannels];
  bool moves[kMaxChannels];
};

// Views of the block `base` as carved by `layout`: the global layers' storage, or with `ring`
// the local layers' (capacity = the window, no channels).
KvCache kv_cache(const Geometry& g, const ArenaLayout& layout, char* base, const Kernels* kern,
                 bool ring = false);

// First slot of (layer, h) in every [n_layers][n_kv][capacity] array.
inline size_t kv_row0(const KvCache& c, int layer, int h) {
  return ((size_t)layer * c.g.n_kv_heads + h) * (size_t)c.capacity;
}
inline char* kv_keys(const KvCache& c, int layer, int h) {
  return c.keys + kv_row0(c, layer, h) * c.key_row_bytes;
}
inline char* kv_values(const KvCache& c, int layer, int h) {
  return c.values + kv_row0(c, layer, h) * c.value_row_bytes;
}
inline float* kv_key_scales(const KvCache& c, int layer, int h) {
  return c.key_scales ? c.key_scales + kv_row0(c, layer, h) : nullptr;
}
inline float* kv_value_scales(const KvCache& c, int layer, int h) {
  return c.value_scales ? c.value_scales + kv_row0(c, layer, h) : nullptr;
}
inline int32_t* kv_positions(const KvCache& c, int layer, int h) {
  return c.positions + kv_row0(c, layer, h);
}
// Channel `ch` of (layer, h): capacity values, read as float or int32.
inline float* kv_f32(const KvCache& c, int ch, int layer, int h) {
  return (float*)c.channel[ch] + kv_row0(c, layer, h);
}
inline int32_t* kv_i32(const KvCache& c, int ch, int layer, int h) {
  return (int32_t*)c.channel[ch] + kv_row0(c, layer, h);
}

// Stores a token's (already rotated) key and its value in slot `slot` of (layer, h).
void kv_store(const KvCache& c, int layer, int h, int slot, const float* key, const float* value,
              int32_t pos);
// Rows [first, first + n) of (layer, h) as f32 [n][head_dim].
void kv_load_keys(const KvCache& c, int layer, int h, int first, int n, float* out);
void kv_load_values(const KvCache& c, int layer, int h, int first, int n, float* out);
// scores[g * ld + j] = q[g] . key j for the first n keys of (layer, h), g < n_q.
void kv_qk(const KvCache& c, int layer, int h, const float* q, int n_q, int n, float* scores,
           int ld);
// out[g] = sum_j p[g * ld + j] * value j over the first n values of (layer, h), g < n_q.
void kv_av(const KvCache& c, int layer, int h, const float* p, int n_q, int ld, int n, float* out);
// A local layer's ring drops slot `to`: the token of slot `from` moves there.
void kv_move(const KvCache& c, int layer, int h, int from, int to);
// The one apply step: slot i takes slot kept[i] for i < n_keep (kept strictly ascending) in
// every per-token array of (layer, h) that moves with its token.
void kv_compact(const KvCache& c, int layer, int h, const int32_t* kept, int n_keep);

}  // namespace amskv
