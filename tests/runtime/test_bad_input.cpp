// Bad input gets a status and a message, and leaves the session exactly as it was: a twin
// session that never saw the bad calls must stay bit-identical in everything it returns.
#include <gtest/gtest.h>

#include <climits>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "amskv/amskv.h"
#include "amskv/amskv.hpp"

namespace {

constexpr int kQ = 4, kKV = 2, kD = 32, kLayers = 2;

amskv_config config(const char* policy) {
  amskv_config c = amskv_config_default();
  c.n_layers = kLayers;
  c.n_q_heads = kQ;
  c.n_kv_heads = kKV;
  c.head_dim = kD;
  c.kv_dtype = AMSKV_F16;
  c.policy = policy;
  return c;
}

struct Inputs {
  std::vector<float> q, k, v;
  explicit Inputs(std::mt19937& rng, int n = 1) : q(n * kQ * kD), k(n * kKV * kD), v(n * kKV * kD) {
    std::uniform_real_distribution<float> u(-1, 1);
    for (auto* b : {&q, &k, &v})
      for (float& x : *b) x = u(rng);
  }
};

// Drives two sessions in lockstep; `bad` only ever goes to A.
struct Twins {
  amskv::Session a, b;
  std::mt19937 rng{42};
  int32_t pos = 0;

