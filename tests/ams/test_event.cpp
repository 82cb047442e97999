// The event driver (ams/event.cpp) on a block carved directly, without a session: evidence
// handed in through the hooks, one event, and what the cache holds afterwards.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <numeric>
#include <string>
#include <vector>

#include "ams/event.h"
#include "ams/policy.h"
#include "arch/error.h"
#include "kv/arena.h"
#include "kv/cache.h"

namespace {

using namespace amskv;

constexpr int kLayers = 2, kQ = 4, kKV = 2, kD = 32;

// One policy over a block of `capacity` tokens per head, as a session would set it up.
struct Rig {
  Geometry g{kLayers, kQ, kKV, kD, AMSKV_F32, 1};
  Policy p{};
  ArenaLayout layout{};
  std::vector<char> mem;
  KvCache kv{};
  PolicyState ps{};
  std::vector<LayerState> layers;
  std::vector<amskv_event_info> seen;

  Rig(const char* policy, int capacity, int interval) {
    char err[kErrorBytes];
    EXPECT_TRUE(policy_parse(policy, &p, err)) << err;
    const PolicyNeedsCtx ctx{&g, &p};
    EXPECT_TRUE(arena_layout(g, NeedsFn{policy_needs, &ctx}, capacity, 64, &layout));
    mem.assign(layout.total + 64, 0);
    char* base = mem.data() + (64 - (uintptr_t)mem.data() % 64) % 64;
    kv = kv_cache(g, layout, base, kernels_for(Isa::kRef));
    policy_init(&ps, p, g, layout, base, capacity - interval, 10000.f, false);
    layers.assign(kLayers, LayerState{KvLayer{0, -1}, PolicyLayer{}});
  }

  // Token t of layer 0: its key's norm grows with `norm(t)`, every element encodes t; the
  // attention rows it gets as a query are `attn(t, j)` over the held tokens j.
  template <typename Norm, typename Attn>
  void fill(int n, Norm norm, Attn attn) {
    LayerState& l = layers[0];
    std::vector<float> key(kD), value(kD), rows((size_t)(kQ / kKV) * kv.capacity);
    for (int t = 0; t < n; ++t) {
      for (int c = 0; c < kD; ++c) key[c] = c == 0 ? norm(t) : 0.f;
      key[1] = 1e-3f * (float)t;  // identifies the token; breaks norm ties towards lower t
      for (int c = 0; c < kD; ++c) value[c] = (float)(t + c);
      for (int h = 0; h < kKV; ++h) {
        kv_store(kv, 0, h, l.cells.n_tokens, key.data(), value.data(), 100 + t);
        policy_store(ps, kv, 0, l, h, l.cells.n_tokens);
      }
      l.cells.n_tokens++;
      l.cells.last_pos = 100 + t;
      const int n_keys = l.cells.n_tokens;
      for (int h = 0; h < kKV; ++h) {
        for (int g = 0; g < kQ / kKV; ++g)
          for (int j = 0; j < n_keys; ++j) rows[(size_t)g * kv.capacity + j] = attn(t, j);
        policy_observe(ps, kv, 0, l, h, n_keys, rows.data(), kv.capacity, key.data(), 100 + t);
      }
      policy_step(ps, kv, 0, l, n_keys, 100 + t);
    }
  }

  std::vector<int32_t> positions(int h) const {
    const int32_t* p = kv_positions(kv, 0, h);
    return std::vector<int32_t>(p, p + layers[0].cells.n_tokens);
  }

