// Each scorer, run inline by a session, against a plain double-precision reference computed
// from the full attention matrix of a small random layer: the tokens an event keeps must be
// the ones the reference scores pick.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "ams/ams_select.h"
#include "ams/score.h"
#include "amskv/amskv.h"
#include "amskv/amskv.hpp"

namespace {

constexpr int kG = 3, kD = 32, kT = 160;  // one KV head, three query heads, 160 tokens held
constexpr float kTheta = 10000.f;

using Mat = std::vector<std::vector<double>>;

void rope(double* x, int pos) {  // NORMAL style, as the session does
  for (int i = 0; i < kD / 2; ++i) {
    const double a = pos * std::pow((double)kTheta, -2.0 * i / kD);
    const double x0 = x[2 * i], x1 = x[2 * i + 1];
    x[2 * i] = x0 * std::cos(a) - x1 * std::sin(a);
    x[2 * i + 1] = x1 * std::cos(a) + x0 * std::sin(a);
  }
}

// A random layer: pre-RoPE q (per head), k, v for kT + 1 tokens, and the full causal
// attention P[t][g][j] of every query t over tokens 0..t.
struct Layer {
  std::vector<std::vector<float>> q, k, v;  // q: [G*d], k and v: [d]
  std::vector<Mat> P;                       // [t][g][j]
  Mat krot;                                 // rotated keys, double

  explicit Layer(uint32_t seed) {
    std::mt19937 rng(seed);
    std::normal_distribution<float> n(0.f, 1.f);
    for (int t = 0; t <= kT; ++t) {
      std::vector<float> qt(kG * kD), kt(kD), vt(kD);
      for (auto& x : qt) x = n(rng);
      for (auto& x : kt) x = n(rng) * (1.f + 0.5f * (t % 7 == 0));  // some keys stand out
      for (auto& x : vt) x = n(rng);
      q.push_back(qt), k.push_back(kt), v.push_back(vt);
      std::vector<double> kr(kt.begin(), kt.end());
      rope(kr.data(), t);
      krot.push_back(kr);
    }
    for (int t = 0; t < kT; ++t) {
      Mat pt(kG, std::vector<double>(t + 1));
      for (int g = 0; g < kG; ++g) {
        std::vector<double> qr(q[t].begin() + g * kD, q[t].begin() + (g + 1) * kD);
        rope(qr.data(), t);
        double mx = -1e300, sum = 0;
        for (int j = 0; j <= t; ++j) {
          double s = 0;
          for (int c = 0; c < kD; ++c) s += qr[c] * krot[j][c];
          pt[g][j] = s / std::sqrt((double)kD);
          mx = std::max(mx, pt[g][j]);
        }
        for (double& x : pt[g]) sum += (x = std::exp(x - mx));
        for (double& x : pt[g]) x /= sum;
      }
      P.push_back(pt);
    }
  }

  // The session under `policy` with capacity kT, fed kT + 1 tokens: the event at the last
  // one compresses the first kT. Returns the kept slots and the target.
  std::vector<int32_t> run(const std::string& policy, int* target) {
    amskv_config c = amskv_config_default();
    c.n_q_heads = kG, c.n_kv_heads = 1, c.head_dim = kD, c.kv_dtype = AMSKV_F32;
    c.rope_theta = kTheta;
    c.policy = policy.c_str();
    c.interval = 100;
    amskv::Session s;
    EXPECT_EQ(s.create(c, amskv_budget_for_capacity(&c, kT)), AMSKV_OK) << s.last_error();
    EXPECT_EQ(s.stats().capacity_tokens, kT);
    *target = s.stats().target_tokens;
    std::vector<int32_t> kept;
    auto observer = [](const amskv_event_info* e, void* user) {
      auto* out = (std::vector<int32_t>*)user;
      out->assign(e->kept, e->kept + e->n_keep);
    };
    amskv_set_event_observer(s.get(), observer, &kept);
    std::vector<float> out(kG * kD);
    for (int t = 0; t <= kT; ++t)
      EXPECT_EQ(s.attend(0, t, q[t].data(), k[t].data(), v[t].data(), out.data()), AMSKV_OK);
    return kept;
  }

