// The event driver and the evidence it gathers. Every evicting policy keeps the AMS evidence
// window (docs/ams.md step 1): AMS segments by it and the wipe-out count of every policy
// cuts regions from it. The scorer keeps its own evidence through its hooks.
#include "ams/event.h"

#include <algorithm>
#include <cstring>

#include "ams/ams_select.h"
#include "arch/parallel.h"

namespace amskv {
namespace {

// The event scratch spans of one thread, in the order policy_needs asks for them.
enum EventSpan {
  kWin,       // [cap] float: window scores of one head (step 1)
  kMass,      // [cap] float: the event's mass without credit (step 2), for the wipe-out count
  kSelect,    // [cap] float: the scorer's scores
  kSeg,       // [cap] int32: step-4 region starts of the wipe-out count
  kTrace,     // AMS only, 4 x [cap] + slack: its segments' starts, lengths, masses, quotas
  kSelectWs,  // ams_select's or topk_select's workspace
  kScorer0,   // the scorer's spans (kScorerScratch of them)
  kSpans = kScorer0 + kScorerScratch
};
static_assert(kSpans <= kMaxEventSpans, "kv/arena.h: kMaxEventSpans");
static_assert(2 + kScorerChannels <= kMaxChannels, "kv/arena.h: kMaxChannels");

ScorerCtx scorer_ctx(const PolicyState& ps, const KvCache& kv, int layer, LayerState& l) {
  float* hs = ps.head_state + (size_t)layer * kv.g.n_q_heads * ps.head_floats;
  return ScorerCtx{ps.p,    kv,       layer,         ps.group, ps.ch_scorer, hs,
                   l.cells, l.policy, ps.rope_theta, ps.neox,  ps.events};
}

char* thread_slot(const PolicyState& ps, int thread) {
  return ps.base + ps.layout->thread_slots + (size_t)thread * ps.layout->thread_bytes;
}

template <typename T>
T* span(const PolicyState& ps, char* slot, int i) {
  return (T*)(slot + ps.layout->event[i]);
}

// Step 1 for every head of the layer in place in its window row, then the window positions
// get the layer's maximum (0 with apart=1; with global_head every head the mean row).
void window_evidence(const PolicyState& ps, const KvCache& kv, int layer, int T, int w) {
  const int n_kv = kv.g.n_kv_heads;
  float maxes[1024];
  parallel_for(kv.g.n_threads, n_kv, [&](int h, int thread) {
    float* row = kv_f32(kv, ps.ch_window, layer, h);
    float* tmp = span<float>(ps, thread_slot(ps, thread), kWin);
    const float divisor = (float)(w > 0 ? w : 1) * ps.group;
    window_scores(row, T, w, divisor, tmp);
    std::memcpy(row, tmp, (size_t)T * 4);
    float mx = row[0];
    for (int j = 1; j < T; ++j) mx = row[j] > mx ? row[j] : mx;
    maxes[h] = mx;
  });
  float layer_max = 0.f;
  for (int h = 0; h < n_kv; ++h) layer_max = h == 0 || maxes[h] > layer_max ? maxes[h] : layer_max;
  // apart=1 (AMS only): the window adds no mass (select_head keeps it apart).
  const bool no_window = ps.p.kind == PolicyKind::kAms && ps.p.apart;
  for (int h = 0; h < n_kv; ++h) {
    float* win = kv_f32(kv, ps.ch_window, layer, h);
    for (int j = T - w; j < T; ++j) win[j] = no_window ? 0.f : layer_max;
  }
  if (ps.p.kind == PolicyKind::kAms && ps.p.global_head && n_kv > 1) {  // ablation
    float* first = kv_f32(kv, ps.ch_window, layer, 0);
    for (int h = 1; h < n_kv; ++h) {
      const float* r = kv_f32(kv, ps.ch_window, layer, h);
      for (int j = 0; j < T; ++j) first[j] += r[j];
    }
    for (int j = 0; j < T; ++j) first[j] /= (float)n_kv;
    for (int h = 1; h < n_kv; ++h)
      std::memcpy(kv_f32(kv, ps.ch_window, layer, h), first, (size_t)T * 4);
  }
}

// AMS's scorer_mass=f: f of the scores' share of their (relu) sum plus 1 - f of the window
// row's, into out (kWin is free once window_evidence is done).
const float* mix_mass(const float* win, const float* sel, int T, float f, float* out) {
  double sw = 0, ss = 0;
  for (int j = 0; j < T; ++j) sw += std::max(win[j], 0.f), ss += std::max(sel[j], 0.f);
  const float a = sw > 0 ? (float)((1.0 - f) / sw) : 0.f, b = ss > 0 ? (float)(f / ss) : 0.f;
  for (int j = 0; j < T; ++j) out[j] = a * std::max(win[j], 0.f) + b * std::max(sel[j], 0.f);
  return out;
}

// Top-k's chunk=N: the held tokens of one chunk of positions (pos / N) share their mean
// score. The must-keep tokens (sinks, the last keep_last) are kept anyway, so their scores
// stay out of the means.
void pool_chunks(const Policy& p, const int32_t* pos, int T, float* sel) {
  const int lo = std::min(p.n_sink, T), hi = std::max(lo, T - p.keep_last);
  for (int j = lo; j < hi;) {
    int e = j;
    double sum = 0;
    while (e < hi && pos[e] / p.chunk == pos[j] / p.chunk) sum += sel[e++];
    for (const float mean = (float)(sum / (e - j)); j < e; ++j) sel[j] = mean;
  }
}

// score_min=t: how many tokens between the must-keep ones score at least t, at most the
// slots beyond the must-keep ones; with `high`, those tokens (the best of them) ascending.
int high_tokens(const Policy& p, const float* sel, int T, int keep, int32_t* high) {
  const MustKeep must = ams_must_keep(keep, p.n_sink, p.keep_last);
  const int room = keep - must.count();
  int n = 0;
  for (int j = must.n_sink_kept; j < T - must.n_last_kept; ++j)
    if (sel[j] >= p.score_min) {
      if (high) high[n] = j;
      ++n;
    }
  if (!high) return std::min(n, room);
  if (n > room) {
    std::nth_element(high, high + room, high + n, [&](int32_t a, int32_t b) {
      return sel[a] > sel[b] || (sel[a] == sel[b] && a < b);
    });
    std::sort(high, high + room);
    n = room;
  }
  return n;
}

// AMS with score_min: the high tokens are kept first; AMS runs over the others (their window
// row, scores and credit gathered to the front) with the rest of the budget, and its kept
// set, regions and credit are mapped back and merged with them. mass_ws: [T] floats (the
// gathered window row, then the high tokens' credit at its end).
void ams_with_high(const PolicyState& ps, const float* win, float* sel, float* credit, int T,
                   int keep, const int32_t* high, int n_high, float* mass_ws, int32_t* kept,
                   char* ws, size_t ws_bytes, AmsTrace* trace) {
  const int n = T - n_high, k = keep - n_high;
  float* hc = mass_ws + n;
  for (int j = 0, b = 0, o = 0; j < T; ++j) {
    if (b < n_high && high[b] == j) {
      if (credit) hc[b] = credit[j];
      ++b;
      continue;
    }
    mass_ws[o] = win[j];
    sel[o] = sel[j];
    if (credit) credit[o] = credit[j];
    ++o;
  }
  ams_select(ps.p.ams, mass_ws, sel, credit, n, k, kept, ws, ws_bytes, trace);
  // Gathered index c is the c-th position that is not high.
  auto to_position = [&](int32_t* idx, int m) {
    for (int j = 0, b = 0; j < m; ++j) {
      int o = idx[j] + b;
      while (b < n_high && high[b] <= o) ++b, ++o;
      idx[j] = o;
    }
  };
  to_position(kept, k);
  const int n_segs = std::min(trace->n_segs, trace->capacity);
  to_position(trace->seg_start, n_segs);
  for (int i = 0; i < n_segs; ++i)
    trace->seg_len[i] = ams_segment_length(trace->seg_start, n_segs, T, i);
  for (int i = keep - 1, a = k - 1, b = n_high - 1; b >= 0; --i) {
    if (a >= 0 && kept[a] > high[b]) {
      kept[i] = kept[a];
      if (credit) credit[i] = credit[a];
      --a;
    } else {
      kept[i] = high[b];
      if (credit) credit[i] = hc[b];
      --b;
    }
  }
  trace->n_wiped = ams_count_wiped(trace->seg_start, n_segs, T, kept, keep);
}

// The kept set of head h: streaming, or the scorer's scores through global top-k or AMS.
void select_head(const PolicyState& ps, const ScorerCtx& c, int h, int T, char* slot, int32_t* kept,
                 AmsTrace* trace) {
  const Policy& p = ps.p;
  const int keep = ps.target;
  if (p.kind == PolicyKind::kStreaming) {
    policy_select_streaming(p, T, keep, kept);
    return;
  }
  float* sel = span<float>(ps, slot, kSelect);
  char* scratch[kScorerScratch];
  for (int i = 0; i < kScorerScratch; ++i) scratch[i] = span<char>(ps, slot, kScorer0 + i);
  ps.scorer->score(c, h, T, scratch, sel);
  char* ws = span<char>(ps, slot, kSelectWs);
  if (p.kind == PolicyKind::kTopK) {
    if (p.chunk > 1) pool_chunks(p, kv_positions(c.kv, c.layer, h), T, sel);
    if (p.attn_share > 0.f) {
      const int free = keep - ams_must_keep(keep, p.n_sink, p.keep_last).count();
      const int n_attn = (int)(p.attn_share * (float)free + 0.5f);
      topk_select_shared(kv_f32(c.kv, ps.ch_window, c.layer, h), n_attn, sel, T, keep, p.n_sink,
                         p.keep_last, kept, ws);
      return;
    }
    if (p.score_min > 0.f) {
      // topk_select_shared takes the best n_high scores first: the high tokens.
      const int n_high = high_tokens(p, sel, T, keep, nullptr);
      topk_select_shared(sel, n_high, kv_f32(c.kv, ps.ch_window, c.layer, h), T, keep, p.n_sink,
                         p.keep_last, kept, ws);
      return;
    }
    topk_select(sel, T, keep, p.n_sink, p.keep_last, kept, ws);
    return;
  }
  int32_t* t = span<int32_t>(ps, slot, kTrace);
  trace->seg_start = t;
  trace->seg_len = t + T;
  trace->seg_mass = (float*)(t + 2 * T);
  trace->seg_quota = t + 3 * T;
  trace->capacity = T;
  const float* win = kv_f32(c.kv, ps.ch_window, c.layer, h);
  if (p.scorer_mass > 0.f) win = mix_mass(win, sel, T, p.scorer_mass, span<float>(ps, slot, kWin));
  float* credit = ps.ch_credit >= 0 ? kv_f32(c.kv, ps.ch_credit, c.layer, h) : nullptr;
  const size_t ws_bytes = ps.layout->thread_bytes - ps.layout->event[kSelectWs];
  if (p.apart) {
    // The must-keep tokens, the first n_sink and the last keep_last, are kept apart with
    // their credit; AMS cuts its regions and shares the rest of the budget over the tokens
    // between them only (keep > n_sink + keep_last: the target is above the must-keep count).
    const int head = p.n_sink, tail = p.keep_last, n = T - head - tail, k = keep - head - tail;
    amskv_ams_params ap = p.ams;
    ap.n_sink = ap.always_keep_last = 0;
    ams_select(ap, win + head, sel + head, credit ? credit + head : nullptr, n, k, kept, ws,
               ws_bytes, trace);
    for (int j = k - 1; j >= 0; --j) kept[head + j] = kept[j] + head;
    for (int j = 0; j < head; ++j) kept[j] = j;
    for (int j = 0; j < tail; ++j) {
      kept[head + k + j] = T - tail + j;
      if (credit) credit[head + k + j] = credit[T - tail + j];
    }
    for (int i = 0; i < std::min(trace->n_segs, trace->capacity); ++i) trace->seg_start[i] += head;
    return;
  }
  if (p.score_min > 0.f) {
    int32_t* high = span<int32_t>(ps, slot, kSeg);
    const int n_high = high_tokens(p, sel, T, keep, high);
    ams_with_high(ps, win, sel, credit, T, keep, high, n_high, span<float>(ps, slot, kMass), kept,
                  ws, ws_bytes, trace);
    return;
  }
  ams_select(p.ams, win, sel, credit, T, keep, kept, ws, ws_bytes, trace);
}

}  // namespace

void policy_needs(const void* ctx, int capacity, ArenaNeeds* out) {
  const PolicyNeedsCtx& pc = *(const PolicyNeedsCtx*)ctx;
  const Policy& p = *pc.p;
  *out = ArenaNeeds{};
  if (!policy_evicts(p)) return;
  const bool ams = p.kind == PolicyKind::kAms;
  auto channel = [&](bool moves) { out->channel_moves[out->n_channels++] = moves; };
  channel(false);                               // the evidence window, cleared at every event
  if (ams && p.ams.use_credit) channel(false);  // the credit: ams_select gathers it itself
  ScorerNeeds sn{};
  if (policy_scored(p) && scorer_at(p.scorer).needs)
    scorer_at(p.scorer).needs(p, *pc.g, capacity, &sn);
  for (int i = 0; i < sn.channels; ++i) channel(sn.moves[i]);
  out->head_floats = sn.head_floats;
  const size_t n = (size_t)capacity;
  size_t* e = out->event_bytes;
  e[kWin] = e[kMass] = e[kSelect] = e[kSeg] = n * 4;
  e[kTrace] = ams ? 4 * n * 4 + 3 * 64 : 0;
  e[kSelectWs] = ams                           ? ams_workspace_bytes(capacity)
                 : p.kind == PolicyKind::kTopK ? topk_workspace_bytes(capacity)
                                               : 0;
  for (int i = 0; i < kScorerScratch; ++i) e[kScorer0 + i] = sn.scratch[i];
  out->n_event_spans = kSpans;
}

void policy_init(PolicyState* ps, const Policy& p, const Geometry& g, const ArenaLayout& layout,
                 char* base, int target, float rope_theta, bool neox) {
  PolicyState s{};
  s.p = p;
  s.scorer = policy_scored(p) ? &scorer_at(p.scorer) : nullptr;
  s.target = target;
  s.group = g.n_q_heads / g.n_kv_heads;
  s.ch_window = s.ch_credit = s.ch_surprisal = -1;
  int ch = 0;
  if (policy_evicts(p)) s.ch_window = ch++;
  if (p.kind == PolicyKind::kAms && p.ams.use_credit) s.ch_credit = ch++;
  for (int i = 0; i < kScorerChannels; ++i) s.ch_scorer[i] = ch + i;
  if (s.scorer && s.scorer->needs) {
    ScorerNeeds sn{};
    s.scorer->needs(p, g, layout.capacity, &sn);
    s.scorer_window = sn.window;
    s.ch_surprisal = sn.surprisal ? s.ch_scorer[0] : -1;
  }
  s.head_state = (float*)(base + layout.head_state);
  s.head_floats = layout.head_floats;
  s.layout = &layout;
  s.base = base;
  s.rope_theta = rope_theta;
  s.neox = neox;
  *ps = s;
}

void policy_set_surprisal(const PolicyState& ps, const KvCache& kv, int layer, const LayerState& l,
                          int32_t pos, float nats) {
  for (int h = 0; h < kv.g.n_kv_heads; ++h) {
    const int32_t* p = kv_positions(kv, layer, h);
    const int32_t* at = std::lower_bound(p, p + l.cells.n_tokens, pos);
    if (at != p + l.cells.n_tokens && *at == pos)
      kv_f32(kv, ps.ch_surprisal, layer, h)[at - p] = nats;
  }
}

void policy_store(const PolicyState& ps, const KvCache& kv, int layer, LayerState& l, int h,
                  int slot) {
  if (ps.scorer && ps.scorer->store) ps.scorer->store(scorer_ctx(ps, kv, layer, l), h, slot);
}

void policy_observe(const PolicyState& ps, const KvCache& kv, int layer, LayerState& l, int h,
                    int n_keys, const float* rows, int ld, const float* q, int32_t pos) {
  if (ps.ch_window < 0) return;
  if (in_window(kv, n_keys, ps.p.window))
    add_rows(rows, ps.group, ld, n_keys, kv_f32(kv, ps.ch_window, layer, h));
  if (ps.scorer_window && in_window(kv, n_keys, ps.scorer_window))
    add_rows(rows, ps.group, ld, n_keys, kv_f32(kv, ps.ch_scorer[0], layer, h));
  if (ps.scorer && ps.scorer->observe)
    ps.scorer->observe(scorer_ctx(ps, kv, layer, l), h, n_keys, rows, ld, q, pos);
}

void policy_step(const PolicyState& ps, const KvCache& kv, int layer, LayerState& l, int n_keys,
                 int32_t pos) {
  l.policy.steps++;
  if (ps.ch_window < 0) return;
  if (in_window(kv, n_keys, ps.p.window)) l.policy.window_queries++;
  if (ps.scorer_window && in_window(kv, n_keys, ps.scorer_window)) l.policy.count[0]++;
  if (ps.scorer && ps.scorer->step) ps.scorer->step(scorer_ctx(ps, kv, layer, l), n_keys, pos);
}

void policy_event(PolicyState& ps, const KvCache& kv, int layer, LayerState& l) {
  const Policy& p = ps.p;
  const int T = l.cells.n_tokens, keep = ps.target, n_kv = kv.g.n_kv_heads;
  const ScorerCtx c = scorer_ctx(ps, kv, layer, l);
  window_evidence(ps, kv, layer, T, l.policy.window_queries);
  uint64_t segments[1024] = {0}, wiped[1024] = {0};
  auto one_head = [&](int h, int thread) {
    char* slot = thread_slot(ps, thread);
    int32_t* kept = (int32_t*)(slot + ps.layout->kept);
    AmsTrace trace{};
    select_head(ps, c, h, T, slot, kept, &trace);
    // Region wipe-out (docs/ams.md): AMS counts on the regions it cut itself; the other
    // policies on step-4 regions of this event's window mass (they have no credit).
    const float* win = kv_f32(kv, ps.ch_window, layer, h);
    float* mass = span<float>(ps, slot, kMass);
    int32_t* seg = span<int32_t>(ps, slot, kSeg);
    ams_mass(win, T, nullptr, 0.f, 1.f, mass);
    int n_seg, n_wiped;
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
    if (ps.observer) {
      amskv_event_info info{};
      info.layer = ps.global_layers ? ps.global_layers[layer] : layer;
      info.kv_head = h;
      info.n_tokens = T;
      info.n_keep = keep;
      info.positions = kv_positions(kv, layer, h);
      info.mass = mass;
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
      ps.observer(&info, ps.observer_user);
    }
    kv_compact(kv, layer, h, kept, keep);
  };
  if (ps.observer) {
    for (int h = 0; h < n_kv; ++h) one_head(h, 0);  // observers run on the calling thread
  } else {
    parallel_for(kv.g.n_threads, n_kv, one_head);
  }
  // The windows start again; the credit of tokens still to come starts at zero.
  for (int h = 0; h < n_kv; ++h) {
    std::memset(kv_f32(kv, ps.ch_window, layer, h), 0, (size_t)kv.capacity * 4);
    if (ps.scorer_window)
      std::memset(kv_f32(kv, ps.ch_scorer[0], layer, h), 0, (size_t)kv.capacity * 4);
    if (ps.ch_credit >= 0)
      std::memset(kv_f32(kv, ps.ch_credit, layer, h) + keep, 0, (size_t)(kv.capacity - keep) * 4);
    ps.wipe_segments += segments[h];
    ps.wiped_segments += wiped[h];
  }
  if (ps.scorer && ps.scorer->reset) ps.scorer->reset(c, keep);
  l.policy.window_queries = 0;
  if (ps.scorer_window) l.policy.count[0] = 0;
  l.cells.n_tokens = keep;
  ps.events++;
  ps.tokens_evicted += (uint64_t)(T - keep);
}

}  // namespace amskv
