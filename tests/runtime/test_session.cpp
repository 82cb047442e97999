// The session against a plain double-precision reference: naive softmax attention with
// RoPE over the tokens the policy should hold, for random geometries, dtypes and styles.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "amskv/amskv.h"
#include "amskv/amskv.hpp"

namespace {

// Output tolerance per storage dtype (inputs uniform in [-1, 1]): f16 keeps 11 bits, q8
// about 8 bits of each row's largest element, q4 16 steps of each block's range.
double tolerance(amskv_dtype dt) {
  return dt == AMSKV_F32   ? 2e-5
         : dt == AMSKV_F16 ? 4e-3
         : dt == AMSKV_Q8  ? 4e-2
                           : 0.15;  // q4, k8v4
}

struct Token {
  int32_t pos;
  std::vector<double> k, v;  // [n_kv][d], k already rotated
};

void rope(std::vector<double>& x, int heads, int d, int32_t pos, double theta,
          amskv_rope_style style) {
  if (style == AMSKV_ROPE_NONE) return;
  for (int h = 0; h < heads; ++h)
    for (int i = 0; i < d / 2; ++i) {
      double a = pos * std::pow(theta, -2.0 * i / d);
      int i0 = style == AMSKV_ROPE_NORMAL ? 2 * i : i;
      int i1 = style == AMSKV_ROPE_NORMAL ? 2 * i + 1 : i + d / 2;
      double x0 = x[h * d + i0], x1 = x[h * d + i1];
      x[h * d + i0] = x0 * std::cos(a) - x1 * std::sin(a);
      x[h * d + i1] = x1 * std::cos(a) + x0 * std::sin(a);
    }
}

// One layer of the reference: the held tokens in position order, and the streaming rule
// (keep the first n_sink and the most recent target - n_sink) applied when full.
struct RefLayer {
  std::vector<Token> held;
  std::vector<double> attend(const amskv_config& c, int32_t pos, const float* q, const float* k,
                             const float* v, int capacity, int target, bool evict, int window = 0) {
    const int d = c.head_dim, G = c.n_q_heads / c.n_kv_heads;
    if (window)  // a local layer sees the positions (pos - window, pos]
      held.erase(std::remove_if(held.begin(), held.end(),
                                [&](const Token& t) { return t.pos <= pos - window; }),
                 held.end());
    if ((int)held.size() == capacity && evict) {
      std::vector<Token> kept(held.begin(), held.begin() + 4);
      kept.insert(kept.end(), held.end() - (target - 4), held.end());
      held = kept;
    }
    Token t{pos, std::vector<double>(k, k + c.n_kv_heads * d),
            std::vector<double>(v, v + c.n_kv_heads * d)};
    rope(t.k, c.n_kv_heads, d, pos, c.rope_theta, c.rope_style);
    held.push_back(t);
    std::vector<double> qd(q, q + c.n_q_heads * d), out(c.n_q_heads * d, 0.0);
    rope(qd, c.n_q_heads, d, pos, c.rope_theta, c.rope_style);
    for (int hq = 0; hq < c.n_q_heads; ++hq) {
      const int h = hq / G;
      std::vector<double> s(held.size());
      double mx = -1e300, sum = 0;
      for (size_t j = 0; j < held.size(); ++j) {
        double dot = 0;
        for (int e = 0; e < d; ++e) dot += qd[hq * d + e] * held[j].k[h * d + e];
        s[j] = dot / std::sqrt((double)d);
        mx = std::max(mx, s[j]);
      }
      for (auto& x : s) sum += (x = std::exp(x - mx));
      for (size_t j = 0; j < held.size(); ++j)
        for (int e = 0; e < d; ++e) out[hq * d + e] += s[j] / sum * held[j].v[h * d + e];
    }
    return out;
  }
};

struct Geometry {
  int nq, nkv, d;
};

std::vector<float> randoms(std::mt19937& rng, size_t n) {
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<float> x(n);
  for (auto& e : x) e = u(rng);
  return x;
}

amskv_config make_config(Geometry g, amskv_dtype dt, amskv_rope_style style, const char* policy,
                         int layers = 1) {
  amskv_config c = amskv_config_default();
  c.n_layers = layers;
  c.n_q_heads = g.nq;
  c.n_kv_heads = g.nkv;
  c.head_dim = g.d;
  c.kv_dtype = dt;
  c.rope_style = style;
  c.rope_theta = 10000.f;
  c.policy = policy;
  return c;
}

// Budget that gives exactly `capacity` tokens per layer: the smallest one that fits, found
// by searching over session creation (the reference for amskv_budget_for_capacity).
size_t search_budget_for(const amskv_config& c, int capacity) {
  size_t lo = 1, hi = (size_t)1 << 30;  // 1 GiB: fits a 32-bit size_t too
  amskv_session* s;
  while (lo < hi) {  // smallest budget whose capacity reaches `capacity`
    size_t mid = lo + (hi - lo) / 2;
    int cap = -1;
    if (amskv_session_create(&c, mid, &s) == AMSKV_OK) {
      amskv_stats st;
      amskv_get_stats(s, &st);
      cap = st.capacity_tokens;
      amskv_session_destroy(s);
    }
    if (cap >= capacity)
      hi = mid;
    else
      lo = mid + 1;
  }
  return lo;
}

size_t budget_for(const amskv_config& c, int capacity) {
  return amskv_budget_for_capacity(&c, capacity);
}

void expect_close(const std::vector<float>& got, const std::vector<double>& want, double tol,
                  const std::string& what) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << what;
    ASSERT_NEAR(got[i], want[i], tol) << what << " element " << i;
  }
}

