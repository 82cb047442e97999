// libFuzzer: the C API driven by a byte stream. A small session, then random calls with
// random arguments (layers out of range, positions backwards, NaN and huge values, chunks
// of any length, stats, observers). Every call either works or is refused leaving the
// session exactly as it was; the budget and capacity always hold.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "amskv/amskv.h"

namespace {

struct Bytes {
  const uint8_t* p;
  size_t n;
  uint8_t u8() { return n ? (--n, *p++) : 0; }
  int32_t i32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) v = v << 8 | u8();
    return (int32_t)v;
  }
  float f() {
    const uint8_t k = u8();
    if (k == 0xFF) return NAN;
    if (k == 0xFE) return INFINITY;
    if (k == 0xFD) return 3e38f;
    return ((int)k - 128) / 16.f;
  }
};

void observer(const amskv_event_info* e, void*) {
  for (int i = 1; i < e->n_keep; ++i)
    if (e->kept[i] <= e->kept[i - 1]) __builtin_trap();
}

const char* const kPolicies[] = {"full",
                                 "streaming",
                                 "tova",
                                 "ams:tova",
                                 "h2o",
                                 "ams:snapkv",
                                 "keydiff,n_sink=0",
                                 "ams:expected_attention,cov=diag",
                                 "ams:knorm,segmenter=valley,min_keep=0",
                                 "random,seed=3",
                                 "surprisal,radius=2",
                                 "surprisal,attn_share=0.5",
                                 "surprisal,score_min=8",
                                 "ams:surprisal,score_min=8",
                                 "ams:surprisal,scorer_mass=0.5"};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Bytes b{data, size};
  amskv_config c = amskv_config_default();
  c.n_layers = 1 + b.u8() % 3;
  c.n_kv_heads = 1 + b.u8() % 2;
  c.n_q_heads = c.n_kv_heads * (1 + b.u8() % 3);
  c.head_dim = 32 + 8 * (b.u8() % 5);
  c.kv_dtype = (amskv_dtype)(b.u8() % amskv_dtype_count());
  c.policy = kPolicies[b.u8() % (sizeof kPolicies / sizeof *kPolicies)];
  c.interval = b.u8() % 40;
  const int cap = 100 + b.u8();
  const size_t budget = amskv_budget_for_capacity(&c, cap);
  amskv_session* s = nullptr;
  if (budget == 0 || amskv_session_create(&c, budget, &s) != AMSKV_OK) return 0;
  const int qd = c.n_q_heads * c.head_dim, kd = c.n_kv_heads * c.head_dim;
  std::vector<float> q(64 * qd), k(64 * kd), v(64 * kd), out(64 * qd);
  std::vector<int32_t> next(c.n_layers, 0);  // the next valid position of each layer
  while (b.n > 0) {
    const uint8_t op = b.u8() % 7;
    amskv_stats before;
    amskv_get_stats(s, &before);
    if (op <= 2) {  // attend or prefill
      int layer = b.u8() % (c.n_layers + 1);
      if (b.u8() == 0) layer = -1;
      const int n = op == 0 ? 1 : 1 + b.u8() % 64;
      const int32_t pos = b.u8() % 8 == 0
                              ? b.i32()
                              : next[layer >= 0 && layer < c.n_layers ? layer : 0] + b.u8() % 3;
      for (int i = 0; i < n * qd; ++i) q[i] = b.f();
      for (int i = 0; i < n * kd; ++i) k[i] = b.f(), v[i] = b.f();
      const int held = layer >= 0 && layer < c.n_layers ? amskv_layer_tokens(s, layer) : -1;
      const amskv_status r =
          n == 1 ? amskv_attend(s, layer, pos, q.data(), k.data(), v.data(), out.data())
                 : amskv_prefill(s, layer, pos, n, q.data(), k.data(), v.data(), out.data());
      amskv_stats after;
      amskv_get_stats(s, &after);
      if (r == AMSKV_OK) {
        next[layer] = pos + n;
        for (int i = 0; i < n * qd; ++i)
          if (!std::isfinite(out[i])) __builtin_trap();
      } else if (after.tokens_seen != before.tokens_seen || after.events != before.events ||
                 (held >= 0 && amskv_layer_tokens(s, layer) != held) || !*amskv_last_error(s)) {
        __builtin_trap();  // a refused call changed the session or said nothing
      }
    } else if (op == 3) {
      amskv_set_event_observer(s, b.u8() & 1 ? observer : nullptr, nullptr);
    } else if (op == 4) {
      amskv_prefill(s, 0, next[0], 0, q.data(), k.data(), v.data(), out.data());  // n = 0
      amskv_attend(s, 0, next[0], nullptr, k.data(), v.data(), out.data());
    } else if (op == 5) {
      amskv_layer_tokens(s, b.u8() - 128);
    } else {  // any float, at any position: refused unless in [0, AMSKV_MAX_ABS]
      const float nats = b.f();
      const amskv_status r =
          amskv_set_surprisal(s, b.u8() % 4 ? next[0] - 1 - b.u8() % 8 : b.i32(), nats);
      if ((r == AMSKV_OK) != (nats >= 0.f && nats <= AMSKV_MAX_ABS)) __builtin_trap();
    }
    amskv_stats st;
    amskv_get_stats(s, &st);
    if (st.bytes_used > budget) __builtin_trap();
    for (int l = 0; l < c.n_layers; ++l)
      if (amskv_layer_tokens(s, l) > st.capacity_tokens) __builtin_trap();
  }
  amskv_session_destroy(s);
  return 0;
}
