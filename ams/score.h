// ams: the scorers' score functions, pure and over caller memory (no heap, no state). Each is
// defined in its scorer's file (ams/scorer_<name>.cpp) and declared here for direct tests.
// docs/scorers.md says what each computes.
//
// T tokens held in slot order (= position order); G query heads per KV head; d head_dim.
#pragma once

#include <cstddef>
#include <cstdint>

#include "arch/kernels.h"

namespace amskv {

// tova: latest_sum[j] = the latest query's attention over all query heads of the layer,
// summed; divisor = the number of rows summed. The newest token gets the row maximum.
// out may be latest_sum.
void tova_scores(const float* latest_sum, int T, float divisor, float* out);

// h2o: attention received since arrival, per query that could see the token (group mean).
void h2o_scores(const float* attn_sum, const int32_t* n_queries, int T, int G, float* out);

// keydiff: -cos(k_j, a), a the mean of the L2-normalised keys. keys: [T][d] f32.
void keydiff_scores(const float* keys, int T, int d, float* out);
// knorm: -||k_j||.
void knorm_scores(const float* keys, int T, int d, float* out);

// surprisal: out[j] = the largest nats[i] over the held tokens i with |pos[i] - pos[j]| <=
// radius (pos ascending).
void surprisal_scores(const float* nats, const int32_t* pos, int T, int radius, float* out);

// streaming: the first n_sink tokens, then the newest ones.
void streaming_scores(int T, int n_sink, float* out);

// random: a seeded uniform draw in [0, 1), the same on every platform.
void random_scores(uint64_t seed, uint64_t event, int layer, int head, int T, float* out);

// expected_attention. Per query head g of the group, stats + g * stride holds the sum of
// the n_steps un-rotated queries ([d]) followed by the sum of q q^T ([d][d], or its
// diagonal [d] when diag). The queries are modelled as Gaussian (mean mu, covariance S),
// rotated by the RoPE matrix averaged over positions newest_pos + 1 .. newest_pos +
// horizon: logit_j = k_j . mu' / sqrt(d) + k_j^T S' k_j / (2d), softmax over j, mean over
// the group, then (p_j + eps) * ||v_j||. The first n_outlier tokens get the row maximum.
struct ExpectedAttentionArgs {
  const float* keys;   // [T][d] post-RoPE keys
  const float* vnorm;  // [T] ||v_j||
  int T, d, G;
  const float* stats;  // G blocks of `stride` floats
  int stride;
  bool diag;
  int n_steps;
  int32_t newest_pos;
  float rope_theta;
  bool neox;
  int horizon;          // 512
  float eps;            // 0.01
  int n_outlier;        // 4
  const Kernels* kern;  // the full covariance's T x d x d products run on its qk kernel
};
size_t expected_attention_scratch_floats(int T, int d);
void expected_attention_scores(const ExpectedAttentionArgs& a, float* scratch, float* out);

}  // namespace amskv
