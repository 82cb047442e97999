// kv: the session's one block, sized first and carved once into typed spans. This is the
// only place the block is laid out; everything a session touches after creation lives in it.
//
//   header        [1] the session object (runtime/session.h)
//   layers        [n_layers] 32-byte per-layer counters (LayerState, runtime/session.h)
//   layer_index   [n_layers] int32: a global layer's index among the global layers, a local
//                 (sliding-window) layer's among the local ones
//   layer_window  [n_layers] int32: 0 for a global layer, its window for a local one
//   global_layers [n_global] int32: the layer of each global index
//   keys, values  [n_global][n_kv][capacity][head_dim] in the storage dtype (kv/dtype.h)
//   key_scales,   [n_global][n_kv][capacity] float, dtypes with a row scale (q8) only
//   value_scales
//   positions     [n_global][n_kv][capacity] int32 absolute positions of the held tokens
//   ring_*        the same five arrays for the local layers, [n_local][n_kv][window]: each
//                 holds its last `window` tokens (a ring, in no order), no policy state
//   rope_freqs    [head_dim / 2] double RoPE inverse frequencies
//   channels[c]   [n_global][n_kv][capacity] 4 bytes (float or int32): per-token values the
//                 policy asked for (window evidence, credit, a scorer's sums), c < n_channels
//   head_state    [n_layers][n_q][head_floats] float: per query head state of the policy
//   thread slots  [n_threads][thread_bytes], each carved as
//     scores      [G][max(capacity, window)] float: attention rows of one query group
//                 (G = n_q / n_kv)
//     q           [G][head_dim] float: the group's rotated, scaled queries
//     k           [head_dim] float: a key being rotated before storage
//     rope        [2 * head_dim] float: the RoPE table of one position
//     kept        [capacity] int32: the kept slots of one head at an event
//     event[i]    the policy's event scratch spans, sizes as it asked (ams/event.cpp names
//                 them), i < n_event_spans
//
// Every span starts on a 64-byte boundary. The policy's state (channels and head_state) is
// the contiguous range [policy_begin, policy_end), zeroed at creation.
#pragma once

#include <cstddef>
#include <cstdint>

namespace amskv {

struct Geometry {
  int n_layers;
  int n_q_heads;
  int n_kv_heads;
  int head_dim;
  int dtype;  // amskv_dtype
  int n_threads;
  int n_local = 0;  // sliding-window layers (the rest are global)
  int window = 0;   // the ring's slots: the largest window of a local layer
};

constexpr int kMaxChannels = 4;
constexpr int kMaxEventSpans = 9;
constexpr size_t kLayerStateBytes = 32;  // runtime/session.h static_asserts LayerState

// What the eviction policy needs in the block at one capacity (all zero for "full").
struct ArenaNeeds {
  int n_channels;
  bool channel_moves[kMaxChannels];  // the channel travels with its token (kv_compact)
  size_t head_floats;                // per (layer, query head)
  int n_event_spans;
  size_t event_bytes[kMaxEventSpans];  // per thread
};

// Fills the policy's needs for a capacity; ctx is the caller's (ams/event.cpp).
struct NeedsFn {
  void (*fn)(const void* ctx, int capacity, ArenaNeeds* out);
  const void* ctx;
};

// Byte offsets from the start of the block (thread slot spans: from the slot's start).
struct ArenaLayout {
  int capacity;  // tokens per KV head per global layer
  int n_channels, n_event_spans;
  size_t header, layers, layer_index, layer_window, global_layers;
  size_t keys, values, key_scales, value_scales, positions, rope_freqs;
  size_t ring_keys, ring_values, ring_key_scales, ring_value_scales, ring_positions;
  size_t channel[kMaxChannels];
  bool channel_moves[kMaxChannels];
  size_t head_state, head_floats;
  size_t policy_begin, policy_end;
  size_t thread_slots, thread_bytes;
  size_t scores, q, k, rope, kept;  // in a thread slot
  size_t event[kMaxEventSpans];     // in a thread slot
  size_t kv_bytes;                  // keys + values + scales of the global layers
  size_t ring_kv_bytes;             // of the local layers
  size_t total;                     // bytes of the whole block
};

// Fills `out` for `capacity` tokens; false if the sizes overflow.
bool arena_layout(const Geometry& g, NeedsFn needs, int capacity, size_t header_bytes,
                  ArenaLayout* out);
// `g` with the local layers' rings cut to `capacity` slots when they have more.
inline Geometry rings_cut_to(Geometry g, int capacity) {
  if (capacity < g.window) g.window = capacity;
  return g;
}
// Largest capacity in [0, max_capacity] whose layout fits `budget`; 0 if none does. With
// `shrink_rings` the rings are cut to each capacity tried (rings_cut_to), else g.window.
int arena_capacity_for(const Geometry& g, NeedsFn needs, size_t header_bytes, size_t budget,
                       int max_capacity, bool shrink_rings = false);

}  // namespace amskv
