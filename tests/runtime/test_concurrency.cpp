// Threads: sessions are independent and may run on different threads at once; one session
// is used by one thread at a time, and may move between threads. Both give exactly the
// outputs of a serial run. The ThreadSanitizer build (tools/test.sh tsan) runs this file.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "amskv/amskv.h"

namespace {

struct Stream {
  std::string policy;
  int threads_inside = 1;
  std::vector<float> outputs;  // every output of every call, in order
};

amskv_config config(const Stream& r) {
  amskv_config c = amskv_config_default();
  c.n_layers = 2;
  c.n_q_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 64;
  c.kv_dtype = AMSKV_F16;
  c.policy = r.policy.c_str();
  c.n_threads = r.threads_inside;
  return c;
}

// Steps [from, to) of a fixed token stream (inputs from a seed per step), prefill chunks and
// decode steps mixed, on session s; outputs appended to r.
void drive(amskv_session* s, Stream& r, int from, int to) {
  const amskv_config c = config(r);
  const int qd = c.n_q_heads * c.head_dim, kd = c.n_kv_heads * c.head_dim;
  for (int step = from; step < to; ++step) {
    std::mt19937 rng(1000 + step);
    std::normal_distribution<float> nd;
    const int n = step % 5 == 0 ? 7 : 1;
    std::vector<float> q(n * qd), k(n * kd), v(n * kd), out(n * qd);
    for (auto* x : {&q, &k, &v})
      for (float& f : *x) f = nd(rng);
    const int32_t pos = step * 7;  // strictly increasing, with gaps
    for (int l = 0; l < c.n_layers; ++l) {
      const amskv_status st =
          n == 1 ? amskv_attend(s, l, pos, q.data(), k.data(), v.data(), out.data())
                 : amskv_prefill(s, l, pos, n, q.data(), k.data(), v.data(), out.data());
      ASSERT_EQ(st, AMSKV_OK) << amskv_last_error(s);
      r.outputs.insert(r.outputs.end(), out.begin(), out.end());
    }
  }
}

amskv_session* create(const Stream& r) {
  const amskv_config c = config(r);
  amskv_session* s = nullptr;
  EXPECT_EQ(amskv_session_create(&c, amskv_budget_for_capacity(&c, 160), &s), AMSKV_OK)
      << amskv_last_error(nullptr);
  return s;
}

constexpr int kSteps = 120;  // past capacity: several compression events per layer

std::vector<Stream> runs() {
  return {{"ams:tova", 1, {}},
          {"tova", 1, {}},
          {"streaming", 1, {}},
          {"ams:keydiff", 2, {}},
          {"ams:expected_attention", 1, {}},
          {"h2o", 2, {}}};
}

TEST(Concurrency, SessionsOnManyThreadsAtOnceMatchASerialRun) {
  std::vector<Stream> serial = runs(), parallel = runs();
  for (Stream& r : serial) {
    amskv_session* s = create(r);
    ASSERT_NE(s, nullptr);
    drive(s, r, 0, kSteps);
    amskv_stats st;
    amskv_get_stats(s, &st);
    EXPECT_GT(st.events, 0u) << r.policy;
    amskv_session_destroy(s);
  }
  std::vector<std::thread> pool;
  for (Stream& r : parallel)
    pool.emplace_back([&r]() {
      amskv_session* s = create(r);
      if (!s) return;
      drive(s, r, 0, kSteps);
      amskv_session_destroy(s);
    });
  for (auto& t : pool) t.join();
  for (size_t i = 0; i < serial.size(); ++i) {
    ASSERT_EQ(serial[i].outputs.size(), parallel[i].outputs.size()) << serial[i].policy;
    EXPECT_EQ(0, std::memcmp(serial[i].outputs.data(), parallel[i].outputs.data(),
                             serial[i].outputs.size() * sizeof(float)))
        << serial[i].policy;
  }
}

TEST(Concurrency, ASessionHandedFromThreadToThreadMatchesOneThread) {
  for (Stream base : runs()) {
    Stream one = base, handed = base;
    amskv_session* s = create(one);
    ASSERT_NE(s, nullptr);
    drive(s, one, 0, kSteps);
    amskv_session_destroy(s);
    s = create(handed);
    // Four threads in turn, each joined before the next starts (the hand-over).
    for (int part = 0; part < 4; ++part) {
      std::thread t([&]() { drive(s, handed, part * kSteps / 4, (part + 1) * kSteps / 4); });
      t.join();
    }
    amskv_session_destroy(s);
    ASSERT_EQ(one.outputs.size(), handed.outputs.size());
    EXPECT_EQ(0, std::memcmp(one.outputs.data(), handed.outputs.data(),
                             one.outputs.size() * sizeof(float)))
        << base.policy;
  }
}

// Session-less calls (sizing, errors) from many threads: each thread sees its own error.
TEST(Concurrency, LastErrorIsPerThread) {
  std::vector<std::thread> pool;
  std::vector<int> ok(8, 0);
  for (int t = 0; t < 8; ++t)
    pool.emplace_back([t, &ok]() {
      amskv_config c = amskv_config_default();
      c.n_layers = 1, c.n_q_heads = 1, c.n_kv_heads = 1, c.head_dim = 64;
      c.policy = t % 2 ? "bogus" : "full";
      for (int i = 0; i < 200; ++i) {
        const size_t b = amskv_session_bytes(&c, 1 << 20);
        const std::string e = amskv_last_error(nullptr);
        if ((t % 2) != (b == 0) || ((t % 2) && e.find("bogus") == std::string::npos)) return;
      }
      ok[t] = 1;
    });
  for (auto& th : pool) th.join();
  for (int t = 0; t < 8; ++t) EXPECT_EQ(ok[t], 1) << "thread " << t;
}

}  // namespace
