// After creation a session allocates nothing: this binary replaces malloc and friends with
// counting versions (tools/alloc_count.cpp) and runs attend, prefill, eviction and
// amskv_set_surprisal under every dtype and policy.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "amskv/amskv.h"
#include "tools/alloc_count.h"

namespace {

long allocs() {
  return amskv::alloc_count_total();
}

TEST(NoAlloc, CountingWorks) {
  // Through volatile pointers: the compiler may not elide these allocations.
  void* (*volatile do_malloc)(size_t) = malloc;
  void* (*volatile do_new)(size_t) = ::operator new;
  const long before = allocs();
  void* p = do_malloc(10);
  void* q = do_new(100);  // operator new goes through malloc
  EXPECT_EQ(allocs() - before, 2);
  free(p);
  ::operator delete(q);
}

struct Case {
  const char* policy;
  amskv_dtype dtype;
  int threads;
};

TEST(NoAlloc, AttendPrefillAndEvictionAllocateNothing) {
  std::vector<Case> cases = {Case{"streaming", AMSKV_F32, 1}, Case{"streaming", AMSKV_Q8, 1},
                             Case{"full", AMSKV_F16, 1}, Case{"streaming", AMSKV_F16, 2},
                             Case{"streaming", AMSKV_Q4, 2}};
  // Every scorer, under global top-k and AMS, every dtype, one and two threads.
  std::vector<std::string> names;
  for (int j = 0; j < amskv_scorer_count(); ++j) {
    const std::string name = amskv_scorer_at(j)->name;
    if (name != "streaming") names.push_back(name);  // that name is the streaming policy
  }
  for (int j = 0; j < amskv_scorer_count(); ++j)
    names.push_back(std::string("ams:") + amskv_scorer_at(j)->name);
  names.push_back(std::string("ams:") + amskv_scorer_at(0)->name +
                  ",segmenter=valley,global_head=1");
  names.push_back(std::string("ams:") + amskv_scorer_at(0)->name + ",apart=1");
  names.push_back(std::string(amskv_scorer_at(0)->name) + ",chunk=8");
  names.push_back("surprisal,attn_share=0.5");
  names.push_back("surprisal,score_min=8");
  names.push_back("ams:surprisal,score_min=8");
  names.push_back("ams:surprisal,scorer_mass=0.5");
  int i = 0;
  for (const std::string& name : names) {
    cases.push_back(Case{name.c_str(), (amskv_dtype)(i % 5), 1 + i % 2});
    ++i;
  }
  for (Case r : cases) {
    amskv_config c = amskv_config_default();
    c.n_layers = 2;
    c.n_q_heads = 6;
    c.n_kv_heads = 2;
    c.head_dim = 64;
    c.kv_dtype = r.dtype;
    c.policy = r.policy;
    c.n_threads = r.threads;
    amskv_session* s = nullptr;
    // A small capacity: several events, quick under emulation too.
    ASSERT_EQ(amskv_session_create(&c, amskv_budget_for_capacity(&c, 160), &s), AMSKV_OK)
        << r.policy << ": " << amskv_last_error(nullptr);
    amskv_stats st;
    amskv_get_stats(s, &st);
    const int cap = st.capacity_tokens;
    const int n = std::string(r.policy) == "full" ? cap / 2 : 3 * cap;  // others: events
    std::mt19937 rng(2);
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> q((size_t)n * 6 * 64), k((size_t)n * 2 * 64), v(k.size()), out(q.size());
    for (auto* b : {&q, &k, &v})
      for (float& x : *b) x = u(rng);
    const long before = allocs();
    ASSERT_EQ(amskv_prefill(s, 0, 0, n, q.data(), k.data(), v.data(), out.data()), AMSKV_OK);
    for (int t = 0; t < n; ++t) {
      ASSERT_EQ(amskv_attend(s, 1, t, q.data() + t * 6 * 64, k.data() + t * 2 * 64,
                             v.data() + t * 2 * 64, out.data()),
                AMSKV_OK);
      ASSERT_EQ(amskv_set_surprisal(s, t, (float)(t % 7)), AMSKV_OK);  // the surprisal scorer's
    }
    // Rejected calls and the read-only calls allocate nothing either.
    EXPECT_EQ(amskv_attend(s, 1, 0, q.data(), k.data(), v.data(), out.data()), AMSKV_E_POSITION);
    amskv_get_stats(s, &st);
    const long during = allocs() - before;
    // Nor does a copy into a second session of the same config.
    amskv_session* s2 = nullptr;
    ASSERT_EQ(amskv_session_create(&c, amskv_budget_for_capacity(&c, 160), &s2), AMSKV_OK);
    const long before_copy = allocs();
    EXPECT_EQ(amskv_session_copy(s2, s), AMSKV_OK);
    EXPECT_EQ(allocs() - before_copy, 0);
    amskv_session_destroy(s2);
    EXPECT_EQ(during, 0) << r.policy << " dtype " << r.dtype << " threads " << r.threads;
    if (std::string(r.policy) != "full") {
      EXPECT_GT(st.events, 2u) << r.policy;
    }
    amskv_session_destroy(s);
  }
}

// Sliding-window layers: their rings drop what leaves the window (gaps in the positions
// too), beside global layers that evict, allocating nothing.
TEST(NoAlloc, LocalLayersAllocateNothing) {
  const int32_t windows[3] = {16, 0, 9};
  for (const char* policy : {"full", "ams:tova"}) {
    amskv_config c = amskv_config_default();
    c.n_layers = 3;
    c.n_q_heads = 4;
    c.n_kv_heads = 2;
    c.head_dim = 64;
    c.policy = policy;
    c.n_threads = 2;
    c.layer_window = windows;
    amskv_session* s = nullptr;
    ASSERT_EQ(amskv_session_create(&c, amskv_budget_for_capacity(&c, 400), &s), AMSKV_OK)
        << amskv_last_error(nullptr);
    const int n = std::string(policy) == "full" ? 200 : 1200;
    std::mt19937 rng(3);
    std::uniform_real_distribution<float> u(-1, 1);
    std::vector<float> q((size_t)n * 4 * 64), k((size_t)n * 2 * 64), v(k.size()), out(q.size());
    for (auto* b : {&q, &k, &v})
      for (float& x : *b) x = u(rng);
    const long before = allocs();
    for (int l = 0; l < 3; ++l) {
      ASSERT_EQ(amskv_prefill(s, l, 0, n / 2, q.data(), k.data(), v.data(), out.data()), AMSKV_OK);
      for (int t = n / 2; t < n; ++t)  // positions with gaps
        ASSERT_EQ(amskv_attend(s, l, 2 * t, q.data() + t * 4 * 64, k.data() + t * 2 * 64,
                               v.data() + t * 2 * 64, out.data()),
                  AMSKV_OK);
    }
    EXPECT_EQ(allocs() - before, 0) << policy;
    EXPECT_LE(amskv_layer_tokens(s, 0), 16);
    EXPECT_LE(amskv_layer_tokens(s, 2), 9);
    amskv_session_destroy(s);
  }
}

alignas(64) static unsigned char g_block[512 << 10];

TEST(NoAlloc, CreateInAStaticBlockAllocatesNothingAtAll) {
  amskv_config c = amskv_config_default();
  c.n_layers = 4;
  c.n_q_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 32;
  std::vector<float> q(4 * 32, 0.5f), k(2 * 32, 0.25f), v(2 * 32, 1.f), out(4 * 32);
  const long before = allocs();
  amskv_session* s = nullptr;
  ASSERT_EQ(amskv_session_create_in(&c, g_block, sizeof g_block, &s), AMSKV_OK);
  for (int t = 0; t < 1200; ++t)  // past capacity: events run too
    for (int l = 0; l < 4; ++l)
      ASSERT_EQ(amskv_attend(s, l, t, q.data(), k.data(), v.data(), out.data()), AMSKV_OK);
  amskv_stats st;
  amskv_get_stats(s, &st);
  EXPECT_GT(st.events, 0u);
  amskv_session_destroy(s);
  EXPECT_EQ(allocs() - before, 0);
}

}  // namespace