  explicit Twins(const char* policy, size_t budget = 64 << 10) {
    amskv_config c = config(policy);
    EXPECT_EQ(a.create(c, budget), AMSKV_OK) << a.last_error();
    EXPECT_EQ(b.create(c, budget), AMSKV_OK);
  }
  // A valid token on every layer of both; outputs must be identical.
  void step() {
    Inputs in(rng);
    for (int l = 0; l < kLayers; ++l) {
      std::vector<float> oa(kQ * kD), ob(kQ * kD);
      ASSERT_EQ(a.attend(l, pos, in.q.data(), in.k.data(), in.v.data(), oa.data()), AMSKV_OK)
          << a.last_error();
      ASSERT_EQ(b.attend(l, pos, in.q.data(), in.k.data(), in.v.data(), ob.data()), AMSKV_OK);
      ASSERT_EQ(0, std::memcmp(oa.data(), ob.data(), oa.size() * 4)) << "diverged at " << pos;
    }
    const float nats = (float)(rng() % 1000) / 100.f;  // the surprisal scorer's evidence
    ASSERT_EQ(a.set_surprisal(pos, nats), AMSKV_OK);
    ASSERT_EQ(b.set_surprisal(pos, nats), AMSKV_OK);
    ++pos;
  }
  void expect_same_state() {
    amskv_stats sa = a.stats(), sb = b.stats();
    EXPECT_EQ(sa.events, sb.events);
    EXPECT_EQ(sa.tokens_seen, sb.tokens_seen);
    EXPECT_EQ(sa.bytes_used, sb.bytes_used);
    for (int l = 0; l < kLayers; ++l) EXPECT_EQ(a.layer_tokens(l), b.layer_tokens(l));
  }
};

struct BadCall {
  const char* what;
  amskv_status expect;
  const char* message_part;
};

class BadInputPerPolicy : public ::testing::TestWithParam<const char*> {};

TEST_P(BadInputPerPolicy, RejectedDecodeCallsChangeNothing) {
  Twins t(GetParam(), 128 << 10);
  for (int i = 0; i < 300; ++i) t.step();
  ASSERT_GT(t.a.stats().events, 0u);  // past capacity: events have run
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  const BadCall calls[] = {
      {"null q", AMSKV_E_NULL, "q is NULL"},
      {"null k", AMSKV_E_NULL, "k is NULL"},
      {"null v", AMSKV_E_NULL, "v is NULL"},
      {"null out", AMSKV_E_NULL, "out is NULL"},
      {"layer -1", AMSKV_E_RANGE, "out of range"},
      {"layer n", AMSKV_E_RANGE, "out of range"},
      {"same position", AMSKV_E_POSITION, "after the last one"},
      {"earlier position", AMSKV_E_POSITION, "after the last one"},
      {"negative position", AMSKV_E_POSITION, "must be >= 0"},
      {"NaN in q", AMSKV_E_NONFINITE, "q holds NaN or Inf"},
      {"Inf in k", AMSKV_E_NONFINITE, "k holds NaN or Inf"},
      {"NaN in v", AMSKV_E_NONFINITE, "v holds NaN or Inf"},
      {"huge finite q", AMSKV_E_NONFINITE, "magnitude above 1e+15"},
      {"prefill of 0 tokens", AMSKV_E_INVALID, "n_tokens"},
      {"prefill with NaN in its last token", AMSKV_E_NONFINITE, "NaN"},
      {"prefill past INT32_MAX", AMSKV_E_POSITION, "int32"},
  };
  for (const BadCall& c : calls) {
    Inputs in(t.rng, 4);
    std::vector<float> out(4 * kQ * kD, 123.f);
    const std::string w = c.what;
    const float* q = w == "null q" ? nullptr : in.q.data();
    const float* k = w == "null k" ? nullptr : in.k.data();
    const float* v = w == "null v" ? nullptr : in.v.data();
    float* o = w == "null out" ? nullptr : out.data();
    int layer = w == "layer -1" ? -1 : w == "layer n" ? kLayers : 0;
    int32_t pos = w == "same position"       ? t.pos - 1
                  : w == "earlier position"  ? 3
                  : w == "negative position" ? -5
                                             : t.pos;
    if (w == "NaN in q") in.q[5] = nan;
    if (w == "Inf in k") in.k[kKV * kD - 1] = inf;
    if (w == "NaN in v") in.v[0] = nan;
    if (w == "huge finite q") in.q[3] = 3e38f;  // finite, but q.k would overflow
    amskv_status st;
    if (w.rfind("prefill", 0) == 0) {
      int n = 4;
      if (w == "prefill of 0 tokens") n = 0;
      if (w == "prefill with NaN in its last token") in.v[4 * kKV * kD - 1] = nan;
      if (w == "prefill past INT32_MAX") pos = INT32_MAX - 2;
      st = t.a.prefill(layer, pos, n, q, k, v, o);
    } else {
      st = t.a.attend(layer, pos, q, k, v, o);
    }
    EXPECT_EQ(st, c.expect) << c.what;
    EXPECT_NE(std::string(t.a.last_error()).find(c.message_part), std::string::npos)
        << c.what << ": " << t.a.last_error();
    if (o) {  // the caller's output is not touched either
      for (float x : out) ASSERT_EQ(x, 123.f) << c.what;
    }
    t.expect_same_state();
    t.step();  // and the next valid call agrees bit for bit
  }
  EXPECT_EQ(amskv_attend(nullptr, 0, 0, nullptr, nullptr, nullptr, nullptr), AMSKV_E_NULL);
  EXPECT_EQ(amskv_prefill(nullptr, 0, 0, 1, nullptr, nullptr, nullptr, nullptr), AMSKV_E_NULL);
  EXPECT_EQ(amskv_get_stats(t.a.get(), nullptr), AMSKV_E_NULL);
  EXPECT_EQ(amskv_layer_tokens(t.a.get(), -1), -1);
  EXPECT_EQ(amskv_layer_tokens(t.a.get(), kLayers), -1);
  EXPECT_EQ(amskv_layer_tokens(nullptr, 0), -1);
  int32_t pos[4];
  EXPECT_EQ(amskv_layer_positions(nullptr, 0, 0, pos, 4), -1);
  EXPECT_EQ(amskv_layer_positions(t.a.get(), 0, 0, nullptr, 4), -1);
  EXPECT_EQ(amskv_layer_positions(t.a.get(), 0, 0, pos, -1), -1);
  EXPECT_EQ(amskv_set_surprisal(nullptr, 0, 1.f), AMSKV_E_NULL);
  for (float nats : {nan, inf, -1.f, -inf, 3e38f}) {
    EXPECT_EQ(t.a.set_surprisal(t.pos - 2, nats), AMSKV_E_INVALID) << nats;
    EXPECT_NE(std::string(t.a.last_error()).find("surprisal must be in [0, 1e+15] nats"),
              std::string::npos)
        << t.a.last_error();
  }
  EXPECT_EQ(amskv_uses_surprisal(t.a.get()), std::string(GetParam()).rfind("surprisal", 0) == 0);
  EXPECT_EQ(amskv_uses_surprisal(nullptr), 0);
  for (int i = 0; i < 200; ++i) t.step();  // more events: the twins still agree
  for (int l = 0; l < kLayers; ++l)
    for (int h = 0; h < kKV; ++h) {
      std::vector<int32_t> pa(512), pb(512);
      const int na = amskv_layer_positions(t.a.get(), l, h, pa.data(), 512);
      ASSERT_EQ(na, amskv_layer_positions(t.b.get(), l, h, pb.data(), 512));
      EXPECT_EQ(pa, pb) << "layer " << l << " head " << h;
    }
  EXPECT_EQ(amskv_session_copy(nullptr, t.a.get()), AMSKV_E_NULL);
  EXPECT_EQ(amskv_session_copy(t.a.get(), nullptr), AMSKV_E_NULL);
  t.expect_same_state();
}

INSTANTIATE_TEST_SUITE_P(Policies, BadInputPerPolicy,
                         ::testing::Values("streaming", "ams:tova", "h2o",
                                           "ams:expected_attention,cov=diag", "surprisal,radius=2"),
                         [](const auto& info) {
                           std::string n = info.param;
                           for (char& c : n)
                             if (!isalnum((unsigned char)c)) c = '_';
                           return n;
                         });

TEST(BadInput, FullPolicyRefusesWhenFullAndChangesNothing) {
  Twins t("full");
  const int cap = t.a.stats().capacity_tokens;
  for (int i = 0; i < cap; ++i) t.step();
  Inputs in(t.rng, 3);
  std::vector<float> out(3 * kQ * kD);
  EXPECT_EQ(t.a.attend(0, t.pos, in.q.data(), in.k.data(), in.v.data(), out.data()), AMSKV_E_FULL);
  EXPECT_NE(std::string(t.a.last_error()).find("full"), std::string::npos);
  EXPECT_EQ(t.a.layer_tokens(0), cap);
  EXPECT_EQ(t.a.stats().events, 0u);
  t.expect_same_state();

  // A prefill that would overflow is refused whole, even when part of it would fit.
  Twins u("full");
  for (int i = 0; i < cap - 2; ++i) u.step();
  EXPECT_EQ(u.a.prefill(0, u.pos, 3, in.q.data(), in.k.data(), in.v.data(), out.data()),
            AMSKV_E_FULL);
  u.expect_same_state();
  EXPECT_EQ(u.a.prefill(0, u.pos, 2, in.q.data(), in.k.data(), in.v.data(), out.data()), AMSKV_OK);
}

struct BadConfig {
  const char* what;
  amskv_status expect;
  const char* message_part;
};

TEST(BadInput, BadConfigsAreRefusedWithAMessage) {
  const BadConfig cases[] = {
      {"head_dim 30", AMSKV_E_UNSUPPORTED, "head_dim 30"},
      {"head_dim 264", AMSKV_E_UNSUPPORTED, "head_dim 264"},
      {"head_dim 36", AMSKV_E_UNSUPPORTED, "multiple of 8"},
      {"heads do not divide", AMSKV_E_INVALID, "multiple of n_kv_heads"},
      {"no layers", AMSKV_E_INVALID, "n_layers"},
      {"zero kv heads", AMSKV_E_INVALID, "n_kv_heads"},
      {"bad dtype", AMSKV_E_INVALID, "kv_dtype"},
      {"bad rope style", AMSKV_E_INVALID, "rope_style"},
      {"NaN theta", AMSKV_E_INVALID, "rope_theta"},
      {"zero threads", AMSKV_E_INVALID, "n_threads"},
      {"negative interval", AMSKV_E_INVALID, "interval"},
      {"interval too large", AMSKV_E_INVALID, "does not fit"},
      {"null policy", AMSKV_E_POLICY, "NULL"},
      {"unknown policy", AMSKV_E_POLICY, "unknown policy 'tova2'"},
      {"option without value", AMSKV_E_POLICY, "not key=value"},
      {"unknown option", AMSKV_E_POLICY, "no option 'foo'"},
      {"bad option value", AMSKV_E_POLICY, "whole number"},
      {"option out of range", AMSKV_E_POLICY, "whole number"},
      {"full takes no options", AMSKV_E_POLICY, "no option 'n_sink'"},
  };
  for (const BadConfig& bc : cases) {
    amskv_config c = config("streaming");
    const std::string w = bc.what;
    if (w == "head_dim 30") c.head_dim = 30;
    if (w == "head_dim 264") c.head_dim = 264;
    if (w == "head_dim 36") c.head_dim = 36;
    if (w == "heads do not divide") c.n_q_heads = 5;
    if (w == "no layers") c.n_layers = 0;
    if (w == "zero kv heads") c.n_kv_heads = 0;
    const int bad_dtype = 7, bad_style = 9;  // as a C caller could store them
    if (w == "bad dtype") std::memcpy(&c.kv_dtype, &bad_dtype, sizeof bad_dtype);
    if (w == "bad rope style") std::memcpy(&c.rope_style, &bad_style, sizeof bad_style);
    if (w == "NaN theta") c.rope_theta = std::nanf("");
    if (w == "zero threads") c.n_threads = 0;
    if (w == "negative interval") c.interval = -1;
    if (w == "interval too large") c.interval = 100000;
    if (w == "null policy") c.policy = nullptr;
    if (w == "unknown policy") c.policy = "tova2";
    if (w == "option without value") c.policy = "streaming,n_sink";
    if (w == "unknown option") c.policy = "streaming,foo=1";
    if (w == "bad option value") c.policy = "streaming,n_sink=abc";
    if (w == "option out of range") c.policy = "streaming,n_sink=-3";
    if (w == "full takes no options") c.policy = "full,n_sink=4";
    amskv_session* s = nullptr;
    EXPECT_EQ(amskv_session_create(&c, 1 << 20, &s), bc.expect) << bc.what;
    EXPECT_EQ(s, nullptr) << bc.what;
    EXPECT_NE(std::string(amskv_last_error(nullptr)).find(bc.message_part), std::string::npos)
        << bc.what << ": " << amskv_last_error(nullptr);
    EXPECT_EQ(amskv_session_bytes(&c, 1 << 20), 0u) << bc.what;
  }
  amskv_session* s = nullptr;
  EXPECT_EQ(amskv_session_create(nullptr, 1 << 20, &s), AMSKV_E_NULL);
  amskv_config c = config("streaming");
  EXPECT_EQ(amskv_session_create(&c, 1 << 20, nullptr), AMSKV_E_NULL);
  EXPECT_EQ(amskv_session_create_in(&c, nullptr, 1 << 20, &s), AMSKV_E_NULL);
  EXPECT_STREQ(amskv_status_string(AMSKV_OK), "ok");
  EXPECT_STREQ(amskv_status_string(AMSKV_E_FULL), "layer full");
}

TEST(BadInput, PolicyOptionsThatAreValidWork) {
  amskv_config c = config("streaming,n_sink=2,keep_last=16");
  amskv::Session s;
  ASSERT_EQ(s.create(c, 64 << 10), AMSKV_OK) << s.last_error();
}

}  // namespace