const Geometry kGeometries[] = {{1, 1, 32}, {4, 1, 64},  {6, 2, 40},
                                {9, 3, 64}, {8, 8, 128}, {2, 1, 256}};

TEST(Session, DecodeMatchesDoubleReferenceForEveryDtypeAndRopeStyle) {
  std::mt19937 rng(7);
  for (Geometry g : kGeometries)
    for (amskv_dtype dt : {AMSKV_F32, AMSKV_F16, AMSKV_Q8, AMSKV_Q4, AMSKV_K8V4, AMSKV_Q4H})
      for (amskv_rope_style style : {AMSKV_ROPE_NORMAL, AMSKV_ROPE_NEOX, AMSKV_ROPE_NONE}) {
        if (dt >= AMSKV_Q4 && g.d % 32 != 0) continue;  // refused: see Q4NeedsHeadDimOf32
        amskv_config c = make_config(g, dt, style, "full");
        amskv::Session s;
        ASSERT_EQ(s.create(c, 1 << 20), AMSKV_OK) << s.last_error();
        RefLayer ref;
        const int cap = s.stats().capacity_tokens;
        for (int t = 0; t < 40; ++t) {
          const int32_t pos = 3 * t + 1;  // gaps are allowed; positions only have to grow
          auto q = randoms(rng, g.nq * g.d), k = randoms(rng, g.nkv * g.d),
               v = randoms(rng, g.nkv * g.d);
          std::vector<float> out(q.size());
          ASSERT_EQ(s.attend(0, pos, q.data(), k.data(), v.data(), out.data()), AMSKV_OK);
          auto want = ref.attend(c, pos, q.data(), k.data(), v.data(), cap, cap, false);
          expect_close(out, want, tolerance(dt),
                       "nq " + std::to_string(g.nq) + " d " + std::to_string(g.d) + " dtype " +
                           std::to_string(dt) + " style " + std::to_string(style));
        }
        EXPECT_EQ(s.layer_tokens(0), 40);
      }
}

TEST(Session, StreamingEvictionKeepsSinksAndRecentTokens) {
  std::mt19937 rng(11);
  for (amskv_dtype dt : {AMSKV_F32, AMSKV_Q8}) {
    const Geometry g{4, 2, 32};
    amskv_config c = make_config(g, dt, AMSKV_ROPE_NORMAL, "streaming", 2);
    c.interval = 40;
    const size_t budget = budget_for(c, 120);
    amskv::Session s;
    ASSERT_EQ(s.create(c, budget), AMSKV_OK) << s.last_error();
    amskv_stats st = s.stats();
    ASSERT_EQ(st.capacity_tokens, 120);
    ASSERT_EQ(st.target_tokens, 80);
    ASSERT_LE(st.bytes_used, budget);
    RefLayer ref[2];
    int events = 0;
    for (int t = 0; t < 400; ++t) {
      for (int l = 0; l < 2; ++l) {
        const int before = s.layer_tokens(l);
        auto q = randoms(rng, g.nq * g.d), k = randoms(rng, g.nkv * g.d),
             v = randoms(rng, g.nkv * g.d);
        std::vector<float> out(q.size());
        ASSERT_EQ(s.attend(l, t, q.data(), k.data(), v.data(), out.data()), AMSKV_OK);
        auto want = ref[l].attend(c, t, q.data(), k.data(), v.data(), 120, 80, true);
        expect_close(out, want, tolerance(dt), "token " + std::to_string(t));
        const int now = s.layer_tokens(l);
        ASSERT_LE(now, 120);
        if (before == 120) {  // an event ran first: down to target, then the new token
          ASSERT_EQ(now, 81);
          ++events;
        } else {
          ASSERT_EQ(now, before + 1);
        }
      }
    }
    st = s.stats();
    EXPECT_EQ((int)st.events, events);
    EXPECT_GT(events, 10);
    EXPECT_EQ(st.tokens_evicted, (uint64_t)events * 40);
  }
}