  static void observe(const amskv_event_info* e, void* user) { ((Rig*)user)->seen.push_back(*e); }
};

TEST(EventDriver, TopKKeepsTheBestScoresAndMovesEveryArray) {
  // knorm keeps the lowest key norms; norms fall then rise, so the kept set is known.
  Rig r("knorm", 120, 60);
  auto norm = [](int t) { return 1.f + (float)std::abs(t - 70); };
  r.fill(120, norm, [](int, int) { return 0.01f; });
  ASSERT_EQ(r.layers[0].cells.n_tokens, 120);
  policy_event(r.ps, r.kv, 0, r.layers[0]);
  EXPECT_EQ(r.layers[0].cells.n_tokens, 60);
  EXPECT_EQ(r.ps.events, 1u);
  EXPECT_EQ(r.ps.tokens_evicted, 60u);
  // Must keep: the first 4 and the last 32; then the 24 lowest norms of the rest: t = 58..81
  // minus the last 32 (88..119) gives 24 tokens around 70 (|t - 70| <= 11, 59..81).
  std::vector<int32_t> want;
  for (int t = 0; t < 4; ++t) want.push_back(100 + t);
  std::vector<int> middle;
  for (int t = 4; t < 88; ++t) middle.push_back(t);
  std::stable_sort(middle.begin(), middle.end(), [&](int a, int b) { return norm(a) < norm(b); });
  for (int i = 0; i < 24; ++i) want.push_back(100 + middle[i]);
  for (int t = 88; t < 120; ++t) want.push_back(100 + t);
  std::sort(want.begin(), want.end());
  for (int h = 0; h < kKV; ++h) {
    EXPECT_EQ(r.positions(h), want);
    // Keys and values moved with their positions.
    std::vector<float> k(kD), v(kD);
    for (int i = 0; i < 60; ++i) {
      kv_load_keys(r.kv, 0, h, i, 1, k.data());
      kv_load_values(r.kv, 0, h, i, 1, v.data());
      EXPECT_EQ(k[1], 1e-3f * (float)(want[i] - 100));
      EXPECT_EQ(v[3], (float)(want[i] - 100 + 3));
    }
    // The evidence window starts again.
    const float* win = kv_f32(r.kv, r.ps.ch_window, 0, h);
    EXPECT_TRUE(std::all_of(win, win + 120, [](float x) { return x == 0.f; }));
  }
  EXPECT_EQ(r.layers[0].policy.window_queries, 0);
  EXPECT_EQ(r.layers[1].cells.n_tokens, 0);  // another layer is untouched
}

TEST(EventDriver, ChunkKeepsOrDropsWholeChunks) {
  // Key norms alternate low and high, with a level per chunk of 8 positions: knorm alone keeps
  // every other token; with chunk=8 it keeps whole chunks (the lowest mean norms), one cut at
  // most. Positions are 100 + t; chunks 13..22 (positions 104..183) lie between the sinks and
  // the last 32.
  auto norm = [](int t) { return (t % 2 ? 1.f : 50.f) + (float)((100 + t) / 8 % 5); };
  for (const char* policy : {"knorm", "knorm,chunk=8"}) {
    Rig r(policy, 120, 60);
    r.fill(120, norm, [](int, int) { return 0.01f; });
    policy_event(r.ps, r.kv, 0, r.layers[0]);
    for (int h = 0; h < kKV; ++h) {
      int per_chunk[32] = {};
      for (int32_t pos : r.positions(h)) per_chunk[pos / 8]++;
      int cut = 0;
      for (int ch = 13; ch <= 22; ++ch) cut += per_chunk[ch] != 0 && per_chunk[ch] != 8;
      if (std::string(policy) == "knorm")
        EXPECT_GE(cut, 3) << "h " << h;
      else
        EXPECT_LE(cut, 1) << "h " << h;
    }
  }
}

TEST(EventDriver, AttnShareGivesItsShareToTheWindowsAttention) {
  // knorm keeps the lowest key norms, the earliest tokens here; the last queries attend to
  // positions 60..71 only. Of the 24 slots between the sinks and the last 32, attn_share=0.5
  // gives 12 to the attended tokens and the other 12 to knorm's picks.
  for (const char* policy : {"knorm", "knorm,attn_share=0.5"}) {
    Rig r(policy, 120, 60);
    r.fill(
        120, [](int t) { return 1.f + 0.01f * (float)t; },
        [](int, int j) { return j >= 60 && j < 72 ? 1.f : 0.01f; });
    policy_event(r.ps, r.kv, 0, r.layers[0]);
    const bool shared = std::string(policy) != "knorm";
    std::vector<int32_t> want;
    for (int t = 0; t < (shared ? 16 : 28); ++t) want.push_back(100 + t);
    for (int t = 60; shared && t < 72; ++t) want.push_back(100 + t);
    for (int t = 88; t < 120; ++t) want.push_back(100 + t);
    for (int h = 0; h < kKV; ++h) EXPECT_EQ(r.positions(h), want) << policy << " h " << h;
  }
}

TEST(EventDriver, SurprisalKeepsTheSurprisingTokensAndTheirNeighbours) {
  // Three surprising tokens among predictable ones, set the way amskv_set_surprisal does (a
  // position no head holds is skipped). With radius 3 the event keeps 7 positions around
  // each: 21 of the 24 slots between the sinks and the last 32, then the best of the rest.
  Rig r("surprisal,radius=3", 120, 60);
  r.fill(
      120, [](int) { return 1.f; }, [](int, int) { return 0.01f; });
  const int peaks[] = {20, 45, 70};
  for (int t = 0; t < 120; ++t) {
    float nats = 0.1f + 0.001f * (float)t;  // below any peak; later ones a little higher
    for (int p : peaks) nats = t == p ? 9.f : nats;
    policy_set_surprisal(r.ps, r.kv, 0, r.layers[0], 100 + t, nats);
  }
  policy_set_surprisal(r.ps, r.kv, 0, r.layers[0], 5000, 1.f);  // not held: nothing happens
  policy_event(r.ps, r.kv, 0, r.layers[0]);
  std::vector<int32_t> want;
  for (int t = 0; t < 4; ++t) want.push_back(100 + t);
  for (int p : peaks)
    for (int t = p - 3; t <= p + 3; ++t) want.push_back(100 + t);
  for (int t = 85; t < 88; ++t) want.push_back(100 + t);  // the 3 highest of the others
  for (int t = 88; t < 120; ++t) want.push_back(100 + t);
  std::sort(want.begin(), want.end());
  for (int h = 0; h < kKV; ++h) EXPECT_EQ(r.positions(h), want) << "h " << h;
  // The surprisals travelled with their tokens.
  const float* ch = kv_f32(r.kv, r.ps.ch_surprisal, 0, 0);
  EXPECT_EQ(ch[4], 0.1f + 0.001f * 17.f);
  EXPECT_EQ(ch[7], 9.f);
}

TEST(EventDriver, ScoreMinGivesTheScorersHighTokensFirstAndAttentionTheRest) {
  // The surprisal test's peaks (21 tokens score 9 nats with radius 3), and the last queries
  // attend to positions 50..52 only. Plain surprisal fills the 3 slots left of the 24 with the
  // next highest surprisals (85..87); with score_min=5 only the peaks are the scorer's, and
  // the window's attention fills the rest.
  for (const char* policy : {"surprisal,radius=3", "surprisal,radius=3,score_min=5"}) {
    Rig r(policy, 120, 60);
    r.fill(
        120, [](int) { return 1.f; }, [](int, int j) { return j >= 50 && j < 53 ? 1.f : 0.01f; });
    const int peaks[] = {20, 45, 70};
    for (int t = 0; t < 120; ++t) {
      float nats = 0.1f + 0.001f * (float)t;
      for (int p : peaks) nats = t == p ? 9.f : nats;
      policy_set_surprisal(r.ps, r.kv, 0, r.layers[0], 100 + t, nats);
    }
    policy_event(r.ps, r.kv, 0, r.layers[0]);
    const bool split = std::string(policy).find("score_min") != std::string::npos;
    std::vector<int32_t> want;
    for (int t = 0; t < 4; ++t) want.push_back(100 + t);
    for (int p : peaks)
      for (int t = p - 3; t <= p + 3; ++t) want.push_back(100 + t);
    for (int t = split ? 50 : 85; t < (split ? 53 : 88); ++t) want.push_back(100 + t);
    for (int t = 88; t < 120; ++t) want.push_back(100 + t);
    std::sort(want.begin(), want.end());
    for (int h = 0; h < kKV; ++h) EXPECT_EQ(r.positions(h), want) << policy << " h " << h;
  }
}

// Surprisals of 9 nats at `peaks`, low and slowly rising elsewhere, as amskv_set_surprisal
// would set them; the last queries attend to positions 50..52.
template <size_t N>
void fill_peaks(Rig& r, const int (&peaks)[N]) {
  r.fill(
      120, [](int) { return 1.f; }, [](int, int j) { return j >= 50 && j < 53 ? 1.f : 0.01f; });
  for (int t = 0; t < 120; ++t) {
    float nats = 0.1f + 0.001f * (float)t;
    for (int p : peaks) nats = t == p ? 9.f : nats;
    policy_set_surprisal(r.ps, r.kv, 0, r.layers[0], 100 + t, nats);
  }
}

TEST(EventDriver, ScoreMinUnderAmsKeepsTheHighTokensAndSharesTheRest) {
  // Under AMS score_min keeps the 21 high tokens and AMS shares the 3 slots left; the kept
  // set is the budget, ascending, with the must-keep tokens, and the credit moved with it.
  for (const char* policy : {"ams:surprisal,radius=3", "ams:surprisal,radius=3,score_min=5"}) {
    Rig r(policy, 120, 60);
    const int peaks[] = {20, 45, 70};
    fill_peaks(r, peaks);
    policy_event(r.ps, r.kv, 0, r.layers[0]);
    for (int h = 0; h < kKV; ++h) {
      const std::vector<int32_t> got = r.positions(h);
      ASSERT_EQ(got.size(), 60u);
      EXPECT_TRUE(std::adjacent_find(got.begin(), got.end(), std::greater_equal<int32_t>()) ==
                  got.end());
      int held = 0;
      for (int p : peaks)
        for (int t = p - 3; t <= p + 3; ++t)
          held += std::binary_search(got.begin(), got.end(), 100 + t);
      EXPECT_EQ(held, 21) << policy << " h " << h;
      for (int t = 0; t < 4; ++t) EXPECT_EQ(got[t], 100 + t);
      for (int t = 0; t < 32; ++t) EXPECT_EQ(got[60 - 32 + t], 100 + 88 + t);
      const float* credit = kv_f32(r.kv, r.ps.ch_credit, 0, h);
      for (int j = 0; j < 60; ++j) EXPECT_TRUE(std::isfinite(credit[j]) && credit[j] >= 0.f);
    }
  }
}

TEST(EventDriver, ScoreMinKeepsTheBestHighTokensWhenTheyAreMoreThanTheSlots) {
  // Five peaks make 35 high tokens for 24 slots: both selections keep the first 24 of them
  // (equal scores, so the lower positions), and AMS is left the must-keep tokens alone.
  for (const char* policy :
       {"surprisal,radius=3,score_min=5", "ams:surprisal,radius=3,score_min=5"}) {
    Rig r(policy, 120, 60);
    const int peaks[] = {15, 30, 45, 60, 75};
    fill_peaks(r, peaks);
    policy_event(r.ps, r.kv, 0, r.layers[0]);
    std::vector<int32_t> want;
    for (int t = 0; t < 4; ++t) want.push_back(100 + t);
    for (int p : peaks)
      for (int t = p - 3; t <= p + 3 && want.size() < 28; ++t) want.push_back(100 + t);
    for (int t = 88; t < 120; ++t) want.push_back(100 + t);
    for (int h = 0; h < kKV; ++h) EXPECT_EQ(r.positions(h), want) << policy << " h " << h;
  }
}

TEST(EventDriver, StreamingKeepsSinksAndTheMostRecent) {
  Rig r("streaming,n_sink=3", 100, 36);
  r.fill(
      100, [](int) { return 1.f; }, [](int, int) { return 0.01f; });
  policy_event(r.ps, r.kv, 0, r.layers[0]);
  std::vector<int32_t> want = {100, 101, 102};
  for (int t = 100 - 61; t < 100; ++t) want.push_back(100 + t);
  EXPECT_EQ(r.positions(0), want);
  EXPECT_EQ(r.positions(1), want);
}

TEST(EventDriver, AmsGivesEveryRegionItsQuotaAndObserversSeeIt) {
  // The window's attention covers three bands; TOVA's latest row sees only the last one.
  Rig r("ams:tova", 200, 100);
  auto attn = [](int t, int j) {
    if (t == 199) return j >= 150 ? 0.02f : 0.f;  // the latest query: one band
    return (j / 50) % 2 == 0 ? 0.01f : 0.001f;    // the window: bands 0 and 2
  };
  r.fill(
      200, [](int) { return 1.f; }, attn);
  amskv_event_observer obs = Rig::observe;
  r.ps.observer = obs;
  r.ps.observer_user = &r;
  policy_event(r.ps, r.kv, 0, r.layers[0]);
  ASSERT_EQ(r.seen.size(), (size_t)kKV);
  for (const amskv_event_info& e : r.seen) {
    EXPECT_EQ(e.n_tokens, 200);
    EXPECT_EQ(e.n_keep, 100);
    ASSERT_GT(e.n_ams_segments, 1);
    EXPECT_EQ(e.n_wiped, 0) << "AMS left a region without a token";
  }
  // Band 0 (tokens 4..49) has mass but no TOVA score: global top-k would drop it all,
  // AMS keeps its quota.
  const std::vector<int32_t> kept = r.positions(0);
  const long band0 =
      std::count_if(kept.begin(), kept.end(), [](int32_t p) { return p >= 104 && p < 150; });
  EXPECT_GE(band0, 8);
  // The credit of tokens to come starts at zero.
  const float* credit = kv_f32(r.kv, r.ps.ch_credit, 0, 0);
  EXPECT_TRUE(std::all_of(credit + 100, credit + 200, [](float x) { return x == 0.f; }));
  EXPECT_TRUE(std::any_of(credit, credit + 100, [](float x) { return x > 0.f; }));
}

// apart=1: the window's positions add no mass and AMS works on the tokens between the sinks
// and the last keep_last only, so it cuts them into more segments than the reference does,
// and the sinks and the window are still kept whole. A sink
// takes most of the attention, as in real models: the reference gives every window
// position the layer's maximum, the sink's, and most of the mass goes to the window.
TEST(EventDriver, AmsWithoutWindowMassCutsTheRestFiner) {
  auto attn = [](int, int j) { return j == 0 ? 0.5f : (j / 50) % 2 == 0 ? 0.01f : 0.001f; };
  auto norm = [](int) { return 1.f; };
  int segs[2];
  for (int v = 0; v < 2; ++v) {
    Rig r(v ? "ams:tova,min_seg_len=8,apart=1" : "ams:tova,min_seg_len=8", 200, 100);
    r.fill(200, norm, attn);
    r.ps.observer = Rig::observe;
    r.ps.observer_user = &r;
    policy_event(r.ps, r.kv, 0, r.layers[0]);
    ASSERT_EQ(r.seen.size(), (size_t)kKV);
    const amskv_event_info& e = r.seen[0];
    ASSERT_NE(e.mass, nullptr);
    EXPECT_EQ(e.n_wiped, 0);
    double window = 0;
    for (int j = 200 - 32; j < 200; ++j) window += e.mass[j];
    if (v)
      EXPECT_LT(window, 1e-6);
    else
      EXPECT_GT(window, 0.5);  // the sink's score at every window position
    segs[v] = 0;               // segments that start before the window
    for (int i = 0; i < e.n_ams_segments; ++i) segs[v] += e.ams_seg_start[i] < 200 - 32;
    const std::vector<int32_t> kept = r.positions(0);
    for (int t = 200 - 32; t < 200; ++t)
      EXPECT_TRUE(std::binary_search(kept.begin(), kept.end(), 100 + t)) << t;
    for (int t = 0; t < 4; ++t)  // the sinks
      EXPECT_TRUE(std::binary_search(kept.begin(), kept.end(), 100 + t)) << t;
    if (v)  // every region lies between the sinks and the window
      for (int i = 0; i < e.n_ams_segments; ++i) {
        EXPECT_GE(e.ams_seg_start[i], 4);
        EXPECT_LE(e.ams_seg_start[i] + e.ams_seg_len[i], 200 - 32);
      }
  }
  EXPECT_GT(segs[1], segs[0] + 2) << segs[0];
}

// scorer_mass=1: AMS takes its mass from the scores it picks by. The sink takes most of the
// attention, so the reference puts the mass in the window; positions 40..59 are the
// surprising ones, and with scorer_mass they hold most of the mass and get most regions.
TEST(EventDriver, ScorerMassCutsWhereTheScoresAre) {
  int inside[2];   // AMS regions that start inside the surprising stretch
  double mass[2];  // their share of AMS's mass
  for (int v = 0; v < 2; ++v) {
    Rig r(v ? "ams:surprisal,radius=0,min_seg_len=8,scorer_mass=1"
            : "ams:surprisal,radius=0,min_seg_len=8",
          200, 100);
    r.fill(
        200, [](int) { return 1.f; }, [](int, int j) { return j == 0 ? 0.5f : 0.01f; });
    for (int t = 0; t < 200; ++t)
      policy_set_surprisal(r.ps, r.kv, 0, r.layers[0], 100 + t, t >= 40 && t < 60 ? 5.f : 0.1f);
    r.ps.observer = Rig::observe;
    r.ps.observer_user = &r;
    policy_event(r.ps, r.kv, 0, r.layers[0]);
    ASSERT_EQ(r.seen.size(), (size_t)kKV);
    const amskv_event_info& e = r.seen[0];
    inside[v] = 0;
    mass[v] = 0;
    for (int i = 0; i < e.n_ams_segments; ++i)
      if (e.ams_seg_start[i] >= 40 && e.ams_seg_start[i] < 60)
        inside[v]++, mass[v] += e.ams_seg_mass[i];
  }
  EXPECT_GE(inside[1], 2);
  EXPECT_GT(inside[1], inside[0]);
  EXPECT_GT(mass[1], 0.5);  // 20 x 5 nats against 180 x 0.1
  EXPECT_LT(mass[0], 0.1);  // the reference's mass is in the sink and the window
}

TEST(EventDriver, H2oStateTravelsWithItsTokens) {
  Rig r("h2o", 80, 40);
  // Token j receives attention proportional to j from every query: old tokens that got much
  // are kept. The sums and arrival steps move with their tokens.
  r.fill(
      80, [](int) { return 1.f; }, [](int, int j) { return 0.001f * (float)(j % 10); });
  const int ch_sum = r.ps.ch_scorer[0], ch_born = r.ps.ch_scorer[1];
  std::vector<float> sum_before(kv_f32(r.kv, ch_sum, 0, 1), kv_f32(r.kv, ch_sum, 0, 1) + 80);
  std::vector<int32_t> born_before(kv_i32(r.kv, ch_born, 0, 1), kv_i32(r.kv, ch_born, 0, 1) + 80);
  for (int t = 0; t < 80; ++t) EXPECT_EQ(born_before[t], t);
  policy_event(r.ps, r.kv, 0, r.layers[0]);
  const std::vector<int32_t> kept = r.positions(1);
  ASSERT_EQ(kept.size(), 40u);
  for (int i = 0; i < 40; ++i) {
    const int t = kept[i] - 100;
    EXPECT_EQ(kv_f32(r.kv, ch_sum, 0, 1)[i], sum_before[t]);
    EXPECT_EQ(kv_i32(r.kv, ch_born, 0, 1)[i], born_before[t]);
  }
}

}  // namespace
