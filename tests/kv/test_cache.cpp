// kv/cache: the storage views and kv_compact, on a block carved by kv/arena directly (no
// session): every per-token array moves with its token, and nothing else moves.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <numeric>
#include <vector>

#include "amskv/amskv.h"
#include "arch/kernels.h"
#include "kv/arena.h"
#include "kv/cache.h"

namespace {

using namespace amskv;

// Two channels: one travels with its token, one is window evidence that stays.
void two_channels(const void*, int, ArenaNeeds* out) {
  *out = ArenaNeeds{};
  out->n_channels = 2;
  out->channel_moves[0] = true;
  out->channel_moves[1] = false;
}

struct Block {
  ArenaLayout layout;
  std::vector<char> mem;
  KvCache kv;
  Block(int dtype, int capacity, const Kernels* kern) {
    const Geometry g{2, 4, 2, 32, dtype, 1};
    EXPECT_TRUE(arena_layout(g, NeedsFn{two_channels, nullptr}, capacity, 64, &layout));
    mem.assign(layout.total + 64, 0);
    char* base = mem.data() + (64 - (uintptr_t)mem.data() % 64) % 64;
    kv = kv_cache(g, layout, base, kern);
  }
};

// A row whose every element encodes its token (exact in f16 and q8: small integers).
std::vector<float> row_of(int token, int d, float sign) {
  std::vector<float> r(d);
  for (int c = 0; c < d; ++c) r[c] = sign * (float)((token * 7 + c) % 100 + 1);
  return r;
}

TEST(KvCache, CompactMovesEveryPerTokenArrayWithItsToken) {
  for (int dtype = 0; dtype < amskv_dtype_count(); ++dtype)
    for (const Kernels* kern : {kernels_for(Isa::kRef), active_kernels()}) {
      SCOPED_TRACE(std::string(amskv_dtype_name((amskv_dtype)dtype)) + " " + kern->name);
      const int cap = 40, d = 32, layer = 1, h = 1;
      Block b(dtype, cap, kern);
      const KvCache& kv = b.kv;
      std::vector<std::vector<float>> keys, values;
      for (int t = 0; t < cap; ++t) {
        keys.push_back(row_of(t, d, 1.f));
        values.push_back(row_of(t + 50, d, -1.f));
        kv_store(kv, layer, h, t, keys[t].data(), values[t].data(), 1000 + t);
        kv_f32(kv, 0, layer, h)[t] = 0.5f * t;
        kv_f32(kv, 1, layer, h)[t] = -1.f * t;
      }
      // The other head of the layer must not be touched.
      std::vector<float> other = row_of(99, d, 1.f);
      kv_store(kv, layer, 0, 3, other.data(), other.data(), 7);
      const std::vector<int32_t> kept = {0, 1, 5, 6, 7, 20, 33, 39};
      kv_compact(kv, layer, h, kept.data(), (int)kept.size());
      std::vector<float> k(d), v(d);
      for (size_t i = 0; i < kept.size(); ++i) {
        const int t = kept[i];
        EXPECT_EQ(kv_positions(kv, layer, h)[i], 1000 + t);
        kv_load_keys(kv, layer, h, (int)i, 1, k.data());
        kv_load_values(kv, layer, h, (int)i, 1, v.data());
        for (int c = 0; c < d; ++c) {
          // q8 stores round(x * 127 / max) with a row scale, q4 (x - min) / scale in 15
          // steps per block: within half a step (the values span at most 100).
          const float q8 = 100.f / 127, q4 = 100.f / 30;
          // q4h's steps are those of the turned row (its first element sums the row).
          const float ktol = dtype == AMSKV_Q8 || dtype == AMSKV_K8V4 ? q8
                             : dtype == AMSKV_Q4                      ? q4
                             : dtype == AMSKV_Q4H                     ? 60.f
                                                                      : 0.f;
          const float vtol = dtype == AMSKV_Q8 ? q8 : dtype >= AMSKV_Q4 ? q4 : 0.f;
          EXPECT_NEAR(k[c], keys[t][c], ktol) << "slot " << i;
          EXPECT_NEAR(v[c], values[t][c], vtol) << "slot " << i;
        }
        EXPECT_EQ(kv_f32(kv, 0, layer, h)[i], 0.5f * t);         // moves
        EXPECT_EQ(kv_f32(kv, 1, layer, h)[i], -1.f * (float)i);  // stays where it was
      }
      EXPECT_EQ(kv_positions(kv, layer, 0)[3], 7);
      kv_load_keys(kv, layer, 0, 3, 1, k.data());
      EXPECT_NEAR(k[0], other[0],
                  dtype == AMSKV_F32 || dtype == AMSKV_F16 ? 0.f
                  : dtype == AMSKV_Q4H                     ? 60.f
                                                           : 100.f / 30);
    }
}

// q4h stores keys turned by a Walsh-Hadamard rotation and turns queries the same way: its
// scores are the query against the keys it loads back (turned back), and a key with one
// outlier channel, as real keys have, comes back closer than from plain q4.
TEST(KvCache, Q4hScoresAsItsLoadedKeysAndLosesLessToAnOutlier) {
  for (const Kernels* kern : {kernels_for(Isa::kRef), active_kernels()}) {
    SCOPED_TRACE(kern->name);
    const int cap = 16, d = 32;
    Block rot(AMSKV_Q4H, cap, kern), plain(AMSKV_Q4, cap, kern);
    std::vector<float> keys((size_t)cap * d), q(2 * d);
    for (size_t i = 0; i < keys.size(); ++i)
      keys[i] = i % d == 3 ? 40.f : (float)((i * 37) % 23) / 11.f - 1.f;
    for (size_t i = 0; i < q.size(); ++i) q[i] = (float)((i * 13) % 17) / 8.f - 1.f;
    for (int t = 0; t < cap; ++t) {
      kv_store(rot.kv, 0, 1, t, &keys[(size_t)t * d], &keys[(size_t)t * d], t);
      kv_store(plain.kv, 0, 1, t, &keys[(size_t)t * d], &keys[(size_t)t * d], t);
    }
    std::vector<float> kr(keys.size()), kp(keys.size()), scores(2 * cap);
    kv_load_keys(rot.kv, 0, 1, 0, cap, kr.data());
    kv_load_keys(plain.kv, 0, 1, 0, cap, kp.data());
    double err_rot = 0, err_plain = 0;
    for (size_t i = 0; i < keys.size(); ++i) {
      err_rot += (kr[i] - keys[i]) * (kr[i] - keys[i]);
      err_plain += (kp[i] - keys[i]) * (kp[i] - keys[i]);
    }
    EXPECT_LT(err_rot, 0.5 * err_plain);
    kv_qk(rot.kv, 0, 1, q.data(), 2, cap, scores.data(), cap);
    for (int g = 0; g < 2; ++g)
      for (int j = 0; j < cap; ++j) {
        double want = 0;
        for (int c = 0; c < d; ++c) want += (double)q[g * d + c] * kr[(size_t)j * d + c];
        EXPECT_NEAR(scores[g * cap + j], want, 1e-3 * (1 + std::abs(want))) << g << " " << j;
      }
  }
}

TEST(KvCache, AttentionThroughTheViewsMatchesPlainSums) {
  const int cap = 16, d = 32;
  Block b(AMSKV_F32, cap, kernels_for(Isa::kRef));
  std::vector<float> q(2 * d, 0.f);
  q[0] = 1.f;      // query 0 reads element 0 of each key
  q[d + 1] = 2.f;  // query 1: twice element 1
  for (int t = 0; t < cap; ++t) {
    const std::vector<float> r = row_of(t, d, 1.f);
    kv_store(b.kv, 0, 0, t, r.data(), r.data(), t);
  }
  std::vector<float> scores(2 * cap);
  kv_qk(b.kv, 0, 0, q.data(), 2, cap, scores.data(), cap);
  for (int t = 0; t < cap; ++t) {
    EXPECT_EQ(scores[t], row_of(t, d, 1.f)[0]);
    EXPECT_EQ(scores[cap + t], 2 * row_of(t, d, 1.f)[1]);
  }
  std::vector<float> p(2 * cap, 0.f), out(2 * d);
  p[3] = 1.f;         // query 0 takes value 3
  p[cap + 5] = 0.5f;  // query 1 half of value 5 and half of value 6
  p[cap + 6] = 0.5f;
  kv_av(b.kv, 0, 0, p.data(), 2, cap, cap, out.data());
  for (int c = 0; c < d; ++c) {
    EXPECT_EQ(out[c], row_of(3, d, 1.f)[c]);
    EXPECT_FLOAT_EQ(out[d + c], 0.5f * (row_of(5, d, 1.f)[c] + row_of(6, d, 1.f)[c]));
  }
}

TEST(KvArena, PolicyStateIsOneRangeAndEverySpanIsAligned) {
  const Geometry g{3, 6, 2, 64, AMSKV_Q8, 2};
  ArenaLayout a;
  ASSERT_TRUE(arena_layout(g, NeedsFn{two_channels, nullptr}, 100, 200, &a));
  for (size_t off : {a.layers, a.keys, a.values, a.key_scales, a.value_scales, a.positions,
                     a.rope_freqs, a.channel[0], a.channel[1], a.head_state, a.thread_slots})
    EXPECT_EQ(off % 64, 0u);
  EXPECT_EQ(a.policy_begin, a.channel[0]);
  EXPECT_GE(a.policy_end, a.channel[1] + 3 * 2 * 100 * 4);
  EXPECT_LE(a.policy_end, a.thread_slots);
  EXPECT_EQ(a.kv_bytes, 2 * (3u * 2 * 100 * 64) + 2 * (3u * 2 * 100 * 4));
  EXPECT_EQ(a.total, a.thread_slots + 2 * a.thread_bytes);
  // Capacity search: the largest that fits, and one more does not.
  const int cap = arena_capacity_for(g, NeedsFn{two_channels, nullptr}, 200, a.total, 1 << 20);
  EXPECT_EQ(cap, 100);
}

}  // namespace