TEST(Session, PrefillEqualsTokenByTokenDecodeAcrossEvents) {
  std::mt19937 rng(5);
  const Geometry g{6, 2, 64};
  for (amskv_dtype dt : {AMSKV_F32, AMSKV_F16, AMSKV_Q8})
    for (int threads : {1, 2}) {
      amskv_config c = make_config(g, dt, AMSKV_ROPE_NEOX, "streaming");
      c.n_threads = threads;
      c.interval = 30;
      const size_t budget = budget_for(c, 100);
      const int n = 333;  // > 3 * capacity: prefill compresses between chunks
      auto q = randoms(rng, (size_t)n * g.nq * g.d), k = randoms(rng, (size_t)n * g.nkv * g.d),
           v = randoms(rng, (size_t)n * g.nkv * g.d);
      std::vector<float> out_a(q.size()), out_b(q.size());
      amskv::Session a, b;
      ASSERT_EQ(a.create(c, budget), AMSKV_OK);
      ASSERT_EQ(b.create(c, budget), AMSKV_OK);
      ASSERT_EQ(a.prefill(0, 10, n, q.data(), k.data(), v.data(), out_a.data()), AMSKV_OK)
          << a.last_error();
      for (int t = 0; t < n; ++t)
        ASSERT_EQ(b.attend(0, 10 + t, q.data() + (size_t)t * g.nq * g.d,
                           k.data() + (size_t)t * g.nkv * g.d, v.data() + (size_t)t * g.nkv * g.d,
                           out_b.data() + (size_t)t * g.nq * g.d),
                  AMSKV_OK);
      // Same kernels over the same keys in the same order: bit-identical.
      ASSERT_EQ(0, std::memcmp(out_a.data(), out_b.data(), out_a.size() * 4));
      EXPECT_EQ(a.layer_tokens(0), b.layer_tokens(0));
      EXPECT_EQ(a.stats().events, b.stats().events);
      EXPECT_GT(a.stats().events, 5u);
    }
}

TEST(Session, ThreadCountDoesNotChangeResults) {
  std::mt19937 rng(9);
  const Geometry g{8, 4, 64};
  amskv_config c1 = make_config(g, AMSKV_F16, AMSKV_ROPE_NORMAL, "streaming", 3);
  amskv_config c2 = c1;
  c2.n_threads = 2;
  amskv::Session a, b;
  ASSERT_EQ(a.create(c1, 4 << 20), AMSKV_OK);
  ASSERT_EQ(b.create(c2, 4 << 20), AMSKV_OK);
  for (int t = 0; t < 200; ++t)
    for (int l = 0; l < 3; ++l) {
      auto q = randoms(rng, g.nq * g.d), k = randoms(rng, g.nkv * g.d),
           v = randoms(rng, g.nkv * g.d);
      std::vector<float> oa(q.size()), ob(q.size());
      ASSERT_EQ(a.attend(l, t, q.data(), k.data(), v.data(), oa.data()), AMSKV_OK);
      ASSERT_EQ(b.attend(l, t, q.data(), k.data(), v.data(), ob.data()), AMSKV_OK);
      ASSERT_EQ(0, std::memcmp(oa.data(), ob.data(), oa.size() * 4));
    }
}

TEST(Session, EveryAvailableIsaGivesTheSameAttention) {
  std::mt19937 rng(3);
  const Geometry g{9, 3, 64};
  std::vector<std::vector<float>> outs;
  std::vector<std::string> names;
  auto q = randoms(rng, 300 * g.nq * g.d), k = randoms(rng, 300 * g.nkv * g.d),
       v = randoms(rng, 300 * g.nkv * g.d);
  for (const char* isa : {"ref", "avx2", "avx512", "neon"}) {
    if (!amskv_isa_available(isa)) continue;
    ASSERT_EQ(amskv_set_isa(isa), AMSKV_OK);
    amskv_config c = make_config(g, AMSKV_F16, AMSKV_ROPE_NORMAL, "streaming");
    amskv::Session s;
    ASSERT_EQ(s.create(c, 1 << 20), AMSKV_OK);
    EXPECT_STREQ(s.stats().isa, isa);
    std::vector<float> out(q.size());
    ASSERT_EQ(s.prefill(0, 0, 300, q.data(), k.data(), v.data(), out.data()), AMSKV_OK);
    outs.push_back(out);
    names.push_back(isa);
  }
  ASSERT_EQ(amskv_set_isa("auto"), AMSKV_OK);
  for (size_t i = 1; i < outs.size(); ++i)
    for (size_t e = 0; e < outs[0].size(); ++e)
      ASSERT_NEAR(outs[i][e], outs[0][e], 1e-5) << names[i] << " vs ref, element " << e;
}