  // docs/ams.md step 1 from P: the last w queries, group mean, box filter, window = row max.
  std::vector<float> window(int w) const {
    std::vector<double> mean(kT, 0.0);
    for (int t = kT - w; t < kT; ++t)
      for (int g = 0; g < kG; ++g)
        for (int j = 0; j <= t; ++j) mean[j] += P[t][g][j] / (w * kG);
    const int n = kT - w;
    std::vector<float> out(kT);
    double mx = 0;
    for (int j = 0; j < n; ++j) {
      double s = 0;
      for (int u = j - 2; u <= j + 2; ++u)
        if (u >= 0 && u < n) s += mean[u];
      out[j] = (float)(s / 5);
      mx = j == 0 ? out[j] : std::max(mx, (double)out[j]);
    }
    for (int j = n; j < kT; ++j) out[j] = (float)mx;
    return out;
  }
};

std::vector<int32_t> topk(const std::vector<float>& scores, int keep) {
  std::vector<int32_t> kept(keep);
  std::vector<unsigned char> ws(amskv::topk_workspace_bytes(kT) + 64);
  amskv::topk_select(scores.data(), kT, keep, 4, 32, kept.data(), ws.data());
  return kept;
}

// Kept sets may differ only where reference scores tie within float rounding.
void expect_same(const std::vector<int32_t>& got, const std::vector<int32_t>& want,
                 const std::string& what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  int diff = 0;
  for (size_t i = 0; i < got.size(); ++i)
    diff += !std::binary_search(want.begin(), want.end(), got[i]);
  EXPECT_EQ(diff, 0) << what;
}

TEST(Scores, InlineScorersMatchTheFullAttentionReference) {
  Layer L(11);
  int target;
  // tova: the latest query's attention, all heads averaged; the newest token gets the max.
  {
    std::vector<float> s(kT);
    for (int j = 0; j < kT; ++j) {
      double m = 0;
      for (int g = 0; g < kG; ++g) m += L.P[kT - 1][g][j] / kG;
      s[j] = (float)m;
    }
    s[kT - 1] = *std::max_element(s.begin(), s.end());
    auto got = L.run("tova", &target);
    expect_same(got, topk(s, target), "tova");
  }
  // h2o: attention received per query that could see the token, group mean.
  {
    std::vector<float> s(kT);
    for (int j = 0; j < kT; ++j) {
      double sum = 0;
      for (int t = j; t < kT; ++t)
        for (int g = 0; g < kG; ++g) sum += L.P[t][g][j];
      s[j] = (float)(sum / (kG * (kT - j)));
    }
    auto got = L.run("h2o", &target);
    expect_same(got, topk(s, target), "h2o");
  }
  // snapkv: the window of the last 64 queries.
  expect_same(L.run("snapkv", &target), topk(L.window(64), target), "snapkv");
  // keydiff and knorm from the stored (rotated) keys.
  {
    std::vector<float> kd(kT), kn(kT);
    std::vector<double> a(kD, 0.0);
    for (int j = 0; j < kT; ++j) {
      double n = 0;
      for (double x : L.krot[j]) n += x * x;
      for (int c = 0; c < kD; ++c) a[c] += L.krot[j][c] / std::sqrt(n);
      kn[j] = (float)-std::sqrt(n);
    }
    const double an = std::sqrt(std::inner_product(a.begin(), a.end(), a.begin(), 0.0));
    for (int j = 0; j < kT; ++j) {
      double dot = 0, n = 0;
      for (int c = 0; c < kD; ++c) dot += L.krot[j][c] * a[c], n += L.krot[j][c] * L.krot[j][c];
      kd[j] = (float)(-dot / (std::sqrt(n) * an));
    }
    expect_same(L.run("keydiff", &target), topk(kd, target), "keydiff");
    expect_same(L.run("knorm", &target), topk(kn, target), "knorm");
  }
  // AMS over tova: window scores of the last 32 queries, tova as the selection score.
  {
    std::vector<float> s(kT);
    for (int j = 0; j < kT; ++j) {
      double m = 0;
      for (int g = 0; g < kG; ++g) m += L.P[kT - 1][g][j] / kG;
      s[j] = (float)m;
    }
    s[kT - 1] = *std::max_element(s.begin(), s.end());
    auto win = L.window(32);
    auto got = L.run("ams:tova", &target);
    std::vector<int32_t> want(target);
    std::vector<float> credit(kT, 0.f);
    amskv_ams_params p = amskv_ams_params_default();
    ASSERT_EQ(amskv_ams_select(&p, win.data(), s.data(), credit.data(), kT, target, want.data()),
              AMSKV_OK);
    expect_same(got, want, "ams:tova");
  }
}

// expected_attention against a brute-force version: explicit averaged RoPE matrices,
// S' = R S R^T with full matrices, the Gaussian logit, softmax, group mean, times ||v||.
TEST(Scores, ExpectedAttentionMatchesBruteForce) {
  std::mt19937 rng(4);
  std::normal_distribution<float> n(0.f, 1.f);
  const int T = 50, d = 16, G = 2, steps = 20, pos = 77, horizon = 9;
  std::vector<float> keys(T * d), vnorm(T), stats(G * (d + d * d), 0.f);
  for (auto& x : keys) x = n(rng);
  for (auto& x : vnorm) x = std::fabs(n(rng)) + 0.1f;
  std::vector<std::vector<double>> qs;
  for (int g = 0; g < G; ++g)
    for (int t = 0; t < steps; ++t) {
      std::vector<double> q(d);
      for (int c = 0; c < d; ++c) q[c] = n(rng) * 0.5 + 0.3 * g;
      float* st = stats.data() + g * (d + d * d);
      for (int c = 0; c < d; ++c) st[c] += (float)q[c];
      for (int a = 0; a < d; ++a)
        for (int b = 0; b < d; ++b) st[d + a * d + b] += (float)(q[a] * q[b]);
    }
  for (bool neox : {false, true}) {
    // R = mean over k = 1..horizon of the RoPE matrix at pos + k.
    Mat R(d, std::vector<double>(d, 0.0));
    for (int k = 1; k <= horizon; ++k)
      for (int i = 0; i < d / 2; ++i) {
        const double a = (pos + k) * std::pow(500.0, -2.0 * i / d);
        const int l = neox ? i : 2 * i, h = neox ? i + d / 2 : 2 * i + 1;
        R[l][l] += std::cos(a) / horizon, R[l][h] -= std::sin(a) / horizon;
        R[h][l] += std::sin(a) / horizon, R[h][h] += std::cos(a) / horizon;
      }
    std::vector<double> p(T, 0.0);
    for (int g = 0; g < G; ++g) {
      const float* st = stats.data() + g * (d + d * d);
      std::vector<double> mu(d), m2(d);
      Mat S(d, std::vector<double>(d)), S2(d, std::vector<double>(d, 0.0));
      for (int c = 0; c < d; ++c) mu[c] = st[c] / steps;
      for (int a = 0; a < d; ++a)
        for (int b = 0; b < d; ++b) S[a][b] = st[d + a * d + b] / steps - mu[a] * mu[b];
      for (int a = 0; a < d; ++a) {
        m2[a] = 0;
        for (int b = 0; b < d; ++b) m2[a] += R[a][b] * mu[b];
      }
      for (int a = 0; a < d; ++a)
        for (int b = 0; b < d; ++b)
          for (int x = 0; x < d; ++x)
            for (int y = 0; y < d; ++y) S2[a][b] += R[a][x] * S[x][y] * R[b][y];
      std::vector<double> logit(T);
      double mx = -1e300, sum = 0;
      for (int j = 0; j < T; ++j) {
        const float* k = keys.data() + j * d;
        double lin = 0, quad = 0;
        for (int a = 0; a < d; ++a) {
          lin += k[a] * m2[a];
          for (int b = 0; b < d; ++b) quad += k[a] * S2[a][b] * k[b];
        }
        logit[j] = lin / std::sqrt((double)d) + quad / (2.0 * d);
        mx = std::max(mx, logit[j]);
      }
      for (double& x : logit) sum += (x = std::exp(x - mx));
      for (int j = 0; j < T; ++j) p[j] += logit[j] / sum / G;
    }
    std::vector<double> want(T);
    for (int j = 0; j < T; ++j) want[j] = (p[j] + 0.01) * vnorm[j];
    const double mx = *std::max_element(want.begin(), want.end());
    for (int j = 0; j < 4; ++j) want[j] = mx;
    std::vector<float> scratch(amskv::expected_attention_scratch_floats(T, d)), got(T);
    amskv::ExpectedAttentionArgs a{keys.data(), vnorm.data(), T,         d,
                                   G,           stats.data(), d + d * d, false,
                                   steps,       pos,          500.f,     neox,
                                   horizon,     0.01f,        4,         &amskv::kKernelsRef};
    amskv::expected_attention_scores(a, scratch.data(), got.data());
    for (int j = 0; j < T; ++j) EXPECT_NEAR(got[j], want[j], 1e-4 * want[j]) << "neox " << neox;
  }
}

TEST(Scores, WindowScoresByHand) {
  // T = 8, w = 2, divisor 2: the 6 tokens before the window have means 1..6 (sums 2..12).
  const float ev[8] = {2, 4, 6, 8, 10, 12, 0, 0};
  float out[8];
  const float mx = amskv::window_scores(ev, 8, 2, 2.f, out);
  // box filter, zero padding, divide by 5: j=0: (1+2+3)/5, j=2: (1+2+3+4+5)/5 = 3,
  // j=3: (2+3+4+5+6)/5 = 4 (the maximum), j=4: (3+4+5+6)/5 = 3.6, j=5: (4+5+6)/5 = 3
  EXPECT_FLOAT_EQ(out[0], 6.f / 5);
  EXPECT_FLOAT_EQ(out[2], 3.f);
  EXPECT_FLOAT_EQ(out[4], 18.f / 5);
  EXPECT_FLOAT_EQ(out[5], 3.f);
  EXPECT_FLOAT_EQ(out[3], 4.f);
  EXPECT_FLOAT_EQ(mx, 4.f);
  EXPECT_FLOAT_EQ(out[6], mx);  // the window itself
  EXPECT_FLOAT_EQ(out[7], mx);
}

TEST(Scores, SurprisalIsTheLargestWithinTheRadius) {
  // Held positions with gaps (as after events), random surprisals, against brute force.
  std::mt19937 rng(5);
  for (int radius : {0, 1, 3, 8, 40}) {
    std::vector<int32_t> pos;
    for (int32_t p = 0; (int)pos.size() < 200; p += 1 + (int32_t)(rng() % 4)) pos.push_back(p);
    std::vector<float> nats(200), out(200);
    for (float& x : nats) x = (float)(rng() % 1000) / 100.f;
    amskv::surprisal_scores(nats.data(), pos.data(), 200, radius, out.data());
    for (int j = 0; j < 200; ++j) {
      float want = 0.f;
      for (int i = 0; i < 200; ++i) {
        if (std::abs(pos[i] - pos[j]) <= radius) want = std::max(want, nats[i]);
      }
      ASSERT_EQ(out[j], want) << "radius " << radius << " j " << j;
    }
    if (radius == 0) {
      EXPECT_EQ(out, nats);
    }
  }
}

TEST(Scores, RandomIsSeededAndStreamingPrefersSinksThenRecent) {
  float a[64], b[64], c[64];
  amskv::random_scores(7, 3, 1, 2, 64, a);
  amskv::random_scores(7, 3, 1, 2, 64, b);
  amskv::random_scores(7, 4, 1, 2, 64, c);
  EXPECT_EQ(0, std::memcmp(a, b, sizeof a));
  EXPECT_NE(0, std::memcmp(a, c, sizeof a));
  for (float x : a) EXPECT_TRUE(x >= 0.f && x < 1.f);
  float s[10];
  amskv::streaming_scores(10, 2, s);
  EXPECT_GT(s[1], s[9]);
  EXPECT_GT(s[9], s[8]);
}

}  // namespace
