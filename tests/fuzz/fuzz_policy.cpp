// libFuzzer: the config and policy-string parser. The first bytes are config fields (with
// sliding-window layers or without), the rest the policy string; an accepted config must
// give a session that decodes inside its budget and its layers' capacities, a refused one an
// error message.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "amskv/amskv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 8) return 0;
  amskv_config c = amskv_config_default();
  c.n_layers = data[0] % 4;  // 0 is invalid on purpose
  c.n_kv_heads = data[1] % 4;
  c.n_q_heads = c.n_kv_heads * (data[2] % 4) + (data[2] >> 6);
  c.head_dim = (int)data[3] * 2;
  c.kv_dtype = (amskv_dtype)(data[4] % 6);  // 5: not a dtype
  c.rope_style = (amskv_rope_style)(data[5] % 4);
  c.interval = (int8_t)data[6];
  c.n_threads = 1 + data[7] % 2;
  // Sliding-window layers (0 and 2) of up to 127 tokens: budgets too small for the windows
  // shorten them under an evicting policy.
  int32_t windows[4] = {0, 0, 0, 0};
  if (const int w = data[7] >> 1; w && c.n_layers > 1) {
    windows[0] = w, windows[2] = w / 2 + 1;
    c.layer_window = windows;
  }
  const std::string policy((const char*)data + 8, size - 8);
  c.policy = policy.c_str();
  const size_t budget = (size_t)(data[5] + 1) << 14;
  const size_t bytes = amskv_session_bytes(&c, budget);
  if (bytes == 0) {
    if (!*amskv_last_error(nullptr)) __builtin_trap();
    return 0;
  }
  if (bytes > budget) __builtin_trap();
  amskv_session* s = nullptr;
  if (amskv_session_create(&c, budget, &s) != AMSKV_OK) __builtin_trap();  // sized, so it fits
  amskv_stats st;
  amskv_get_stats(s, &st);
  const int qd = c.n_q_heads * c.head_dim, kd = c.n_kv_heads * c.head_dim;
  std::vector<float> q(qd), k(kd), v(kd), out(qd);
  const int n = st.capacity_tokens + 40 < 400 ? st.capacity_tokens + 40 : 400;
  for (int t = 0; t < n; ++t) {
    for (int i = 0; i < qd; ++i) q[i] = std::sin(0.37f * (t * qd + i));
    for (int i = 0; i < kd; ++i)
      k[i] = std::cos(0.11f * (t * kd + i)), v[i] = std::sin(0.07f * i + t);
    for (int l = 0; l < c.n_layers; ++l) {
      const amskv_status r = amskv_attend(s, l, t, q.data(), k.data(), v.data(), out.data());
      if (r == AMSKV_E_FULL) break;
      if (r != AMSKV_OK) __builtin_trap();
      for (float x : out)
        if (!std::isfinite(x)) __builtin_trap();
      const int held = amskv_layer_tokens(s, l);
      if (held > (windows[l] ? st.local_capacity_tokens : st.capacity_tokens)) __builtin_trap();
      if (windows[l] && held > windows[l]) __builtin_trap();
    }
  }
  amskv_get_stats(s, &st);
  if (st.bytes_used > budget) __builtin_trap();
  amskv_session_destroy(s);
  return 0;
}
