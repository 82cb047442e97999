// amskv_demo: decodes a synthetic model's layers under a KV budget and reports what the
// budget holds and how fast the decode step runs. Stands in for the real model runner.
//
//   amskv_demo [--kv-budget 8MiB] [--policy ams:tova] [--kv-dtype f16] [-n 4096]
//              [--prompt 512] [--layers 30] [--q-heads 9] [--kv-heads 3] [--head-dim 64]
//              [--threads 1]
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "amskv/amskv.h"

namespace {

bool parse_size(const char* s, size_t* out) {
  char* end;
  double v = std::strtod(s, &end);
  double mul = 1;
  if (!std::strcmp(end, "KiB") || !std::strcmp(end, "K"))
    mul = 1024.0;
  else if (!std::strcmp(end, "MiB") || !std::strcmp(end, "M"))
    mul = 1024.0 * 1024;
  else if (!std::strcmp(end, "GiB") || !std::strcmp(end, "G"))
    mul = 1024.0 * 1024 * 1024;
  else if (*end)
    return false;
  if (!(v > 0) || v * mul > 1e15) return false;
  *out = (size_t)(v * mul);
  return true;
}

// xorshift: the synthetic activations need to be cheap, not good.
struct Rng {
  uint64_t s;
  float next() {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    return (float)((s >> 40) & 0xffffff) / 16777216.f * 2.f - 1.f;
  }
};

int usage(const char* msg) {
  std::fprintf(stderr, "amskv_demo: %s\n", msg);
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  size_t budget = 8u << 20;
  std::string policy = std::string("ams:") + amskv_scorer_at(0)->name, dtype = "f16";
  int n_decode = 4096, n_prompt = 512;
  amskv_config cfg = amskv_config_default();
  cfg.n_layers = 30, cfg.n_q_heads = 9, cfg.n_kv_heads = 3, cfg.head_dim = 64;
  for (int i = 1; i < argc; ++i) {
    const char* a = argv[i];
    const char* v = i + 1 < argc ? argv[i + 1] : nullptr;
    auto need = [&]() { return v ? (++i, true) : false; };
    if (!std::strcmp(a, "--kv-budget")) {
      if (!need() || !parse_size(v, &budget)) return usage("--kv-budget needs a size like 8MiB");
    } else if (!std::strcmp(a, "--policy")) {
      if (!need()) return usage("--policy needs a value");
      policy = v;
    } else if (!std::strcmp(a, "--kv-dtype")) {
      if (!need()) return usage("--kv-dtype needs f32, f16 or q8");
      dtype = v;
    } else if (!std::strcmp(a, "-n") || !std::strcmp(a, "--prompt") ||
               !std::strcmp(a, "--layers") || !std::strcmp(a, "--q-heads") ||
               !std::strcmp(a, "--kv-heads") || !std::strcmp(a, "--head-dim") ||
               !std::strcmp(a, "--threads")) {
      char* end;
      if (!need()) return usage("a number is missing");
      long x = std::strtol(v, &end, 10);
      if (*end || x < 0 || x > 100000000) return usage("bad number");
      int* dst = !std::strcmp(a, "-n")           ? &n_decode
                 : !std::strcmp(a, "--prompt")   ? &n_prompt
                 : !std::strcmp(a, "--layers")   ? &cfg.n_layers
                 : !std::strcmp(a, "--q-heads")  ? &cfg.n_q_heads
                 : !std::strcmp(a, "--kv-heads") ? &cfg.n_kv_heads
                 : !std::strcmp(a, "--head-dim") ? &cfg.head_dim
                                                 : &cfg.n_threads;
      *dst = (int)x;
    } else {
      return usage((std::string("unknown option ") + a).c_str());
    }
  }
  if (dtype == "f32")
    cfg.kv_dtype = AMSKV_F32;
  else if (dtype == "f16")
    cfg.kv_dtype = AMSKV_F16;
  else if (dtype == "q8")
    cfg.kv_dtype = AMSKV_Q8;
  else
    return usage("--kv-dtype must be f32, f16 or q8");
  cfg.policy = policy.c_str();

  amskv_session* s = nullptr;
  amskv_status st = amskv_session_create(&cfg, budget, &s);
  if (st != AMSKV_OK) {
    std::fprintf(stderr, "amskv_demo: %s: %s\n", amskv_status_string(st),
                 amskv_last_error(nullptr));
    return 1;
  }
  amskv_stats stats;
  amskv_get_stats(s, &stats);
  std::fprintf(stderr,
               "amskv_demo: synthetic model %d layers, %d/%d heads, head_dim %d, %s, policy %s\n"
               "budget %zu bytes, session uses %zu (KV %zu), capacity %d tokens/layer, "
               "target %d, kernels %s, %d threads\n",
               cfg.n_layers, cfg.n_q_heads, cfg.n_kv_heads, cfg.head_dim, dtype.c_str(),
               policy.c_str(), stats.budget_bytes, stats.bytes_used, stats.kv_bytes,
               stats.capacity_tokens, stats.target_tokens, stats.isa, cfg.n_threads);

  const size_t qn = (size_t)cfg.n_q_heads * cfg.head_dim,
               kvn = (size_t)cfg.n_kv_heads * cfg.head_dim;
  Rng rng{0x9e3779b97f4a7c15ull};
  // Prompt: one prefill call per layer.
  std::vector<float> q(qn * n_prompt), k(kvn * n_prompt), v(kvn * n_prompt), out(qn * n_prompt);
  for (auto* buf : {&q, &k, &v})
    for (float& x : *buf) x = rng.next();
  auto t0 = std::chrono::steady_clock::now();
  for (int l = 0; l < cfg.n_layers && n_prompt > 0; ++l) {
    st = amskv_prefill(s, l, 0, n_prompt, q.data(), k.data(), v.data(), out.data());
    if (st != AMSKV_OK) {
      std::fprintf(stderr, "amskv_demo: prefill: %s\n", amskv_last_error(s));
      return 1;
    }
  }
  auto t1 = std::chrono::steady_clock::now();
  // Decode: one token at a time through every layer.
  double checksum = 0;
  for (int t = 0; t < n_decode; ++t) {
    for (int l = 0; l < cfg.n_layers; ++l) {
      for (size_t i = 0; i < qn; ++i) q[i] = rng.next();
      for (size_t i = 0; i < kvn; ++i) k[i] = rng.next(), v[i] = rng.next();
      st = amskv_attend(s, l, n_prompt + t, q.data(), k.data(), v.data(), out.data());
      if (st != AMSKV_OK) {
        std::fprintf(stderr, "amskv_demo: token %d layer %d: %s\n", n_prompt + t, l,
                     amskv_last_error(s));
        return 1;
      }
    }
    checksum += out[0];
  }
  auto t2 = std::chrono::steady_clock::now();
  amskv_get_stats(s, &stats);
  const double pre = std::chrono::duration<double>(t1 - t0).count();
  const double dec = std::chrono::duration<double>(t2 - t1).count();
  std::printf(
      "budget_bytes %zu\nbytes_used %zu\ncapacity_tokens %d\ntarget_tokens %d\n"
      "prefill_tokens %d\nprefill_tok_per_s %.1f\ndecode_tokens %d\n"
      "decode_tok_per_s %.1f\nevents %llu\ntokens_evicted %llu\nwipe_rate %.4f\n"
      "layer0_tokens %d\n"
      "checksum %.6f\n",
      stats.budget_bytes, stats.bytes_used, stats.capacity_tokens, stats.target_tokens, n_prompt,
      pre > 0 ? n_prompt / pre : 0.0, n_decode, dec > 0 ? n_decode / dec : 0.0,
      (unsigned long long)stats.events, (unsigned long long)stats.tokens_evicted, stats.wipe_rate,
      amskv_layer_tokens(s, 0), checksum);
  amskv_session_destroy(s);
  return 0;
}
