// ams: eviction policies, named as users type them ("full", "streaming,n_sink=4", ...).
// A policy decides which tokens of a full layer survive a compression event; the session
// does the storage side (gather, compaction) in one apply step.
#pragma once

#include <cstdint>

namespace amskv {

enum class PolicyKind { kFull, kStreaming };

struct Policy {
  PolicyKind kind;
  int n_sink;     // first tokens always kept (attention sinks)
  int keep_last;  // most recent tokens always kept
};

// Parses `text`; on failure returns false and writes one line to err (kErrorBytes).
bool policy_parse(const char* text, Policy* out, char* err);
// Smallest capacity the policy can work with: sinks + recent window + two 32-token regions.
int policy_min_capacity(const Policy& p);
// Tokens every event must keep (sinks + recent window): the floor of `target`.
int policy_must_keep(const Policy& p);
// Default tokens between events for a capacity: max(64, capacity / 8), kept within
// capacity - must_keep.
int policy_default_interval(const Policy& p, int capacity);

// Streaming (StreamingLLM): keep the first n_sink and the most recent n_keep - n_sink of
// n_tokens held in position order. kept: n_keep ascending indices.
void policy_select_streaming(const Policy& p, int n_tokens, int n_keep, int32_t* kept);

}  // namespace amskv
