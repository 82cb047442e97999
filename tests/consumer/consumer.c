/* A C program that uses an installed amskv: decode a few hundred tokens of a synthetic
 * 2-layer model under a 64 KiB budget and check what the library reports. */
#include <amskv/amskv.h>
#include <math.h>
#include <stdio.h>

int main(void) {
  amskv_config c = amskv_config_default();
  c.n_layers = 2;
  c.n_q_heads = 4;
  c.n_kv_heads = 2;
  c.head_dim = 32;
  c.policy = "streaming";
  amskv_session* s = NULL;
  amskv_status st = amskv_session_create(&c, 64 * 1024, &s);
  if (st != AMSKV_OK) {
    fprintf(stderr, "create: %s: %s\n", amskv_status_string(st), amskv_last_error(NULL));
    return 1;
  }
  float q[4 * 32], k[2 * 32], v[2 * 32], out[4 * 32];
  for (int t = 0; t < 500; ++t) {
    for (int i = 0; i < 4 * 32; ++i) q[i] = sinf(0.1f * (float)(t + i));
    for (int i = 0; i < 2 * 32; ++i) k[i] = cosf(0.07f * (float)(t * i)), v[i] = (float)(i % 5);
    for (int l = 0; l < 2; ++l) {
      st = amskv_attend(s, l, t, q, k, v, out);
      if (st != AMSKV_OK) {
        fprintf(stderr, "attend: %s\n", amskv_last_error(s));
        return 1;
      }
    }
  }
  amskv_stats stats;
  amskv_get_stats(s, &stats);
  printf("consumer: isa %s, capacity %d, events %llu, bytes %zu of %zu\n", stats.isa,
         stats.capacity_tokens, (unsigned long long)stats.events, stats.bytes_used,
         stats.budget_bytes);
  int ok = stats.bytes_used <= stats.budget_bytes && stats.events > 0 &&
           amskv_layer_tokens(s, 0) <= stats.capacity_tokens;
  amskv_session_destroy(s);
  return ok ? 0 : 1;
}
