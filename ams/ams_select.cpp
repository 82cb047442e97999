// AMS selection for one KV head, following the reference as restated in docs/ams.md.
//
// Numerics: element-wise work is float32 like the torch reference; every sum (normalizers,
// the cumulative mass, segment masses) is accumulated in double and rounded to float once,
// which is what torch's CPU cumsum does and is at least as accurate as its float sums.
// Rounding is std::nearbyint under the default rounding mode (half to even), matching
// Python/torch round.
#include "ams/ams_select.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "arch/error.h"

namespace amskv {
namespace {

constexpr float kMassEps = 1e-12f;     // relu(x) + 1e-12 keeps every position's mass positive
constexpr float kQuotaEps = 1e-12f;    // sum of segment masses + 1e-12 in the quota share
constexpr double kTargetSlack = 1e-6;  // targets this close to 1 are float noise of "k s < 1"
constexpr float kMinSegmentMass = 1e-9f;

// Highest score first, ties to the lower position: a strict total order, so every sort and
// selection below is deterministic.
struct HigherScore {
  const float* scores;
  bool operator()(int32_t a, int32_t b) const {
    return scores[a] > scores[b] || (scores[a] == scores[b] && a < b);
  }
};

// Turns raw segments (given left to right) into guarded ones: split at max_len, then merge
// forward while the open segment is shorter than min_len. Streaming, so it needs no scratch.
struct SegmentBuilder {
  int32_t* seg_start;
  int max_segs;
  int min_len;
  int max_len;
  int count = 0;
  int open_start = -1;  // the segment still growing by forward merges
  int open_end = -1;