TEST(Session, ForcingAnIsaTheCpuLacksFails) {
  EXPECT_EQ(amskv_set_isa("nonsense"), AMSKV_E_UNSUPPORTED);
  EXPECT_NE(std::string(amskv_last_error(nullptr)).find("unknown ISA"), std::string::npos);
  for (const char* isa : {"avx2", "avx512", "neon"})
    if (!amskv_isa_available(isa)) {
      EXPECT_EQ(amskv_set_isa(isa), AMSKV_E_UNSUPPORTED);
      EXPECT_NE(std::string(amskv_last_error(nullptr)).find("not available"), std::string::npos);
    }
  EXPECT_EQ(amskv_set_isa("auto"), AMSKV_OK);
}

// Sliding-window layers: a local layer attends over exactly the positions of its window (gaps
// in the positions included), holds at most its window, runs no events; the global layers
// keep their policy; prefill equals decode; the budget is split and reported.
TEST(Session, LocalLayersAttendOverTheirWindowOnly) {
  std::mt19937 rng(11);
  constexpr int kWindow = 8;
  const int32_t windows[3] = {kWindow, 0, 5};
  for (Geometry g : {Geometry{4, 1, 64}, Geometry{6, 2, 40}})
    for (amskv_dtype dt : {AMSKV_F32, AMSKV_Q8}) {
      amskv_config c = make_config(g, dt, AMSKV_ROPE_NEOX, "streaming", 3);
      c.layer_window = windows;
      amskv::Session s, p;
      const size_t budget = amskv_budget_for_capacity(&c, 120);
      ASSERT_EQ(s.create(c, budget), AMSKV_OK) << s.last_error();
      ASSERT_EQ(p.create(c, budget), AMSKV_OK) << p.last_error();
      const amskv_stats st = s.stats();
      EXPECT_EQ(st.capacity_tokens, 120);
      EXPECT_EQ(st.local_layers, 2);
      EXPECT_EQ(st.local_capacity_tokens, kWindow);
      const size_t elem = dt == AMSKV_F32 ? 4 : 1, scale = dt == AMSKV_Q8 ? 4 : 0;
      EXPECT_EQ(st.local_kv_bytes, 2 * 2 * (size_t)g.nkv * kWindow * (g.d * elem + scale));
      RefLayer ref[3];
      const int cap = st.capacity_tokens, target = st.target_tokens;
      std::vector<float> qs, ks, vs;
      std::vector<int32_t> positions;
      int32_t pos = -1;
      for (int t = 0; t < 300; ++t) {
        pos += t < 200 ? 1 : t % 7 == 0 ? 9 : 2;  // consecutive, then gaps
        auto q = randoms(rng, g.nq * g.d), k = randoms(rng, g.nkv * g.d),
             v = randoms(rng, g.nkv * g.d);
        positions.push_back(pos);
        qs.insert(qs.end(), q.begin(), q.end());
        ks.insert(ks.end(), k.begin(), k.end());
        vs.insert(vs.end(), v.begin(), v.end());
        for (int l = 0; l < 3; ++l) {
          std::vector<float> out(q.size());
          ASSERT_EQ(s.attend(l, pos, q.data(), k.data(), v.data(), out.data()), AMSKV_OK);
          auto want = ref[l].attend(c, pos, q.data(), k.data(), v.data(), cap, target,
                                    windows[l] == 0, windows[l]);
          expect_close(out, want, tolerance(dt),
                       "layer " + std::to_string(l) + " token " + std::to_string(t));
          if (windows[l]) {
            EXPECT_EQ(s.layer_tokens(l), (int)ref[l].held.size());
          }
        }
      }
      EXPECT_LE(s.layer_tokens(0), kWindow);
      EXPECT_LE(s.layer_tokens(2), 5);
      EXPECT_GT(s.stats().events, 0u);  // the global layer's
      // Prefill of the consecutive part, then decode: the same outputs as decode alone.
      for (int l = 0; l < 3; ++l) {
        const size_t qn = (size_t)g.nq * g.d, kn = (size_t)g.nkv * g.d;
        std::vector<float> out(200 * qn), again(qn);
        ASSERT_EQ(p.prefill(l, 0, 200, qs.data(), ks.data(), vs.data(), out.data()), AMSKV_OK);
        std::vector<float> first(qn);
        amskv::Session d;
        ASSERT_EQ(d.create(c, budget), AMSKV_OK);
        for (int t = 0; t < 200; ++t) {
          ASSERT_EQ(d.attend(l, t, qs.data() + t * qn, ks.data() + t * kn, vs.data() + t * kn,
                             again.data()),
                    AMSKV_OK);
          for (size_t i = 0; i < qn; ++i)
            ASSERT_NEAR(out[t * qn + i], again[i], 1e-5) << "layer " << l << " token " << t;
        }
        EXPECT_EQ(p.layer_tokens(l), d.layer_tokens(l));
      }
    }
}

