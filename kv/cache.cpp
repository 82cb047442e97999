#include "kv/cache.h"

#include <cstring>

namespace amskv {

KvCache kv_cache(const Geometry& g, const ArenaLayout& layout, char* base, const Kernels* kern,
                 bool ring) {
  KvCache c{};
  c.g = g;
  c.capacity = ring ? g.window : layout.capacity;
  c.kdt = kv_dtype(g.dtype)->key;
  c.vdt = kv_dtype(g.dtype)->value;
  c.kern = kern;
  c.key_row_bytes = dtype_row_bytes(*c.kdt, g.head_dim);
  c.value_row_bytes = dtype_row_bytes(*c.vdt, g.head_dim);
  c.keys = base + (ring ? layout.ring_keys : layout.keys);
  c.values = base + (ring ? layout.ring_values : layout.values);
  const size_t ks = ring ? layout.ring_key_scales : layout.key_scales;
  const size_t vs = ring ? layout.ring_value_scales : layout.value_scales;
  c.key_scales = c.kdt->row_scale ? (float*)(base + ks) : nullptr;
  c.value_scales = c.vdt->row_scale ? (float*)(base + vs) : nullptr;
  c.positions = (int32_t*)(base + (ring ? layout.ring_positions : layout.positions));
  c.n_channels = ring ? 0 : layout.n_channels;
  for (int i = 0; i < layout.n_channels; ++i) {
    c.channel[i] = base + layout.channel[i];
    c.moves[i] = layout.channel_moves[i];
  }
  return c;
}

void kv_store(const KvCache& c, int layer, int h, int slot, const float* key, const float* value,
              int32_t pos) {
  const int d = c.g.head_dim;
  const float ks = c.kdt->store(*c.kern, key, kv_keys(c, layer, h) + slot * c.key_row_bytes, d);
  const float vs =
      c.vdt->store(*c.kern, value, kv_values(c, layer, h) + slot * c.value_row_bytes, d);
  if (c.key_scales) kv_key_scales(c, layer, h)[slot] = ks;
  if (c.value_scales) kv_value_scales(c, layer, h)[slot] = vs;
  kv_positions(c, layer, h)[slot] = pos;
}

void kv_load_keys(const KvCache& c, int layer, int h, int first, int n, float* out) {
  const float* s = kv_key_scales(c, layer, h);
  c.kdt->load(*c.kern, kv_keys(c, layer, h) + first * c.key_row_bytes, s ? s + first : nullptr, n,
              c.g.head_dim, out);
}

void kv_load_values(const KvCache& c, int layer, int h, int first, int n, float* out) {
  const float* s = kv_value_scales(c, layer, h);
  c.vdt->load(*c.kern, kv_values(c, layer, h) + first * c.value_row_bytes, s ? s + first : nullptr,
              n, c.g.head_dim, out);
}

void kv_qk(const KvCache& c, int layer, int h, const float* q, int n_q, int n, float* scores,
           int ld) {
  c.kdt->qk(*c.kern, q, n_q, kv_keys(c, layer, h), kv_key_scales(c, layer, h), n, c.g.head_dim,
            scores, ld);
}

void kv_av(const KvCache& c, int layer, int h, const float* p, int n_q, int ld, int n, float* out) {
  c.vdt->av(*c.kern, p, n_q, ld, kv_values(c, layer, h), kv_value_scales(c, layer, h), n,
            c.g.head_dim, out);
}

void kv_move(const KvCache& c, int layer, int h, int from, int to) {
  std::memcpy(kv_keys(c, layer, h) + to * c.key_row_bytes,
              kv_keys(c, layer, h) + from * c.key_row_bytes, c.key_row_bytes);
  std::memcpy(kv_values(c, layer, h) + to * c.value_row_bytes,
              kv_values(c, layer, h) + from * c.value_row_bytes, c.value_row_bytes);
  if (c.key_scales) kv_key_scales(c, layer, h)[to] = kv_key_scales(c, layer, h)[from];
  if (c.value_scales) kv_value_scales(c, layer, h)[to] = kv_value_scales(c, layer, h)[from];
  kv_positions(c, layer, h)[to] = kv_positions(c, layer, h)[from];
}

void kv_compact(const KvCache& c, int layer, int h, const int32_t* kept, int n_keep) {
  const Kernels& k = *c.kern;
  k.gather_rows(kv_keys(c, layer, h), c.key_row_bytes, kept, n_keep);
  k.gather_rows(kv_values(c, layer, h), c.value_row_bytes, kept, n_keep);
  if (c.key_scales) k.gather_rows(kv_key_scales(c, layer, h), 4, kept, n_keep);
  if (c.value_scales) k.gather_rows(kv_value_scales(c, layer, h), 4, kept, n_keep);
  k.gather_rows(kv_positions(c, layer, h), 4, kept, n_keep);
  for (int ch = 0; ch < c.n_channels; ++ch)
    if (c.moves[ch]) k.gather_rows(kv_f32(c, ch, layer, h), 4, kept, n_keep);
}

}  // namespace amskv
