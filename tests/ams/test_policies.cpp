// Every eviction policy inline in the decode step: the budget holds, events shrink layers to
// their target, evidence gathered while attending picks the tokens the scorers say, and
// AMS keeps the regions global top-k wipes out.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "amskv/amskv.h"
#include "amskv/amskv.hpp"

namespace {

// Every scorer of the table as global top-k and under AMS, the streaming policy, and the
// AMS ablations and options on the reference scorer.
std::vector<std::string> all_policies() {
  std::vector<std::string> p = {"streaming"};
  for (int i = 0; i < amskv_scorer_count(); ++i) p.push_back(amskv_scorer_at(i)->name);
  for (int i = 0; i < amskv_scorer_count(); ++i)
    p.push_back(std::string("ams:") + amskv_scorer_at(i)->name);
  const std::string ref = std::string("ams:") + amskv_scorer_at(0)->name;
  for (const char* opt : {",credit=0", ",mass=0", ",segmenter=fixed,fixed_seg_len=48",
                          ",global_head=1", ",segmenter=valley", ",apart=1", ",scorer_mass=0.5"})
    p.push_back(ref + opt);
  p.push_back(std::string(amskv_scorer_at(0)->name) + ",chunk=8");
  p.push_back("surprisal,attn_share=0.5");
  p.push_back("surprisal,score_min=8");
  p.push_back("ams:surprisal,score_min=8");
  for (int i = 0; i < amskv_scorer_count(); ++i)  // the low-memory statistics
    if (std::string(amskv_scorer_at(i)->evidence) == "queries")
      for (const char* cov : {",cov=diag", ",cov=full"})
        p.push_back(std::string(amskv_scorer_at(i)->name) + cov);
  return p;
}
const std::vector<std::string> kPolicies = all_policies();

struct Geo {
  int nq, nkv, d;
};

amskv_config config(Geo g, amskv_dtype dt, const char* policy, int layers, int threads = 1) {
  amskv_config c = amskv_config_default();
  c.n_layers = layers;
  c.n_q_heads = g.nq;
  c.n_kv_heads = g.nkv;
  c.head_dim = g.d;
  c.kv_dtype = dt;
  c.policy = policy;
  c.n_threads = threads;
  return c;
}

// The budget that holds exactly `capacity` tokens (thread count changes scratch).
size_t budget_for(const amskv_config& c, int capacity) {
  return amskv_budget_for_capacity(&c, capacity);
}

std::vector<float> randoms(std::mt19937& rng, size_t n, float scale = 1.f) {
  std::normal_distribution<float> u(0.f, scale);
  std::vector<float> x(n);
  for (auto& e : x) e = u(rng);
  return x;
}

TEST(Policies, EveryPolicyDecodesLongInsideItsBudget) {
  const Geo g{6, 2, 32};
  for (const std::string& name : kPolicies)
    for (amskv_dtype dt : {AMSKV_F32, AMSKV_F16, AMSKV_Q8, AMSKV_Q4, AMSKV_K8V4, AMSKV_Q4H}) {
      const char* policy = name.c_str();
      amskv_config c = config(g, dt, policy, 2);
      amskv::Session s;
      const size_t budget = amskv_budget_for_capacity(&c, 160);
      ASSERT_EQ(s.create(c, budget), AMSKV_OK) << policy << ": " << s.last_error();
      const amskv_stats st0 = s.stats();
      ASSERT_LE(st0.bytes_used, budget);
      const int cap = st0.capacity_tokens, target = st0.target_tokens;
      ASSERT_LT(target, cap);
      std::mt19937 rng(17);
      uint64_t events = 0;
      for (int t = 0; t < 3 * cap + 7; ++t)
        for (int l = 0; l < 2; ++l) {
          auto q = randoms(rng, g.nq * g.d), k = randoms(rng, g.nkv * g.d),
               v = randoms(rng, g.nkv * g.d);
          std::vector<float> out(q.size());
          const int before = s.layer_tokens(l);
          ASSERT_EQ(s.attend(l, t, q.data(), k.data(), v.data(), out.data()), AMSKV_OK)
              << policy << ": " << s.last_error();
          for (float x : out) ASSERT_TRUE(std::isfinite(x)) << policy;
          const int now = s.layer_tokens(l);
          ASSERT_LE(now, cap);
          if (before == cap) {
            ASSERT_EQ(now, target + 1) << policy;  // the event, then the new token
            ++events;
          }
        }
      const amskv_stats st = s.stats();
      EXPECT_EQ(st.events, events) << policy;
      EXPECT_GE(events, 4u) << policy;
      EXPECT_EQ(st.bytes_used, st0.bytes_used);
      EXPECT_GT(st.wipe_segments, 0u) << policy;
      EXPECT_LE(st.wiped_segments, st.wipe_segments);
    }
}

// Observer: what every event did.
struct Seen {
  int events = 0;
  int capacity = 0, target = 0;
  std::vector<std::vector<int32_t>> kept_positions;  // per event and head
  std::vector<amskv_event_info> infos;
  bool ok = true;
  std::string why;
};

void on_event(const amskv_event_info* e, void* user) {
  Seen* s = (Seen*)user;
  s->events++;
  auto fail = [&](const std::string& w) {
    if (s->ok) s->why = w;
    s->ok = false;
  };
  if (e->n_tokens != s->capacity) fail("n_tokens " + std::to_string(e->n_tokens));
  if (e->n_keep != s->target) fail("n_keep");
  std::vector<int32_t> pos;
  for (int i = 0; i < e->n_keep; ++i) {
    if (i > 0 && e->kept[i] <= e->kept[i - 1]) fail("kept not ascending");
    if (e->kept[i] < 0 || e->kept[i] >= e->n_tokens) fail("kept out of range");
    pos.push_back(e->positions[e->kept[i]]);
  }
  for (int i = 1; i < e->n_tokens; ++i)
    if (e->positions[i] <= e->positions[i - 1]) fail("held positions not ascending");
  if (e->mass) {
    double sum = 0;
    for (int i = 0; i < e->n_tokens; ++i) sum += e->mass[i];
    if (std::fabs(sum - 1.0) > 1e-3) fail("mass does not sum to 1");
  }
  for (int i = 1; i < e->n_segments; ++i)
    if (e->seg_start[i] <= e->seg_start[i - 1]) fail("segments not ascending");
  if (e->n_segments > 0 && e->seg_start[0] != 0) fail("first segment not at 0");
  // AMS: quotas sum to the target and every segment got at least min(8, length).
  if (e->n_ams_segments > 0) {
    long q = 0;
    for (int i = 0; i < e->n_ams_segments; ++i) {
      q += e->ams_seg_quota[i];
      if (e->ams_seg_quota[i] < std::min(8, e->ams_seg_len[i]) &&
          e->n_ams_segments * 8 <= e->n_keep)
        fail("segment quota below its minimum");
    }
    if (q != e->n_keep) fail("quotas do not sum to n_keep");
  }
  s->kept_positions.push_back(pos);
}

TEST(Policies, ObserversSeeEveryEventAndHead) {
  const Geo g{4, 2, 32};
  for (const char* policy : {"streaming", "tova", "ams:tova", "ams:expected_attention"}) {
    amskv_config c = config(g, AMSKV_F16, policy, 1);
    amskv::Session s;
    ASSERT_EQ(s.create(c, amskv_budget_for_capacity(&c, 200)), AMSKV_OK) << s.last_error();
    Seen seen;
    seen.capacity = s.stats().capacity_tokens;
    seen.target = s.stats().target_tokens;
    ASSERT_EQ(amskv_set_event_observer(s.get(), on_event, &seen), AMSKV_OK);
    std::mt19937 rng(5);
    for (int t = 0; t < 3 * seen.capacity; ++t) {
      auto q = randoms(rng, g.nq * g.d), k = randoms(rng, g.nkv * g.d),
           v = randoms(rng, g.nkv * g.d);
      std::vector<float> out(q.size());
      ASSERT_EQ(s.attend(0, 10 + t, q.data(), k.data(), v.data(), out.data()), AMSKV_OK);
    }
    EXPECT_TRUE(seen.ok) << policy << ": " << seen.why;
    EXPECT_EQ((uint64_t)seen.events, s.stats().events * g.nkv) << policy;
    // Sinks and the recent window are always kept.
    for (const auto& pos : seen.kept_positions) {
      ASSERT_EQ(pos[0], 10) << policy;
      ASSERT_EQ(pos[3], 13) << policy;
    }
  }
}

// The scenario AMS exists for. Keys come in three kinds of 64-token regions; the queries
// take turns looking for each kind, so the window's attention mass covers all three, but
// the latest query (TOVA's evidence) looks for one kind only. Global top-k keeps that kind
// and wipes out the regions of the others; AMS gives every region of the mass a quota.
TEST(Policies, AmsWipesOutFewerRegionsThanGlobalTopK) {
  const Geo g{2, 1, 64};
  double rate[2];
  int which = 0;
  for (const char* policy : {"tova", "ams:tova"}) {
    amskv_config c = config(g, AMSKV_F32, policy, 1);
    c.rope_style = AMSKV_ROPE_NONE;
    c.interval = 512;
    amskv::Session s;
    ASSERT_EQ(s.create(c, budget_for(c, 1024)), AMSKV_OK) << s.last_error();
    std::mt19937 rng(3);
    std::vector<float> dir[3] = {randoms(rng, g.d), randoms(rng, g.d), randoms(rng, g.d)};
    for (int t = 0; t < 4 * 1024; ++t) {
      auto k = randoms(rng, g.d, 0.3f), v = randoms(rng, g.d);
      const std::vector<float>& kd = dir[(t / 64) % 3];
      for (int e = 0; e < g.d; ++e) k[e] += kd[e];
      const std::vector<float>& qd = dir[t % 3];
      std::vector<float> q(g.nq * g.d);
      for (int e = 0; e < g.nq * g.d; ++e) q[e] = 0.5f * qd[e % g.d];
      std::vector<float> out(q.size());
      ASSERT_EQ(s.attend(0, t, q.data(), k.data(), v.data(), out.data()), AMSKV_OK);
    }
    amskv_stats st = s.stats();
    ASSERT_GT(st.events, 2u);
    rate[which++] = st.wipe_rate;
  }
  EXPECT_GT(rate[0], 0.1) << "the scenario should make global top-k wipe regions out";
  EXPECT_LT(rate[1], rate[0] / 4) << "ams:tova wipe-out " << rate[1] << " vs tova " << rate[0];
  std::printf("wipe-out rate: tova %.3f, ams:tova %.3f\n", rate[0], rate[1]);
}

TEST(Policies, PrefillEqualsDecodeAndThreadsChangeNothing) {
  const Geo g{6, 3, 32};
  for (const char* policy : {"ams:tova", "h2o", "ams:expected_attention,cov=diag", "snapkv"}) {
    const int n = 700;
    std::mt19937 rng(8);
    auto q = randoms(rng, (size_t)n * g.nq * g.d), k = randoms(rng, (size_t)n * g.nkv * g.d),
         v = randoms(rng, (size_t)n * g.nkv * g.d);
    std::vector<std::vector<float>> outs;
    for (int variant = 0; variant < 3; ++variant) {  // prefill, decode, decode on 2 threads
      amskv_config c = config(g, AMSKV_F16, policy, 1, variant == 2 ? 2 : 1);
      amskv::Session s;
      ASSERT_EQ(s.create(c, budget_for(c, 200)), AMSKV_OK) << s.last_error();
      ASSERT_EQ(s.stats().capacity_tokens, 200);
      std::vector<float> out(q.size());
      if (variant == 0) {
        ASSERT_EQ(s.prefill(0, 0, n, q.data(), k.data(), v.data(), out.data()), AMSKV_OK);
      } else {
        for (int t = 0; t < n; ++t)
          ASSERT_EQ(
              s.attend(0, t, q.data() + (size_t)t * g.nq * g.d, k.data() + (size_t)t * g.nkv * g.d,
                       v.data() + (size_t)t * g.nkv * g.d, out.data() + (size_t)t * g.nq * g.d),
              AMSKV_OK);
      }
      EXPECT_GT(s.stats().events, 3u);
      outs.push_back(out);
    }
    EXPECT_EQ(0, std::memcmp(outs[0].data(), outs[1].data(), outs[0].size() * 4)) << policy;
    EXPECT_EQ(0, std::memcmp(outs[1].data(), outs[2].data(), outs[1].size() * 4)) << policy;
  }
}

// The kernels of every ISA round differently, but the kept sets must agree: scores that
// differ by rounding do not reorder random data's tokens.
TEST(Policies, EveryIsaKeepsTheSameTokens) {
  const Geo g{9, 3, 64};
  const int n = 600;
  std::mt19937 rng(21);
  auto q = randoms(rng, (size_t)n * g.nq * g.d), k = randoms(rng, (size_t)n * g.nkv * g.d),
       v = randoms(rng, (size_t)n * g.nkv * g.d);
  for (const char* policy : {"ams:tova", "ams:expected_attention", "h2o", "keydiff"}) {
    std::vector<std::vector<int32_t>> kept_by_isa;
    std::vector<std::string> names;
    for (const char* isa : {"ref", "avx2", "avx512", "neon"}) {
      if (!amskv_isa_available(isa)) continue;
      ASSERT_EQ(amskv_set_isa(isa), AMSKV_OK);
      amskv_config c = config(g, AMSKV_F32, policy, 1);
      amskv::Session s;
      ASSERT_EQ(s.create(c, budget_for(c, 256)), AMSKV_OK) << s.last_error();
      std::vector<int32_t> kept;  // every event's kept positions, all heads, in order
      auto observer = [](const amskv_event_info* e, void* user) {
        auto* out = (std::vector<int32_t>*)user;
        for (int i = 0; i < e->n_keep; ++i) out->push_back(e->positions[e->kept[i]]);
      };
      amskv_set_event_observer(s.get(), observer, &kept);
      std::vector<float> out(q.size());
      ASSERT_EQ(s.prefill(0, 0, n, q.data(), k.data(), v.data(), out.data()), AMSKV_OK);
      kept_by_isa.push_back(kept);
      names.push_back(isa);
    }
    ASSERT_EQ(amskv_set_isa("auto"), AMSKV_OK);
    for (size_t i = 1; i < kept_by_isa.size(); ++i)
      EXPECT_EQ(kept_by_isa[i], kept_by_isa[0]) << policy << ": " << names[i] << " vs ref";
  }
}

TEST(Policies, OptionsAreCheckedAndDefaultsMatchTheReference) {
  amskv_ams_params p = amskv_ams_params_default();
  EXPECT_FLOAT_EQ(p.segment_mass, 0.02f);
  EXPECT_EQ(p.min_seg_len, 32);
  EXPECT_EQ(p.max_seg_len, 1024);
  EXPECT_EQ(p.min_keep_per_segment, 8);
  EXPECT_EQ(p.n_sink, 4);
  EXPECT_EQ(p.always_keep_last, 32);
  EXPECT_FLOAT_EQ(p.credit_decay, 0.8f);
  EXPECT_FLOAT_EQ(p.mix_beta, 0.7f);
  const Geo g{4, 2, 32};
  struct Bad {
    const char* policy;
    const char* message;
  } bad[] = {{"ams:nope", "unknown policy"},
             {"ams:tova,segment_mass=1.5", "segment_mass"},
             {"ams:tova,segmenter=wavy", "mass, fixed or valley"},
             {"ams:tova,min_seg_len=64,max_seg_len=32", "max_seg_len"},
             {"tova,segment_mass=0.1", "no option 'segment_mass'"},
             {"streaming,seed=3", "no option 'seed'"},
             {"ams:tova,chunk=8", "no option 'chunk'"},
             {"tova,chunk=-1", "chunk"},
             {"ams:tova,attn_share=0.5", "no option 'attn_share'"},
             {"surprisal,attn_share=1.5", "attn_share"},
             {"ams:surprisal,score_min=8,apart=1", "apart and score_min"},
             {"surprisal,score_min=-1", "score_min"},
             {"surprisal,attn_share=0.5,score_min=8", "attn_share or score_min"},
             {"surprisal,scorer_mass=0.5", "no option 'scorer_mass'"},
             {"ams:surprisal,scorer_mass=2", "scorer_mass"},
             {"expected_attention,cov=half", "full or diag"},
             {"random,seed=-1", "seed"}};
  for (const Bad& b : bad) {
    amskv_config c = config(g, AMSKV_F16, b.policy, 1);
    amskv_session* s = nullptr;
    EXPECT_EQ(amskv_session_create(&c, 1 << 20, &s), AMSKV_E_POLICY) << b.policy;
    EXPECT_NE(std::string(amskv_last_error(nullptr)).find(b.message), std::string::npos)
        << b.policy << ": " << amskv_last_error(nullptr);
  }
  amskv_config c = config(g, AMSKV_F16,
                          "ams:expected_attention,segment_mass=0.05,min_keep=4,"
                          "credit_decay=0.5,window=16,seed=9,horizon=128",
                          1);
  amskv::Session s;
  EXPECT_EQ(s.create(c, 1 << 20), AMSKV_OK) << s.last_error();
}

}  // namespace