TEST(Session, LocalLayerWindowsAreChecked) {
  int32_t windows[2] = {4, 4};
  amskv_config c = make_config(Geometry{2, 1, 64}, AMSKV_F16, AMSKV_ROPE_NEOX, "full", 2);
  c.layer_window = windows;
  EXPECT_EQ(amskv_session_bytes(&c, 1 << 20), 0u);  // every layer local
  EXPECT_NE(std::string(amskv_last_error(nullptr)).find("at least one must be global"),
            std::string::npos);
  windows[1] = -1;
  EXPECT_EQ(amskv_session_bytes(&c, 1 << 20), 0u);
  windows[1] = 0;
  const size_t with = amskv_session_bytes(&c, 1 << 20);
  c.layer_window = nullptr;
  amskv_session* a;
  ASSERT_EQ(amskv_session_create(&c, 1 << 20, &a), AMSKV_OK);
  c.layer_window = windows;
  amskv_session* b;
  ASSERT_EQ(amskv_session_create(&c, 1 << 20, &b), AMSKV_OK);
  amskv_stats sa, sb;
  amskv_get_stats(a, &sa);
  amskv_get_stats(b, &sb);
  EXPECT_EQ(sb.bytes_used, with);
  EXPECT_GT(sb.capacity_tokens, sa.capacity_tokens);  // one global layer shares the budget
  EXPECT_EQ(sa.local_layers, 0);
  // 'full' never refuses a local layer: its ring drops what leaves the window.
  std::vector<float> q(128, 0.5f), kv(64, 0.25f), out(128);
  for (int t = 0; t < 3 * sb.capacity_tokens; ++t)
    ASSERT_EQ(amskv_attend(b, 0, t, q.data(), kv.data(), kv.data(), out.data()), AMSKV_OK);
  EXPECT_EQ(amskv_layer_tokens(b, 0), 4);
  amskv_session_destroy(a);
  amskv_session_destroy(b);
}

// A budget too small for the local layers' windows: an evicting policy gets every layer the
// same tokens (a local layer's ring is then its window, attended over exactly), within the
// budget; "full" keeps the windows and is refused, with the bytes needed, as is a budget
// below the policy's minimum.
TEST(Session, LocalWindowsShrinkWhenTheBudgetCannotHoldThem) {
  std::mt19937 rng(13);
  const Geometry g{4, 2, 64};
  const int32_t windows[3] = {256, 0, 200};
  amskv_config c = make_config(g, AMSKV_F16, AMSKV_ROPE_NEOX, "streaming", 3);
  const size_t budget = amskv_budget_for_capacity(&c, 150);  // 150 tokens in each layer
  c.layer_window = windows;
  amskv_config full = c;
  full.policy = "full";                                    // never shortens the model's windows
  ASSERT_GT(amskv_budget_for_capacity(&full, 1), budget);  // the windows alone do not fit
  EXPECT_LE(amskv_budget_for_capacity(&c, 150), budget);   // the rings keep no policy state
  amskv::Session s;
  ASSERT_EQ(s.create(c, budget), AMSKV_OK) << s.last_error();
  const amskv_stats st = s.stats();
  EXPECT_LE(st.bytes_used, budget);
  EXPECT_GE(st.capacity_tokens, 150);
  EXPECT_LT(st.capacity_tokens, 160);
  EXPECT_EQ(st.local_capacity_tokens, st.capacity_tokens);
  RefLayer ref[3];
  const int ring = st.local_capacity_tokens;
  for (int32_t pos = 0; pos < 500; ++pos) {
    auto q = randoms(rng, g.nq * g.d), k = randoms(rng, g.nkv * g.d), v = randoms(rng, g.nkv * g.d);
    for (int l = 0; l < 3; ++l) {
      std::vector<float> out(q.size());
      ASSERT_EQ(s.attend(l, pos, q.data(), k.data(), v.data(), out.data()), AMSKV_OK);
      auto want = ref[l].attend(c, pos, q.data(), k.data(), v.data(), st.capacity_tokens,
                                st.target_tokens, windows[l] == 0, windows[l] ? ring : 0);
      expect_close(out, want, tolerance(AMSKV_F16),
                   "layer " + std::to_string(l) + " token " + std::to_string(pos));
    }
  }
  EXPECT_EQ(s.layer_tokens(0), ring);
  EXPECT_EQ(s.layer_tokens(2), ring);
  EXPECT_EQ(amskv_session_bytes(&full, budget), 0u);
  EXPECT_NE(std::string(amskv_last_error(nullptr)).find("windows included"), std::string::npos);
  EXPECT_EQ(amskv_session_bytes(&c, budget / 4), 0u);
  const std::string err = amskv_last_error(nullptr);
  EXPECT_NE(err.find("too small"), std::string::npos) << err;
  EXPECT_EQ(err.find("windows included"), std::string::npos) << err;
}

