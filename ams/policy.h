// ams: eviction policies, named as users type them:
//   full | streaming | <scorer> | ams:<scorer>, then ",key=value" options
// (e.g. "ams:expected_attention,segment_mass=0.02,min_keep=8"). A policy decides which
// tokens of a full layer survive a compression event; the session does the storage side
// (gather, compaction) in one apply step.
#pragma once

#include <cstddef>
#include <cstdint>

#include "amskv/amskv.h"

namespace amskv {

enum class PolicyKind { kFull, kStreaming, kTopK, kAms };

struct Policy {
  PolicyKind kind;
  int scorer;            // kTopK and kAms: index into the scorer table (ams/scorer.h)
  int n_sink;            // first tokens always kept (attention sinks)
  int keep_last;         // most recent tokens always kept
  int window;            // W: queries whose attention is the evidence of AMS and wipe-out
  int snap_window;       // W of the snapkv scorer
  int ea_window;         // steps of query statistics for expected_attention
  int ea_horizon;        // future positions its RoPE average covers
  bool ea_diag;          // expected_attention keeps only the diagonal of q q^T
  bool ea_cov_auto;      // cov=auto (the default): the session picks ea_diag from its budget
  bool global_head;      // ablation: one segmentation for all KV heads of a layer
  int apart;             // 0 (reference): AMS runs over every token, the window's positions
                         // scored the layer's maximum; 1: the must-keep tokens (sinks, the
                         // last keep_last) are kept apart and AMS runs over those between
  float scorer_mass;     // AMS: 0 (reference) regions and quotas from the window's attention
                         // mass; f: a mix, f of the scorer's normalised scores (the picks'
                         // scores) and 1 - f of the window's normalised attention
  int chunk;             // global top-k: 0 (reference) each token scored alone; N: every
                         // token but the must-keep ones takes the mean score of its chunk
                         // (held tokens of positions pos / N alike), so top-k keeps or drops
                         // a chunk whole (ChunkKV)
  float attn_share;      // global top-k: 0 (reference) the scorer picks every token beyond the
                         // must-keep ones; f: a share f of them goes to the tokens the
                         // evidence window attends most, the scorer picks the rest
  float score_min;       // 0 (reference) off; t > 0: the tokens the scorer scores at least t
                         // are kept first (the best, if more than the slots); then global
                         // top-k fills the rest with the tokens the evidence window attends
                         // most, AMS shares the rest over the other tokens
  int radius;            // surprisal scorer: positions on each side a surprise covers
  uint64_t seed;         // random scorer
  amskv_ams_params ams;  // AMS parameters (n_sink / always_keep_last mirror the above)
};

// Parses `text`; on failure returns false and writes one line to err (kErrorBytes).
bool policy_parse(const char* text, Policy* out, char* err);
// Writes the canonical name ("ams:tova", "streaming", ...) into buf.
void policy_name(const Policy& p, char* buf, size_t n);
bool policy_evicts(const Policy& p);
// Smallest capacity the policy can work with: sinks + recent window + two 32-token regions.
int policy_min_capacity(const Policy& p);
// Tokens every event must keep (sinks + recent window): the floor of `target`.
int policy_must_keep(const Policy& p);
// Default tokens between events for a capacity: max(64, capacity / 8), kept within
// capacity - must_keep.
int policy_default_interval(const Policy& p, int capacity);

// kTopK and kAms: the policy selects with a scorer.
inline bool policy_scored(const Policy& p) {
  return p.kind == PolicyKind::kTopK || p.kind == PolicyKind::kAms;
}

// Streaming (StreamingLLM): keep the first n_sink and the most recent n_keep - n_sink of
// n_tokens held in position order. kept: n_keep ascending indices.
void policy_select_streaming(const Policy& p, int n_tokens, int n_keep, int32_t* kept);

}  // namespace amskv
