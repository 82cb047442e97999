// Compression events and the evidence they use. The decode step feeds every attention row
// to observe_attention() while it is hot; an event then scores, selects and compacts each
// KV head of the layer in place. Everything lives in the session's block.
#include <cmath>
#include <cstring>

#include "ams/ams_select.h"
#include "ams/score.h"
#include "runtime/session.h"

namespace amskv {
namespace {

bool needs_keys(ScorerKind k) {
  return k == ScorerKind::kKeyDiff || k == ScorerKind::kKnorm ||
         k == ScorerKind::kExpectedAttention;
}

// Offsets inside one thread's event scratch (all 64-byte aligned).
struct EventScratch {
  size_t win;        // [cap] float: window scores (ams.md step 1)
  size_t mass;       // [cap] float: the event's mass (step 2, no credit)
  size_t select;     // [cap] float: the base scorer's scores
  size_t keys;       // [cap][d] float: dequantised keys (keydiff, knorm, expected_attention)
  size_t vnorm;      // [cap] float: ||v_j|| (expected_attention)
  size_t n_queries;  // [cap] int32: queries each token has seen (h2o)
  size_t seg;        // [cap] int32: step-4 segment starts for the wipe-out count
  size_t ams_seg;    // 4 x [cap]: AMS trace (starts, lengths, masses, quotas)
  size_t select_ws;  // ams_select or topk_select workspace
  size_t scorer_ws;  // expected_attention scratch
  size_t bytes;
};

EventScratch event_scratch_layout(const Geometry& g, const Policy& p, int cap) {
  EventScratch e{};
  size_t cur = 0;
  auto carve = [&](size_t bytes, size_t* off) {
    cur = (cur + 63) / 64 * 64;
    *off = cur;
    cur += bytes;
  };
  const size_t n = (size_t)cap;
  const bool scored = p.kind == PolicyKind::kTopK || p.kind == PolicyKind::kAms;
  carve(n * 4, &e.win);
  carve(n * 4, &e.mass);
  carve(n * 4, &e.select);
  carve(scored && needs_keys(p.scorer) ? n * g.head_dim * 4 : 0, &e.keys);
  carve(scored && p.scorer == ScorerKind::kExpectedAttention ? n * 4 : 0, &e.vnorm);
  carve(scored && p.scorer == ScorerKind::kH2o ? n * 4 : 0, &e.n_queries);
  carve(n * 4, &e.seg);
  carve(p.kind == PolicyKind::kAms ? 4 * n * 4 + 3 * 64 : 0, &e.ams_seg);
  carve(p.kind == PolicyKind::kAms    ? ams_workspace_bytes(cap)
        : p.kind == PolicyKind::kTopK ? topk_workspace_bytes(cap)
                                      : 0,
        &e.select_ws);
  carve(scored && p.scorer == ScorerKind::kExpectedAttention
            ? expected_attention_scratch_floats(cap, g.head_dim) * 4
            : 0,
        &e.scorer_ws);
  e.bytes = (cur + 63) / 64 * 64;
  return e;
}

size_t event_bytes(const void* ctx, int cap) {
  const ScratchCtx* c = (const ScratchCtx*)ctx;
  return event_scratch_layout(*c->g, *c->p, cap).bytes;
}

template <typename T>
T* at(char* base, size_t off) {
  return (T*)(base + off);
}

// Converts `n` stored rows of (layer, h) to f32 rows of d floats.
void dequantize_rows(amskv_session* s, const char* rows, const float* scales, int n, float* out) {
  const size_t count = (size_t)n * s->geo.head_dim;
  if (s->geo.dtype == AMSKV_F32) {
    std::memcpy(out, rows, count * 4);
  } else if (s->geo.dtype == AMSKV_F16) {
    s->kern->from_f16((const uint16_t*)rows, out, (int)count);
  } else {
    const int d = s->geo.head_dim;
    for (int j = 0; j < n; ++j)
      for (int c = 0; c < d; ++c)
        out[(size_t)j * d + c] = (float)((const int8_t*)rows)[(size_t)j * d + c] * scales[j];
  }
}

// Adds row[0..n) summed over the group's G rows (stride ld) into acc.
void add_group_rows(const float* scores, int G, int ld, int n, float* acc) {
  for (int g = 0; g < G; ++g) {
    const float* r = scores + (size_t)g * ld;
    for (int j = 0; j < n; ++j) acc[j] += r[j];
  }
}

}  // namespace

StateSpec policy_state(const Geometry& g, const Policy& p) {
  StateSpec st{};
  if (!policy_evicts(p)) return st;
  const bool scored = p.kind == PolicyKind::kTopK || p.kind == PolicyKind::kAms;
  st.evidence = true;  // window scores: AMS and the wipe-out count of every policy
  st.base_evidence = scored && (p.scorer == ScorerKind::kTova || p.scorer == ScorerKind::kSnapkv);
  st.h2o = scored && p.scorer == ScorerKind::kH2o;
  st.credit = p.kind == PolicyKind::kAms && p.ams.use_credit;
  if (scored && p.scorer == ScorerKind::kExpectedAttention)
    st.q_stat_floats = g.head_dim + (p.ea_diag ? g.head_dim : g.head_dim * g.head_dim);
  st.event_bytes = event_bytes;
  return st;
}

// Which windows a query with `n_keys` held tokens (its own included) falls in: the last W
// queries before the event that fires when the layer holds `capacity` tokens.
static bool in_window(const amskv_session* s, int n_keys, int w) {
  return n_keys > s->capacity - w;
}

void observe_attention(amskv_session* s, int layer, int h, int n_keys, const float* scores, int ld,
                       const float* q, int32_t pos) {
  const Policy& p = s->policy;
  if (!policy_evicts(p)) return;
  const int G = s->group;
  if (in_window(s, n_keys, p.window))
    add_group_rows(scores, G, ld, n_keys, evidence_at(s, layer, h));
  if (s->state.base_evidence) {
    const int w = p.scorer == ScorerKind::kTova ? 1 : p.snap_window;
    if (in_window(s, n_keys, w))
      add_group_rows(scores, G, ld, n_keys, base_evidence_at(s, layer, h));
  }
  if (s->state.h2o) add_group_rows(scores, G, ld, n_keys, h2o_sum_at(s, layer, h));
  // expected_attention: statistics of the un-rotated queries; the first 4 positions of a
  // sequence are outliers (attention sinks) and stay out.
  if (s->state.q_stat_floats && pos >= 4 && in_window(s, n_keys, p.ea_window)) {
    const int d = s->geo.head_dim;
    for (int g = 0; g < G; ++g) {
      const float* qg = q + (size_t)g * d;
      float* st = q_stats_at(s, layer, h * G + g);
      float* qq = st + d;
      for (int c = 0; c < d; ++c) st[c] += qg[c];
      if (p.ea_diag) {
        for (int c = 0; c < d; ++c) qq[c] += qg[c] * qg[c];
      } else {
        for (int a = 0; a < d; ++a)
          for (int b = 0; b < d; ++b) qq[(size_t)a * d + b] += qg[a] * qg[b];
      }
    }
  }
}

void observe_step(amskv_session* s, int layer, int n_keys, int32_t pos) {
  const Policy& p = s->policy;
  LayerState& ls = s->layers[layer];
  ls.steps++;
  if (!policy_evicts(p)) return;
  if (in_window(s, n_keys, p.window)) ls.ev_queries++;
  if (s->state.base_evidence &&
      in_window(s, n_keys, p.scorer == ScorerKind::kTova ? 1 : p.snap_window))
    ls.base_queries++;
  if (s->state.q_stat_floats && pos >= 4 && in_window(s, n_keys, p.ea_window)) ls.q_count++;
}

namespace {

// ams.md step 1 for head h in place in its evidence row; returns the row's maximum.
float window_row(amskv_session* s, int layer, int h, int T, int w, char* ev_scratch,
                 const EventScratch& e) {
  float* row = evidence_at(s, layer, h);
  float* tmp = at<float>(ev_scratch, e.win);
  const float divisor = (float)(w > 0 ? w : 1) * s->group;
  window_scores(row, T, w, divisor, tmp);
  std::memcpy(row, tmp, (size_t)T * 4);
  float mx = row[0];
  for (int j = 1; j < T; ++j) mx = row[j] > mx ? row[j] : mx;
  return mx;
}

// Scores of the base scorer for head h into `out`.
void base_scores(amskv_session* s, int layer, int h, int T, char* ev, const EventScratch& e,
                 float* out) {
  const Policy& p = s->policy;
  const LayerState& ls = s->layers[layer];
  const int d = s->geo.head_dim, G = s->group;
  switch (p.scorer) {
    case ScorerKind::kTova: {
      // Every KV head gets the same row: the latest query, all query heads of the layer.
      float* sum = at<float>(ev, e.select);
      std::memset(sum, 0, (size_t)T * 4);
      for (int k = 0; k < s->geo.n_kv_heads; ++k) {
        const float* b = base_evidence_at(s, layer, k);
        for (int j = 0; j < T; ++j) sum[j] += b[j];
      }
      tova_scores(sum, T, (float)s->geo.n_q_heads * (ls.base_queries > 0 ? ls.base_queries : 1),
                  out);
      break;
    }
    case ScorerKind::kH2o: {
      int32_t* nq = at<int32_t>(ev, e.n_queries);
      const int32_t* born = h2o_born_at(s, layer, h);
      for (int j = 0; j < T; ++j) nq[j] = ls.steps - born[j];
      h2o_scores(h2o_sum_at(s, layer, h), nq, T, G, out);
      break;
    }
    case ScorerKind::kSnapkv:
      window_scores(base_evidence_at(s, layer, h), T, ls.base_queries,
                    (float)(ls.base_queries > 0 ? ls.base_queries : 1) * G, out);
      break;
    case ScorerKind::kExpectedAttention:
    case ScorerKind::kKeyDiff:
    case ScorerKind::kKnorm: {
      float* keys = at<float>(ev, e.keys);
      dequantize_rows(s, keys_at(s, layer, h), key_scales_at(s, layer, h), T, keys);
      if (p.scorer == ScorerKind::kKeyDiff) {
        keydiff_scores(keys, T, d, out);
      } else if (p.scorer == ScorerKind::kKnorm) {
        knorm_scores(keys, T, d, out);
      } else {
        float* vnorm = at<float>(ev, e.vnorm);
        float* row = at<float>(ev, e.scorer_ws);  // reused: one value row at a time
        for (int j = 0; j < T; ++j) {
          dequantize_rows(s, values_at(s, layer, h) + (size_t)j * d * dtype_bytes(s->geo.dtype),
                          value_scales_at(s, layer, h) + j, 1, row);
          double n2 = 0;
          for (int c = 0; c < d; ++c) n2 += (double)row[c] * row[c];
          vnorm[j] = (float)std::sqrt(n2);
        }
        ExpectedAttentionArgs a{keys,
                                vnorm,
                                T,
                                d,
                                G,
                                q_stats_at(s, layer, h * G),
                                s->state.q_stat_floats,
                                p.ea_diag,
                                ls.q_count,
                                ls.last_pos,
                                s->rope_theta,
                                s->rope_style == AMSKV_ROPE_NEOX,
                                p.ea_horizon,
                                0.01f,
                                4,
                                s->kern};
        expected_attention_scores(a, at<float>(ev, e.scorer_ws), out);
      }
      break;
    }
    case ScorerKind::kStreaming:
      streaming_scores(T, p.n_sink, out);
      break;
    case ScorerKind::kRandom:
      random_scores(p.seed, s->events, layer, h, T, out);
      break;
  }
}

}  // namespace

void compress_layer(amskv_session* s, int layer) {
  LayerState& ls = s->layers[layer];
  const Policy& p = s->policy;
  const int T = ls.n_tokens, keep = s->target, n_kv = s->geo.n_kv_heads;
  const size_t row = (size_t)s->geo.head_dim * dtype_bytes(s->geo.dtype);
  const EventScratch e = event_scratch_layout(s->geo, p, s->capacity);
  const int w = ls.ev_queries;  // queries in the window (fewer than W after a short interval)

  // Step 1 needs the whole layer's maximum: window scores of every head first.
  float layer_max = 0.f;
  if (s->state.evidence) {
    float maxes[1024];
    parallel_for(s, n_kv, [&](int h, int thread) {
      maxes[h] = window_row(s, layer, h, T, w, thread_scratch(s, thread) + s->scratch.event, e);
    });
    for (int h = 0; h < n_kv; ++h)
      layer_max = h == 0 || maxes[h] > layer_max ? maxes[h] : layer_max;
    for (int h = 0; h < n_kv; ++h) {
      float* win = evidence_at(s, layer, h);
      for (int j = T - w; j < T; ++j) win[j] = layer_max;
    }
    if (p.kind == PolicyKind::kAms && p.global_head && n_kv > 1) {  // ablation: one row for all
      float* first = evidence_at(s, layer, 0);
      for (int h = 1; h < n_kv; ++h) {
        const float* r = evidence_at(s, layer, h);
        for (int j = 0; j < T; ++j) first[j] += r[j];
      }
      for (int j = 0; j < T; ++j) first[j] /= (float)n_kv;
      for (int h = 1; h < n_kv; ++h) std::memcpy(evidence_at(s, layer, h), first, (size_t)T * 4);
    }
  }

  uint64_t segments[1024] = {0}, wiped[1024] = {0};
  auto one_head = [&](int h, int thread) {
    char* ev = thread_scratch(s, thread) + s->scratch.event;
    int32_t* kept = (int32_t*)(thread_scratch(s, thread) + s->scratch.kept);
    const float* win = s->state.evidence ? evidence_at(s, layer, h) : nullptr;
    AmsTrace trace{};
    if (p.kind == PolicyKind::kStreaming) {
      policy_select_streaming(p, T, keep, kept);
    } else {
      float* sel = at<float>(ev, e.select);
      base_scores(s, layer, h, T, ev, e, sel);
      if (p.kind == PolicyKind::kTopK) {
        topk_select(sel, T, keep, p.n_sink, p.keep_last, kept, ev + e.select_ws);
      } else {
        int32_t* t = at<int32_t>(ev, e.ams_seg);
        trace.seg_start = t;
        trace.seg_len = t + T;
        trace.seg_mass = (float*)(t + 2 * T);
        trace.seg_quota = t + 3 * T;
        trace.capacity = T;
        float* credit = s->state.credit ? credit_at(s, layer, h) : nullptr;
        ams_select(p.ams, win, sel, credit, T, keep, kept, ev + e.select_ws, e.bytes - e.select_ws,
                   &trace);
      }
    }
    // Region wipe-out (ams.md): AMS counts on the regions it cut itself; the other
    // policies on step-4 regions of this event's window mass (they have no credit).
    int n_seg = 0, n_wiped = 0;
    float* mass = at<float>(ev, e.mass);
    int32_t* seg = at<int32_t>(ev, e.seg);
    if (win) {
      ams_mass(win, T, nullptr, 0.f, 1.f, mass);
      if (p.kind == PolicyKind::kAms) {
        n_seg = trace.n_segs;
        std::memcpy(seg, trace.seg_start, (size_t)n_seg * 4);
        n_wiped = trace.n_wiped;
      } else {
        n_seg = ams_segment_mass(mass, T, p.ams.segment_mass, p.ams.min_seg_len, p.ams.max_seg_len,
                                 seg, T);
        n_wiped = ams_count_wiped(seg, n_seg, T, kept, keep);
      }
      segments[h] = (uint64_t)n_seg;
      wiped[h] = (uint64_t)n_wiped;
    }
    if (s->observer) {
      amskv_event_info info{};
      info.layer = layer;
      info.kv_head = h;
      info.n_tokens = T;
      info.n_keep = keep;
      info.positions = positions_at(s, layer, h);
      info.mass = win ? mass : nullptr;
      info.kept = kept;
      info.n_segments = n_seg;
      info.seg_start = seg;
      info.n_wiped = n_wiped;
      if (p.kind == PolicyKind::kAms) {
        info.n_ams_segments = trace.n_segs < T ? trace.n_segs : T;
        info.ams_seg_start = trace.seg_start;
        info.ams_seg_len = trace.seg_len;
        info.ams_seg_mass = trace.seg_mass;
        info.ams_seg_quota = trace.seg_quota;
      }
      s->observer(&info, s->observer_user);
    }
    // The one apply step: kept rows of every per-token array move to the front.
    const Kernels& kn = *s->kern;
    kn.gather_rows(keys_at(s, layer, h), row, kept, keep);
    kn.gather_rows(values_at(s, layer, h), row, kept, keep);
    if (s->geo.dtype == AMSKV_Q8) {
      kn.gather_rows(key_scales_at(s, layer, h), 4, kept, keep);
      kn.gather_rows(value_scales_at(s, layer, h), 4, kept, keep);
    }
    kn.gather_rows(positions_at(s, layer, h), 4, kept, keep);
    if (s->state.h2o) {
      kn.gather_rows(h2o_sum_at(s, layer, h), 4, kept, keep);
      kn.gather_rows(h2o_born_at(s, layer, h), 4, kept, keep);
    }
    // (AMS already gathered the credit of the kept tokens in kept order.)
  };
  if (s->observer) {
    for (int h = 0; h < n_kv; ++h) one_head(h, 0);  // observers run on the calling thread
  } else {
    parallel_for(s, n_kv, one_head);
  }

  // The windows start again for the next event.
  for (int h = 0; h < n_kv; ++h) {
    if (s->state.evidence) std::memset(evidence_at(s, layer, h), 0, (size_t)s->capacity * 4);
    if (s->state.base_evidence)
      std::memset(base_evidence_at(s, layer, h), 0, (size_t)s->capacity * 4);
    if (s->state.credit)
      std::memset(credit_at(s, layer, h) + keep, 0, (size_t)(s->capacity - keep) * 4);
    if (s->state.h2o)
      std::memset(h2o_sum_at(s, layer, h) + keep, 0, (size_t)(s->capacity - keep) * 4);
    segments[0] += h > 0 ? segments[h] : 0;
    wiped[0] += h > 0 ? wiped[h] : 0;
  }
  if (s->state.q_stat_floats)
    std::memset(q_stats_at(s, layer, 0), 0, (size_t)s->geo.n_q_heads * s->state.q_stat_floats * 4);
  ls.ev_queries = ls.base_queries = ls.q_count = 0;
  ls.n_tokens = keep;
  s->wipe_segments += segments[0];
  s->wiped_segments += wiped[0];
  s->events++;
  s->tokens_evicted += (uint64_t)(T - keep);
}

}  // namespace amskv