TEST(Budget, CapacityFollowsTheBudgetAndTheDtype) {
  const Geometry g{9, 3, 64};
  int cap[6];
  for (amskv_dtype dt : {AMSKV_F32, AMSKV_F16, AMSKV_Q8, AMSKV_Q4, AMSKV_K8V4, AMSKV_Q4H}) {
    amskv_config c = make_config(g, dt, AMSKV_ROPE_NORMAL, "streaming", 30);
    amskv::Session s;
    const size_t budget = 8u << 20;
    ASSERT_EQ(s.create(c, budget), AMSKV_OK);
    amskv_stats st = s.stats();
    EXPECT_EQ(st.budget_bytes, budget);
    EXPECT_LE(st.bytes_used, budget);
    EXPECT_EQ(st.bytes_used, amskv_session_bytes(&c, budget));
    // One more token per layer would not fit.
    EXPECT_LT(budget - st.bytes_used, (size_t)30 * 3 * 2 * 64 * (dt == AMSKV_F32 ? 4 : 2) + 4096);
    cap[dt] = st.capacity_tokens;
  }
  // KV bytes per token and layer: 2 * 3 * 64 * {4, 2, 1 + 4/64, 20/32} plus 12 bytes of
  // positions.
  EXPECT_GT(cap[AMSKV_F16], cap[AMSKV_F32] * 3 / 2);
  EXPECT_GT(cap[AMSKV_Q8], cap[AMSKV_F16] * 3 / 2);
  EXPECT_GT(cap[AMSKV_Q4], cap[AMSKV_Q8] * 3 / 2);
  EXPECT_GT(cap[AMSKV_K8V4], cap[AMSKV_Q8] * 6 / 5);  // 68 + 40 bytes a row pair, not 136
  EXPECT_LT(cap[AMSKV_K8V4], cap[AMSKV_Q4]);
  EXPECT_EQ(cap[AMSKV_Q4H], cap[AMSKV_Q4]);  // the rotation costs no bytes
}

// A copy goes on exactly as the original: the same outputs bit for bit, the same events and
// tokens; a session of another config is refused and left as it was.
TEST(Session, CopyContinuesExactlyAsTheOriginal) {
  std::mt19937 rng(5);
  const Geometry g{4, 2, 64};
  for (const char* policy : {"streaming", "ams:tova", "h2o"})
    for (amskv_dtype dt : {AMSKV_F16, AMSKV_K8V4}) {
      amskv_config c = make_config(g, dt, AMSKV_ROPE_NORMAL, policy, 2);
      const size_t budget = amskv_budget_for_capacity(&c, 100);
      amskv::Session a, b, other;
      ASSERT_EQ(a.create(c, budget), AMSKV_OK) << a.last_error();
      ASSERT_EQ(b.create(c, budget), AMSKV_OK);
      auto step = [&](amskv::Session& s, int t, std::vector<float>* out, uint32_t seed) {
        std::mt19937 r(seed);
        std::uniform_real_distribution<float> u(-1.f, 1.f);
        std::vector<float> q(g.nq * g.d), k(g.nkv * g.d), v(g.nkv * g.d);
        for (auto* x : {&q, &k, &v})
          for (float& e : *x) e = u(r);
        out->resize(q.size());
        for (int l = 0; l < 2; ++l)
          ASSERT_EQ(s.attend(l, t, q.data(), k.data(), v.data(), out->data()), AMSKV_OK);
      };
      std::vector<float> oa, ob;
      for (int t = 0; t < 250; ++t) step(a, t, &oa, rng());
      ASSERT_EQ(b.copy_from(a), AMSKV_OK);
      EXPECT_EQ(b.stats().events, a.stats().events);
      EXPECT_GT(a.stats().events, 0u);
      for (int t = 250; t < 400; ++t) {
        const uint32_t seed = rng();
        step(a, t, &oa, seed);
        step(b, t, &ob, seed);
        ASSERT_EQ(oa, ob) << policy << " step " << t;
      }
      EXPECT_EQ(a.stats().events, b.stats().events);
      EXPECT_EQ(a.stats().tokens_evicted, b.stats().tokens_evicted);
      EXPECT_EQ(a.layer_tokens(1), b.layer_tokens(1));
      // Another capacity: refused, untouched.
      ASSERT_EQ(other.create(c, amskv_budget_for_capacity(&c, 120)), AMSKV_OK);
      EXPECT_EQ(other.copy_from(a), AMSKV_E_INVALID);
      EXPECT_NE(std::string(other.last_error()).find("differ"), std::string::npos);
      EXPECT_EQ(other.layer_tokens(0), 0);
      EXPECT_EQ(other.stats().tokens_seen, 0u);
    }
}

