// AMS token selection for one KV head (docs/ams.md, steps 1 to 8) and the plain global
// top-k it replaces. Every function works on caller memory: no heap, no state.
#pragma once

#include <cstddef>
#include <cstdint>

#include "amskv/amskv.h"

namespace amskv {

// ---- Step 1: window scores ---------------------------------------------------------------
// evidence_sum[j] is the attention token j received from the last `w` queries, summed over
// the group's query heads; divisor = w * G. Tokens before the window get that mean
// box-filtered (width 5, zero padding, divide by 5); the last w tokens (the window) get the
// maximum of the row. Returns that maximum. (snapkv scores the same way over its window.)
float window_scores(const float* evidence_sum, int T, int w, float divisor, float* out);

// ---- Segmenters (step 4 and its two alternatives) ------------------------------------
// Each returns the number of segments and writes seg_start[i], the first position of
// segment i; segment i ends at seg_start[i + 1] (or n for the last). All three apply the
// same guards to the raw segments: split those longer than max_seg_len into max_seg_len
// pieces from their start, then merge forward while a segment is shorter than
// min_seg_len and a next one exists (a short last segment stays). max_segs >= n always
// suffices; -1 if more segments than max_segs would be needed. Needs n >= 1,
// 1 <= min_seg_len <= max_seg_len.

// Step 4: cut where the cumulative mass first reaches s, 2s, 3s, ... (< 1).
int ams_segment_mass(const float* mass, int n, float segment_mass, int min_seg_len, int max_seg_len,
                     int32_t* seg_start, int max_segs);

// Ablation "fixed segments": raw segments of seg_len tokens (remainder last).
int ams_segment_fixed(int n, int seg_len, int min_seg_len, int max_seg_len, int32_t* seg_start,
                      int max_segs);

// Extension: smooth the mass with a width-5 box filter (zero padding, divide by 5) and
// start a new segment at every strict local minimum i (0 < i < n-1) of the smoothed curve.
int ams_segment_valley(const float* mass, int n, int min_seg_len, int max_seg_len,
                       int32_t* seg_start, int max_segs);

inline int ams_segment_length(const int32_t* seg_start, int n_segs, int n_tokens, int i) {
  return (i + 1 < n_segs ? seg_start[i + 1] : n_tokens) - seg_start[i];
}

// ---- Steps 2 and 3: mass and credit ---------------------------------------------------
// mass = normalize(relu(window_scores) + 1e-12). With credit (non-null): credit is
// updated in place to decay * credit + (1 - decay) * mass and mass becomes
// normalize(beta * mass + (1 - beta) * normalize(credit)). Finally mass is renormalized
// once more (relu, +1e-12, divide by sum), as the reference does before segmenting.
// Needs finite window scores and finite credit >= 0.
void ams_mass(const float* window_scores, int n, float* credit, float credit_decay, float mix_beta,
              float* mass);

// Sum of mass over every segment, into seg_mass[0..n_segs).
void ams_segment_masses(const float* mass, int n, const int32_t* seg_start, int n_segs,
                        float* seg_mass);

// ---- Step 5: quotas ----------------------------------------------------------------------
// budget[i] for every segment so that the budgets sum to t_keep whenever that is reachable
// (the "min already reaches t_keep" branch can stop above t_keep when every segment is down
// to 1). use_mass = 0 shares the remainder equally instead of by seg_mass.
void ams_quotas(const int32_t* seg_start, const float* seg_mass, int n_segs, int n_tokens,
                int t_keep, int min_keep_per_segment, int use_mass, int32_t* budget);

// ---- Step 6: top-budget positions inside each segment -------------------------------------
// Writes the picked positions of all segments to picked (capacity n_tokens), segment by
// segment; returns how many. Highest score first, ties to the lower position.
int ams_pick_in_segments(const float* scores, int n_tokens, const int32_t* seg_start,
                         const int32_t* budget, int n_segs, int32_t* picked);

// ---- Step 7: must-keep positions -----------------------------------------------------------
// The first n_sink_kept and the last n_last_kept positions are always kept.
struct MustKeep {
  int n_sink_kept;
  int n_last_kept;
  int count() const { return n_sink_kept + n_last_kept; }
};
MustKeep ams_must_keep(int n_keep, int n_sink, int always_keep_last);

// ---- Step 8: final set ----------------------------------------------------------------------
// From the step-6 picks (overwritten; capacity n_tokens), keeps the must-keep positions plus
// the highest-scoring remaining picks, filling from the whole row if picks run short.
// flags: n_tokens bytes of scratch. kept: exactly n_keep ascending positions.
void ams_final_set(const float* scores, int n_tokens, int n_keep, MustKeep must, int32_t* picked,
                   int n_picked, uint8_t* flags, int32_t* kept);

// credit[j] = credit[kept[j]] for j < n_keep (in place: kept ascends, so kept[j] >= j).
void ams_gather_credit(float* credit, const int32_t* kept, int n_keep);

// Segments of kept ascending positions that hold no kept position ("wiped out").
int ams_count_wiped(const int32_t* seg_start, int n_segs, int n_tokens, const int32_t* kept,
                    int n_keep);

// ---- The whole event ---------------------------------------------------------------------
// What one event did, for metrics and observers. Every pointer is caller memory of
// `capacity` entries and may be null; ams_select fills the first min(n_segs, capacity).
struct AmsTrace {
  int32_t* seg_start = nullptr;
  int32_t* seg_len = nullptr;
  float* seg_mass = nullptr;
  int32_t* seg_quota = nullptr;  // budget of step 5, before step 8 may crowd picks out
  int capacity = 0;
  int n_segs = 0;   // out: segments of this event (may exceed capacity)
  int n_wiped = 0;  // out: segments with no kept position
};

// Scratch layout of ams_select: mass, segment masses (float), segment starts, budgets, picks
// (int32), flags (uint8), plus slack to align the start to 64 bytes.
constexpr size_t ams_workspace_bytes(int n_tokens) {
  return n_tokens < 1 ? 0 : size_t(n_tokens) * (5 * 4 + 1) + 64;
}

// Steps 2 to 8 for one KV head; see amskv_ams_select_ws in amskv.h (the credit of the kept
// tokens comes back in kept order). Checks every argument before writing anything: on error
// credit, kept and trace are untouched and the thread error says why.
amskv_status ams_select(const amskv_ams_params& p, const float* window_scores,
                        const float* select_scores, float* credit, int n_tokens, int n_keep,
                        int32_t* kept, void* ws, size_t ws_bytes, AmsTrace* trace);

// The reference's parameters (docs/ams.md).
amskv_ams_params ams_params_default();

// ---- Global top-k (the baseline) -----------------------------------------------------------
// Must-keep positions (step 7 rule) first, then the highest scores, ties to the lower
// position; kept gets n_keep ascending positions. No argument checks: needs
// 1 <= n_keep <= n, n_sink >= 0, keep_last >= 0, no NaN in scores, and
// topk_workspace_bytes(n) bytes of ws aligned to 4.
constexpr size_t topk_workspace_bytes(int n) {
  return n < 1 ? 0 : size_t(n) * (4 + 1);
}
void topk_select(const float* scores, int n, int n_keep, int n_sink, int keep_last, int32_t* kept,
                 void* ws);
// Global top-k sharing its picks between two rows: the must-keep positions, then the n_first
// best of `first` (the evidence window's attention), then the best of `scores` for the rest.
// Same needs as topk_select, plus 0 <= n_first.
void topk_select_shared(const float* first, int n_first, const float* scores, int n, int n_keep,
                        int n_sink, int keep_last, int32_t* kept, void* ws);

}  // namespace amskv