  void emit(int start) {
    if (count < max_segs) seg_start[count] = start;
    ++count;
  }
  void add_piece(int a, int b) {
    if (open_start < 0) {
      open_start = a;
    } else if (open_end - open_start >= min_len) {
      emit(open_start);
      open_start = a;
    }
    open_end = b;
  }
  void add_raw(int a, int b) {
    for (; b - a > max_len; a += max_len) add_piece(a, a + max_len);
    if (b > a) add_piece(a, b);
  }
  int finish() {
    if (open_start >= 0) emit(open_start);
    return count <= max_segs ? count : -1;
  }
};

// Cut targets of step 4: target(k) = k * s for k = 1..n_targets, as float like torch.arange.
struct MassTargets {
  double step;
  int64_t count;
  explicit MassTargets(float s) : step(s), count(0) {
    // k * s < 1, ignoring k whose product is 1 up to the float rounding of s (0.02f * 50
    // is 0.99999998, a target the reference, using the double 0.02, never has).
    count = static_cast<int64_t>(std::ceil((1.0 - kTargetSlack) / step));
    while (count > 0 && double(count) * step >= 1.0 - kTargetSlack) --count;
  }
  float at(int64_t k) const { return static_cast<float>(double(k) * step); }
  // First k in [lo, count + 1] with at(k) > value (count + 1 when none).
  int64_t first_above(int64_t lo, float value) const {
    int64_t hi = count + 1;
    while (lo < hi) {
      int64_t mid = lo + (hi - lo) / 2;
      if (at(mid) > value) {
        hi = mid;
      } else {
        lo = mid + 1;
      }
    }
    return lo;
  }
};

float box5(const float* x, int n, int i) {
  float sum = 0.0f;
  for (int j = i - 2; j <= i + 2; ++j) {
    if (j >= 0 && j < n) sum += x[j];
  }
  return sum / 5.0f;  // avg_pool1d with zero padding divides by the full width everywhere
}

bool all_finite(const float* x, int n) {
  for (int i = 0; i < n; ++i) {
    if (!std::isfinite(x[i])) return false;
  }
  return true;
}

bool any_nan(const float* x, int n) {
  for (int i = 0; i < n; ++i) {
    if (std::isnan(x[i])) return true;
  }
  return false;
}

// Divides by the (double) sum rounded to float, as normalize() in the reference.
void normalize(float* x, int n) {
  double sum = 0.0;
  for (int i = 0; i < n; ++i) sum += x[i];
  const float total = static_cast<float>(sum);
  for (int i = 0; i < n; ++i) x[i] /= total;
}

void relu_eps_normalize(float* x, int n) {
  for (int i = 0; i < n; ++i) x[i] = std::max(x[i], 0.0f) + kMassEps;
  normalize(x, n);
}

// Checks p for the options it enables; message into the thread error.
amskv_status check_params(const amskv_ams_params& p) {
  // A C caller can store any int in the enum field; read it as an int so that an
  // out-of-range value is rejected rather than undefined behaviour in C++.
  int segmenter = 0;
  static_assert(sizeof(segmenter) == sizeof(p.segmenter), "enum field is not int-sized");
  std::memcpy(&segmenter, &p.segmenter, sizeof(segmenter));
  if (segmenter != AMSKV_SEG_MASS && segmenter != AMSKV_SEG_FIXED &&
      segmenter != AMSKV_SEG_VALLEY) {
    set_thread_error("ams_select: unknown segmenter %d", segmenter);
    return AMSKV_E_INVALID;
  }
  if (segmenter == AMSKV_SEG_MASS &&
      !(p.segment_mass >= kMinSegmentMass && p.segment_mass < 1.0f)) {
    set_thread_error("ams_select: segment_mass %g outside [%g, 1)", double(p.segment_mass),
                     double(kMinSegmentMass));
    return AMSKV_E_INVALID;
  }
  if (segmenter == AMSKV_SEG_FIXED && p.fixed_seg_len < 1) {
    set_thread_error("ams_select: fixed_seg_len %d < 1", p.fixed_seg_len);
    return AMSKV_E_INVALID;
  }
  if (p.min_seg_len < 1 || p.max_seg_len < p.min_seg_len) {
    set_thread_error("ams_select: need 1 <= min_seg_len (%d) <= max_seg_len (%d)", p.min_seg_len,
                     p.max_seg_len);
    return AMSKV_E_INVALID;
  }
  if (p.min_keep_per_segment < 0 || p.n_sink < 0 || p.always_keep_last < 0) {
    set_thread_error(
        "ams_select: negative count (min_keep_per_segment %d, n_sink %d, "
        "always_keep_last %d)",
        p.min_keep_per_segment, p.n_sink, p.always_keep_last);
    return AMSKV_E_INVALID;
  }
  // decay 1 would never refresh a credit row that may be all zeros, and 0/0 follows.
  if (p.use_credit && !(p.credit_decay >= 0.0f && p.credit_decay < 1.0f)) {
    set_thread_error("ams_select: credit_decay %g outside [0, 1)", double(p.credit_decay));
    return AMSKV_E_INVALID;
  }
  if (p.use_credit && !(p.mix_beta >= 0.0f && p.mix_beta <= 1.0f)) {
    set_thread_error("ams_select: mix_beta %g outside [0, 1]", double(p.mix_beta));
    return AMSKV_E_INVALID;
  }
  return AMSKV_OK;
}

amskv_status check_args(const amskv_ams_params& p, const float* window_scores,
                        const float* select_scores, const float* credit, int n_tokens, int n_keep,
                        const int32_t* kept, const void* ws, size_t ws_bytes) {
  if (!window_scores || !select_scores || !kept || !ws || (p.use_credit && !credit)) {
    set_thread_error("ams_select: null %s", !window_scores   ? "window_scores"
                                            : !select_scores ? "select_scores"
                                            : !kept          ? "kept"
                                            : !ws            ? "workspace"
                                                             : "credit (use_credit is on)");
    return AMSKV_E_NULL;
  }
  const amskv_status status = check_params(p);
  if (status != AMSKV_OK) return status;
  if (n_tokens < 1 || n_keep < 1 || n_keep > n_tokens) {
    set_thread_error("ams_select: need 1 <= n_keep (%d) <= n_tokens (%d)", n_keep, n_tokens);
    return AMSKV_E_INVALID;
  }
  if (ws_bytes < ams_workspace_bytes(n_tokens)) {
    set_thread_error("ams_select: workspace %zu bytes < %zu needed for %d tokens", ws_bytes,
                     ams_workspace_bytes(n_tokens), n_tokens);
    return AMSKV_E_WORKSPACE;
  }
  if (!all_finite(window_scores, n_tokens)) {
    set_thread_error("ams_select: NaN or Inf in window_scores");
    return AMSKV_E_NONFINITE;
  }
  // Infinite selection scores still order; only NaN has no place in the ranking.
  if (any_nan(select_scores, n_tokens)) {
    set_thread_error("ams_select: NaN in select_scores");
    return AMSKV_E_NONFINITE;
  }
  if (p.use_credit) {
    if (!all_finite(credit, n_tokens)) {
      set_thread_error("ams_select: NaN or Inf in credit");
      return AMSKV_E_NONFINITE;
    }
    for (int i = 0; i < n_tokens; ++i) {
      if (credit[i] < 0.0f) {
        set_thread_error("ams_select: negative credit %g at %d", double(credit[i]), i);
        return AMSKV_E_INVALID;
      }
    }
  }
  return AMSKV_OK;
}

}  // namespace

float window_scores(const float* evidence_sum, int T, int w, float divisor, float* out) {
  const int n = T - w > 0 ? T - w : 0;  // tokens before the window
  const float inv = divisor > 0.f ? 1.f / divisor : 0.f;
  float mx = 0.f;
  for (int j = 0; j < n; ++j) {  // avg_pool1d(kernel 5, stride 1, padding 2): /5 always
    float s = 0.f;
    for (int t = j - 2; t <= j + 2; ++t)
      if (t >= 0 && t < n) s += evidence_sum[t] * inv;
    out[j] = s / 5.f;
    mx = j == 0 || out[j] > mx ? out[j] : mx;
  }
  for (int j = n; j < T; ++j) out[j] = mx;
  return mx;
}

int ams_segment_mass(const float* mass, int n, float segment_mass, int min_seg_len, int max_seg_len,
                     int32_t* seg_start, int max_segs) {
  SegmentBuilder segs{seg_start, max_segs, min_seg_len, max_seg_len};
  const MassTargets targets(segment_mass);
  int prev = 0;  // start of the next raw segment
  // Cut positions come in ascending order; clamping to [1, n-1] and dropping empty
  // segments also drops duplicate cuts.
  auto cut = [&](int c) {
    c = std::min(std::max(c, 1), n - 1);
    if (c > prev) {
      segs.add_raw(prev, c);
      prev = c;
    }
  };
  int64_t k = 1;  // the next target no cum[i] has reached yet
  double cum = 0.0;
  for (int i = 0; i < n && k <= targets.count; ++i) {
    cum += mass[i];
    const float cum_i = static_cast<float>(cum);
    // Left searchsorted: i is the cut of every target in (cum[i-1], cum[i]].
    if (targets.at(k) <= cum_i) {
      cut(i);
      k = targets.first_above(k, cum_i);
    }
  }
  if (k <= targets.count) cut(n);  // searchsorted past the end, clamped to n-1
  segs.add_raw(prev, n);
  return segs.finish();
}

int ams_segment_fixed(int n, int seg_len, int min_seg_len, int max_seg_len, int32_t* seg_start,
                      int max_segs) {
  SegmentBuilder segs{seg_start, max_segs, min_seg_len, max_seg_len};
  for (int a = 0; a < n;) {
    const int len = std::min(seg_len, n - a);  // no a + seg_len: seg_len may be INT_MAX
    segs.add_raw(a, a + len);
    a += len;
  }
  return segs.finish();
}

int ams_segment_valley(const float* mass, int n, int min_seg_len, int max_seg_len,
                       int32_t* seg_start, int max_segs) {
  SegmentBuilder segs{seg_start, max_segs, min_seg_len, max_seg_len};
  int prev = 0;
  if (n >= 3) {
    float left = box5(mass, n, 0);
    float mid = box5(mass, n, 1);
    for (int i = 1; i + 1 < n; ++i) {
      const float right = box5(mass, n, i + 1);
      if (mid < left && mid < right) {
        segs.add_raw(prev, i);  // the valley token starts the next segment
        prev = i;
      }
      left = mid;
      mid = right;
    }
  }
  segs.add_raw(prev, n);
  return segs.finish();
}

void ams_mass(const float* window_scores, int n, float* credit, float credit_decay, float mix_beta,
              float* mass) {
  for (int i = 0; i < n; ++i) mass[i] = window_scores[i];
  relu_eps_normalize(mass, n);
  if (credit) {
    const float take = 1.0f - credit_decay;
    double credit_sum = 0.0;
    for (int i = 0; i < n; ++i) {
      credit[i] = credit_decay * credit[i] + take * mass[i];
      credit_sum += credit[i];
    }
    const float credit_total = static_cast<float>(credit_sum);
    const float other = 1.0f - mix_beta;
    for (int i = 0; i < n; ++i) mass[i] = mix_beta * mass[i] + other * (credit[i] / credit_total);
    normalize(mass, n);
  }
  relu_eps_normalize(mass, n);
}

void ams_segment_masses(const float* mass, int n, const int32_t* seg_start, int n_segs,
                        float* seg_mass) {
  for (int s = 0; s < n_segs; ++s) {
    const int end = s + 1 < n_segs ? seg_start[s + 1] : n;
    double sum = 0.0;
    for (int i = seg_start[s]; i < end; ++i) sum += mass[i];
    seg_mass[s] = static_cast<float>(sum);
  }
}

void ams_quotas(const int32_t* seg_start, const float* seg_mass, int n_segs, int n_tokens,
                int t_keep, int min_keep_per_segment, int use_mass, int32_t* budget) {
  auto length = [&](int s) { return ams_segment_length(seg_start, n_segs, n_tokens, s); };
  auto minimum = [&](int s) { return std::min(min_keep_per_segment, length(s)); };
  int64_t total = 0;
  for (int s = 0; s < n_segs; ++s) {
    budget[s] = minimum(s);
    total += budget[s];
  }
  if (total >= t_keep) {
    // Minima alone fill t_keep: trim segments above 1 in order until exact (or all are 1).
    bool changed = true;
    while (total > t_keep && changed) {
      changed = false;
      for (int s = 0; s < n_segs && total > t_keep; ++s) {
        if (budget[s] > 1) {
          --budget[s];
          --total;
          changed = true;
        }
      }
    }
    return;
  }
  const int64_t remainder = t_keep - total;
  if (use_mass) {
    double mass_sum = 0.0;
    for (int s = 0; s < n_segs; ++s) mass_sum += seg_mass[s];
    const float denom = static_cast<float>(mass_sum) + kQuotaEps;
    const float r = static_cast<float>(remainder);
    for (int s = 0; s < n_segs; ++s) {
      const float add = std::nearbyint(r * seg_mass[s] / denom);  // half to even
      budget[s] = static_cast<int32_t>(std::min<double>(length(s), budget[s] + double(add)));
    }
  } else {
    const double add = std::nearbyint(double(remainder) / n_segs);  // half to even
    for (int s = 0; s < n_segs; ++s) {
      budget[s] = static_cast<int32_t>(std::min<double>(length(s), budget[s] + add));
    }
  }
  total = 0;
  for (int s = 0; s < n_segs; ++s) total += budget[s];
  // Fix-up walks; each stops as soon as the total is exact.
  bool changed = true;
  while (total > t_keep && changed) {
    changed = false;
    for (int s = 0; s < n_segs && total > t_keep; ++s) {
      if (budget[s] > minimum(s)) {
        --budget[s];
        --total;
        changed = true;
      }
    }
  }
  changed = true;
  while (total < t_keep && changed) {
    changed = false;
    for (int s = 0; s < n_segs && total < t_keep; ++s) {
      if (budget[s] < length(s)) {
        ++budget[s];
        ++total;
        changed = true;
      }
    }
  }
}

int ams_pick_in_segments(const float* scores, int n_tokens, const int32_t* seg_start,
                         const int32_t* budget, int n_segs, int32_t* picked) {
  // Each segment is ranked in place at the end of the picks so far; this fits because the
  // picks before segment s number at most seg_start[s].
  int n_picked = 0;
  for (int s = 0; s < n_segs; ++s) {
    const int len = ams_segment_length(seg_start, n_segs, n_tokens, s);
    const int take = std::max(0, std::min<int>(budget[s], len));
    int32_t* first = picked + n_picked;
    for (int i = 0; i < len; ++i) first[i] = seg_start[s] + i;
    if (take < len) std::nth_element(first, first + take, first + len, HigherScore{scores});
    n_picked += take;
  }
  return n_picked;
}

MustKeep ams_must_keep(int n_keep, int n_sink, int always_keep_last) {
  MustKeep must;
  must.n_last_kept = std::min(always_keep_last, n_keep);
  must.n_sink_kept = std::min(n_sink, n_keep - must.n_last_kept);
  return must;
}

void ams_final_set(const float* scores, int n_tokens, int n_keep, MustKeep must, int32_t* picked,
                   int n_picked, uint8_t* flags, int32_t* kept) {
  enum : uint8_t { kFree = 0, kMust = 1, kChosen = 2 };
  std::fill(flags, flags + n_tokens, uint8_t{kFree});
  for (int i = 0; i < must.n_sink_kept; ++i) flags[i] = kMust;
  for (int i = n_tokens - must.n_last_kept; i < n_tokens; ++i) flags[i] = kMust;

  // Candidates: distinct picks that are not must-keep.
  int n_cand = 0;
  for (int j = 0; j < n_picked; ++j) {
    const int32_t pos = picked[j];
    if (flags[pos] == kFree) {
      flags[pos] = kChosen;
      picked[n_cand++] = pos;
    }
  }
  const int need = n_keep - must.count();
  const HigherScore higher{scores};
  if (n_cand > need) {
    // Keep the need best candidates; the rest go back to free.
    std::nth_element(picked, picked + need, picked + n_cand, higher);
    for (int j = need; j < n_cand; ++j) flags[picked[j]] = kFree;
  } else if (n_cand < need) {
    // Fill from the best free positions of the whole row (room: n_tokens - must slots).
    int n_free = 0;
    for (int i = 0; i < n_tokens; ++i) {
      if (flags[i] == kFree) picked[n_cand + n_free++] = i;
    }
    int32_t* free_first = picked + n_cand;
    const int fill = need - n_cand;
    if (fill < n_free) std::nth_element(free_first, free_first + fill, free_first + n_free, higher);
    for (int j = 0; j < fill; ++j) flags[free_first[j]] = kChosen;
  }
  int n_kept = 0;
  for (int i = 0; i < n_tokens; ++i) {
    if (flags[i] != kFree) kept[n_kept++] = i;
  }
}

void ams_gather_credit(float* credit, const int32_t* kept, int n_keep) {
  for (int j = 0; j < n_keep; ++j) credit[j] = credit[kept[j]];
}

int ams_count_wiped(const int32_t* seg_start, int n_segs, int n_tokens, const int32_t* kept,
                    int n_keep) {
  int wiped = 0;
  int j = 0;  // first kept position not below the current segment
  for (int s = 0; s < n_segs; ++s) {
    const int end = s + 1 < n_segs ? seg_start[s + 1] : n_tokens;
    while (j < n_keep && kept[j] < seg_start[s]) ++j;
    if (j == n_keep || kept[j] >= end) ++wiped;
  }
  return wiped;
}

amskv_status ams_select(const amskv_ams_params& p, const float* window_scores,
                        const float* select_scores, float* credit, int n_tokens, int n_keep,
                        int32_t* kept, void* ws, size_t ws_bytes, AmsTrace* trace) {
  const amskv_status status =
      check_args(p, window_scores, select_scores, credit, n_tokens, n_keep, kept, ws, ws_bytes);
  if (status != AMSKV_OK) return status;
  // Nothing below fails, so outputs are written only from here on.

  const size_t n = static_cast<size_t>(n_tokens);
  const uintptr_t base = (reinterpret_cast<uintptr_t>(ws) + 63) & ~uintptr_t{63};
  float* mass = reinterpret_cast<float*>(base);
  float* seg_mass = mass + n;
  int32_t* seg_start = reinterpret_cast<int32_t*>(seg_mass + n);
  int32_t* budget = seg_start + n;
  int32_t* picked = budget + n;
  uint8_t* flags = reinterpret_cast<uint8_t*>(picked + n);

  float* row_credit = p.use_credit ? credit : nullptr;
  ams_mass(window_scores, n_tokens, row_credit, p.credit_decay, p.mix_beta, mass);

  int n_segs = 0;
  switch (p.segmenter) {
    case AMSKV_SEG_FIXED:
      n_segs = ams_segment_fixed(n_tokens, p.fixed_seg_len, p.min_seg_len, p.max_seg_len, seg_start,
                                 n_tokens);
      break;
    case AMSKV_SEG_VALLEY:
      n_segs =
          ams_segment_valley(mass, n_tokens, p.min_seg_len, p.max_seg_len, seg_start, n_tokens);
      break;
    case AMSKV_SEG_MASS:
      n_segs = ams_segment_mass(mass, n_tokens, p.segment_mass, p.min_seg_len, p.max_seg_len,
                                seg_start, n_tokens);
      break;
  }
  ams_segment_masses(mass, n_tokens, seg_start, n_segs, seg_mass);
  ams_quotas(seg_start, seg_mass, n_segs, n_tokens, n_keep, p.min_keep_per_segment, p.use_mass,
             budget);
  const int n_picked =
      ams_pick_in_segments(select_scores, n_tokens, seg_start, budget, n_segs, picked);
  const MustKeep must = ams_must_keep(n_keep, p.n_sink, p.always_keep_last);
  ams_final_set(select_scores, n_tokens, n_keep, must, picked, n_picked, flags, kept);

  if (trace) {
    const int shown = std::min(n_segs, std::max(trace->capacity, 0));
    for (int s = 0; s < shown; ++s) {
      if (trace->seg_start) trace->seg_start[s] = seg_start[s];
      if (trace->seg_len) trace->seg_len[s] = ams_segment_length(seg_start, n_segs, n_tokens, s);
      if (trace->seg_mass) trace->seg_mass[s] = seg_mass[s];
      if (trace->seg_quota) trace->seg_quota[s] = budget[s];
    }
    trace->n_segs = n_segs;
    trace->n_wiped = ams_count_wiped(seg_start, n_segs, n_tokens, kept, n_keep);
  }
  if (row_credit) ams_gather_credit(row_credit, kept, n_keep);
  return AMSKV_OK;
}

void topk_select(const float* scores, int n, int n_keep, int n_sink, int keep_last, int32_t* kept,
                 void* ws) {
  // Global top-k is step 8 with no segment picks: must-keep, then the best of the row.
  int32_t* order = static_cast<int32_t*>(ws);
  uint8_t* flags = reinterpret_cast<uint8_t*>(order + n);
  ams_final_set(scores, n, n_keep, ams_must_keep(n_keep, n_sink, keep_last), order, 0, flags, kept);
}

void topk_select_shared(const float* first, int n_first, const float* scores, int n, int n_keep,
                        int n_sink, int keep_last, int32_t* kept, void* ws) {
  const MustKeep must = ams_must_keep(n_keep, n_sink, keep_last);
  const int n_top = std::min(n_keep, must.count() + n_first);
  topk_select(first, n, n_top, n_sink, keep_last, kept, ws);
  // The first row's picks are candidates (the must-keep ones among them drop out), so the
  // scores fill only what they leave.
  int32_t* order = static_cast<int32_t*>(ws);
  uint8_t* flags = reinterpret_cast<uint8_t*>(order + n);
  std::copy(kept, kept + n_top, order);
  ams_final_set(scores, n, n_keep, must, order, n_top, flags, kept);
}

amskv_ams_params ams_params_default() {
  amskv_ams_params p;
  p.segment_mass = 0.02f;
  p.min_seg_len = 32;
  p.max_seg_len = 1024;
  p.min_keep_per_segment = 8;
  p.n_sink = 4;
  p.always_keep_last = 32;
  p.use_credit = 1;
  p.credit_decay = 0.8f;
  p.mix_beta = 0.7f;
  p.use_mass = 1;
  p.segmenter = AMSKV_SEG_MASS;
  p.fixed_seg_len = 128;
  return p;
}

}  // namespace amskv