TEST(Session, LayerPositionsAreTheHeldTokens) {
  const Geometry g{4, 2, 32};
  amskv_config c = make_config(g, AMSKV_F16, AMSKV_ROPE_NORMAL, "streaming", 1);
  amskv::Session s;
  ASSERT_EQ(s.create(c, amskv_budget_for_capacity(&c, 120)), AMSKV_OK);
  std::mt19937 rng(3);
  std::vector<float> out(g.nq * g.d);
  for (int t = 0; t < 300; ++t) {
    auto q = randoms(rng, g.nq * g.d), k = randoms(rng, g.nkv * g.d), v = randoms(rng, g.nkv * g.d);
    ASSERT_EQ(s.attend(0, 2 * t, q.data(), k.data(), v.data(), out.data()), AMSKV_OK);
  }
  const int n = s.layer_tokens(0);
  std::vector<int32_t> pos(n + 1, -7);
  ASSERT_EQ(amskv_layer_positions(s.get(), 0, 1, pos.data(), n + 1), n);
  EXPECT_EQ(pos[n], -7);                                          // nothing beyond what it holds
  for (int i = 0; i < 4; ++i) EXPECT_EQ(pos[i], 2 * i);           // the sinks
  EXPECT_EQ(pos[n - 1], 2 * 299);                                 // the newest
  for (int i = 5; i < n; ++i) EXPECT_EQ(pos[i], pos[i - 1] + 2);  // then the recent ones
  EXPECT_EQ(amskv_layer_positions(s.get(), 0, 2, pos.data(), n), -1);
  EXPECT_EQ(amskv_layer_positions(s.get(), 1, 0, pos.data(), n), -1);
  EXPECT_EQ(amskv_layer_positions(s.get(), 0, 0, nullptr, 0), n);
}

TEST(Budget, Q4NeedsHeadDimOf32) {
  amskv_config c = make_config(Geometry{6, 2, 40}, AMSKV_Q4, AMSKV_ROPE_NORMAL, "full", 2);
  amskv_session* s = nullptr;
  EXPECT_EQ(amskv_session_create(&c, 1 << 20, &s), AMSKV_E_UNSUPPORTED);
  EXPECT_EQ(s, nullptr);
  EXPECT_NE(std::string(amskv_last_error(nullptr)).find("multiple of 32"), std::string::npos)
      << amskv_last_error(nullptr);
  c.head_dim = 64;
  ASSERT_EQ(amskv_session_create(&c, 1 << 20, &s), AMSKV_OK) << amskv_last_error(nullptr);
  amskv_session_destroy(s);
}

TEST(Budget, Q4hNeedsHeadDimPowerOfTwo) {
  amskv_config c = make_config(Geometry{6, 2, 96}, AMSKV_Q4H, AMSKV_ROPE_NORMAL, "full", 2);
  amskv_session* s = nullptr;
  EXPECT_EQ(amskv_session_create(&c, 1 << 20, &s), AMSKV_E_UNSUPPORTED);
  EXPECT_EQ(s, nullptr);
  EXPECT_NE(std::string(amskv_last_error(nullptr)).find("power of two"), std::string::npos)
      << amskv_last_error(nullptr);
  c.kv_dtype = AMSKV_Q4;  // 96 is a multiple of 32: q4 takes it
  ASSERT_EQ(amskv_session_create(&c, 1 << 20, &s), AMSKV_OK) << amskv_last_error(nullptr);
  amskv_session_destroy(s);
}

TEST(Budget, BudgetForCapacityIsTheSmallestBudgetThatHoldsIt) {
  for (const char* policy : {"streaming", "ams:expected_attention", "expected_attention,cov=full",
                             "ams:expected_attention,cov=diag", "h2o", "full"})
    for (amskv_dtype dt : {AMSKV_F32, AMSKV_Q8})
      for (int cap : {100, 257, 1000})
        for (bool local : {false, true}) {  // a 300-token window: shortened below 300
          const int32_t windows[3] = {0, 300, 0};
          amskv_config c = make_config({6, 2, 64}, dt, AMSKV_ROPE_NORMAL, policy, 3);
          c.n_threads = cap % 2 + 1;
          if (local) c.layer_window = windows;
          const size_t b = amskv_budget_for_capacity(&c, cap);
          EXPECT_EQ(b, search_budget_for(c, cap)) << policy << " " << cap << " " << local;
          amskv::Session s;
          ASSERT_EQ(s.create(c, b), AMSKV_OK) << s.last_error();
          EXPECT_EQ(s.stats().capacity_tokens, cap);
          EXPECT_EQ(s.stats().bytes_used, b);
        }
  amskv_config c = make_config({6, 2, 64}, AMSKV_F16, AMSKV_ROPE_NORMAL, "streaming");
  EXPECT_EQ(amskv_budget_for_capacity(&c, 0), 0u);
  EXPECT_EQ(amskv_budget_for_capacity(nullptr, 10), 0u);
}

