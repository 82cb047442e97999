// kv: the session's one block, sized first and carved once into typed spans.
//
// Everything a session touches after creation lives here: keys and values of every layer
// and KV head in the storage dtype, their q8 scales, the absolute position of every held
// token, and per-thread scratch for attention and compression events. arena_layout() is
// the single sizing function; later features add their spans here and nowhere else.
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
};

// What the eviction policy keeps beyond K, V and positions (all zero for "full").
struct StateSpec {
  bool evidence;       // attention of the last W queries: AMS window scores, wipe-out
  bool base_evidence;  // the base scorer's own window (tova: latest row, snapkv: W = 64)
  bool h2o;            // attention received so far and the step each token arrived
  bool credit;         // AMS EMA credit
  int q_stat_floats;   // per layer and query head: expected_attention's query sums
  // Per-thread scratch a compression event needs at this capacity, in bytes.
  size_t (*event_bytes)(const void* ctx, int capacity);
  const void* event_ctx;
};

// Byte offsets from the start of the block; every span starts on a 64-byte boundary.
struct ArenaLayout {
  int capacity;                // tokens per KV head per layer
  size_t header;               // the session object:          [1] header_bytes
  size_t layers;               // per-layer counters:          [n_layers] LayerState
  size_t keys;                 // [n_layers][n_kv][capacity][head_dim] storage dtype
  size_t values;               // [n_layers][n_kv][capacity][head_dim] storage dtype
  size_t key_scales;           // q8 only: [n_layers][n_kv][capacity] float
  size_t value_scales;         // q8 only: [n_layers][n_kv][capacity] float
  size_t positions;            // [n_layers][n_kv][capacity] int32 absolute positions
  size_t rope_freqs;           // [head_dim / 2] double: RoPE inverse frequencies
  size_t evidence;             // [n_layers][n_kv][capacity] float, if StateSpec::evidence
  size_t base_evidence;        // [n_layers][n_kv][capacity] float, if base_evidence
  size_t h2o_sum;              // [n_layers][n_kv][capacity] float, if h2o
  size_t h2o_born;             // [n_layers][n_kv][capacity] int32, if h2o
  size_t credit;               // [n_layers][n_kv][capacity] float, if credit
  size_t q_stats;              // [n_layers][n_q][q_stat_floats] float
  size_t event_scratch_bytes;  // per thread, inside thread_scratch_bytes
  size_t thread_scratch;       // [n_threads][thread_scratch_bytes]
  size_t thread_scratch_bytes;
  size_t kv_bytes;  // keys + values + scales
  size_t total;     // bytes of the whole block
};

// One thread's scratch, as floats/ints at these offsets from its slot (64-byte aligned):
struct ThreadScratch {
  size_t scores;  // [G][capacity] float: attention rows of one query group
  size_t q;       // [G][head_dim] float: the group's rotated, scaled queries
  size_t k;       // [head_dim] float: a key being rotated before storage
  size_t rope;    // [2 * head_dim] float: RoPE table of one position
  size_t kept;    // [capacity] int32: an event's kept indices for one head
  size_t event;   // the policy's event scratch (StateSpec::event_bytes)
  size_t bytes;
};

size_t dtype_bytes(int dtype);
ThreadScratch thread_scratch_layout(const Geometry& g, const StateSpec& st, int capacity);
// Fills `out` for `capacity` tokens; false if the sizes overflow.
bool arena_layout(const Geometry& g, const StateSpec& st, int capacity, size_t header_bytes,
                  ArenaLayout* out);
// Largest capacity in [0, max_capacity] whose layout fits `budget`; 0 if none does.
int arena_capacity_for(const Geometry& g, const StateSpec& st, size_t header_bytes, size_t budget,
                       int max_capacity);

// Shape helpers for one (layer, kv head) row block.
inline size_t head_index(const Geometry& g, int layer, int kv_head) {
  return (size_t)layer * g.n_kv_heads + kv_head;
}

}  // namespace amskv