// expected_attention's query covariance (head_dim^2 floats per query head and layer) when it
// costs at most an eighth of the tokens, else its diagonal; cov=full and cov=diag as asked.
TEST(Budget, CovAutoKeepsTheFullCovarianceOnlyWhereItIsCheap) {
  // 6 query heads of 64 x 64 floats in 3 layers: about 100 f32 tokens' worth of KV.
  for (const char* scorer : {"expected_attention", "ams:expected_attention"})
    for (int cap : {200, 5000}) {
      amskv_config c = make_config({6, 2, 64}, AMSKV_F32, AMSKV_ROPE_NORMAL, scorer, 3);
      const size_t b = amskv_budget_for_capacity(&c, cap);
      amskv::Session s;
      ASSERT_EQ(s.create(c, b), AMSKV_OK) << s.last_error();
      const amskv_stats st = s.stats();
      ASSERT_NE(st.ea_cov, nullptr);
      EXPECT_STREQ(st.ea_cov, cap == 200 ? "diag" : "full") << scorer << " " << cap;
      EXPECT_EQ(st.capacity_tokens, cap);
      for (const char* cov : {"full", "diag"}) {  // the same budget, the covariance forced
        const std::string forced = std::string(scorer) + ",cov=" + cov;
        c.policy = forced.c_str();
        amskv::Session f;
        if (f.create(c, b) != AMSKV_OK) continue;  // the full one may not fit at all
        EXPECT_STREQ(f.stats().ea_cov, cov);
        if (std::string(cov) != st.ea_cov) {
          // The other choice: fewer tokens, or (diag at 5000) more than an eighth more.
          if (cap == 200)
            EXPECT_LT(f.stats().capacity_tokens, cap);
          else
            EXPECT_LT(f.stats().capacity_tokens, cap + cap / 7);
        }
      }
      c.policy = "ams:tova";
      amskv::Session t;
      ASSERT_EQ(t.create(c, b), AMSKV_OK);
      EXPECT_EQ(t.stats().ea_cov, nullptr);
    }
}

TEST(Budget, TooSmallIsRefusedWithTheMinimum) {
  amskv_config c = make_config({9, 3, 64}, AMSKV_F16, AMSKV_ROPE_NORMAL, "streaming", 30);
  amskv_session* s = nullptr;
  EXPECT_EQ(amskv_session_create(&c, 10000, &s), AMSKV_E_BUDGET);
  EXPECT_EQ(s, nullptr);
  std::string msg = amskv_last_error(nullptr);
  EXPECT_NE(msg.find("at least 100 tokens"), std::string::npos) << msg;
  EXPECT_EQ(amskv_session_bytes(&c, 10000), 0u);
  // The minimum the message names does work.
  const size_t need = std::stoul(msg.substr(msg.find("takes ") + 6));
  ASSERT_EQ(amskv_session_create(&c, need, &s), AMSKV_OK) << amskv_last_error(nullptr);
  amskv_stats st;
  amskv_get_stats(s, &st);
  EXPECT_EQ(st.capacity_tokens, 100);
  amskv_session_destroy(s);
}

alignas(64) static unsigned char g_static_block[256 << 10];

TEST(Budget, SessionInACallerOwnedStaticBlock) {
  const Geometry g{4, 2, 64};
  amskv_config c = make_config(g, AMSKV_Q8, AMSKV_ROPE_NORMAL, "streaming", 2);
  amskv::Session s;
  ASSERT_EQ(s.create_in(c, g_static_block, sizeof g_static_block), AMSKV_OK) << s.last_error();
  amskv_stats st = s.stats();
  EXPECT_LE(st.bytes_used, sizeof g_static_block);
  EXPECT_EQ((void*)s.get(), (void*)g_static_block);  // the session lives in the block
  std::mt19937 rng(1);
  for (int t = 0; t < 3 * st.capacity_tokens; ++t) {
    auto q = randoms(rng, g.nq * g.d), k = randoms(rng, g.nkv * g.d), v = randoms(rng, g.nkv * g.d);
    std::vector<float> out(q.size());
    ASSERT_EQ(s.attend(t % 2, t / 2, q.data(), k.data(), v.data(), out.data()), AMSKV_OK);
  }
  EXPECT_GT(s.stats().events, 0u);
  amskv_session* bad = nullptr;  // a misaligned block is refused before it is touched
  EXPECT_EQ(amskv_session_create_in(&c, g_static_block + 1, 4096, &bad), AMSKV_E_INVALID);
  EXPECT_EQ(amskv_session_create_in(&c, g_static_block, 1024, &bad), AMSKV_E_BUDGET);  // too small
  EXPECT_EQ(bad, nullptr);
}

}  // namespace
