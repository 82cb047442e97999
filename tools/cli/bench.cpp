// amskv bench: prefill and decode speed of the model at a few context lengths, per policy,
// each policy at a budget that is a fraction of the context (the full cache gets room for
// all of it). Prefill takes the first `ctx` tokens of the text in batches; decode then feeds
// `decode` more tokens of it one at a time (teacher-forced, so every policy decodes the same
// tokens). Not the Google Benchmark programs in tools/microbench/.
#include <chrono>
#include <cmath>
#include <cstdio>

#include "tools/cli/eval.h"

namespace amskv {
namespace cli {

int cmd_bench(int argc, char** argv) {
  std::string model = default_model(), text_path = eval::default_code();
  std::vector<std::string> ctxs = {"512", "2048", "8192"}, policies = {kFull, default_policy()};
  float fraction = 0.25f;
  long decode = 128, n_threads = default_threads();
  amskv_dtype dtype = AMSKV_F16;
  Spec spec{
      "bench",
      "[options]",
      "  Prefill and decode tokens/s of the model per context length and policy.\n",
      {list_flag("--ctx", "LIST", "context lengths", &ctxs, ','),
       policies_flag(&policies, "a policy to time", nullptr),
       float_flag("--fraction", "F", "budget of the evicting policies, fraction of the context",
                  &fraction, 1e-3f, 1.f),
       long_flag("--decode", "N", "decode steps timed after the prefill", &decode, 1, 1 << 20),
       string_flag("--text", "FILE", "text to feed (the evaluation's code text)", &text_path),
       threads_flag(&n_threads), kv_dtype_flag(&dtype), model_flag(&model)}};
  int rc;
  if (!parse(argc, argv, spec, &rc)) return rc;
  std::string bytes;
  if (text_path.empty() || !read_file(text_path, &bytes))
    return error(kRuntime, "cannot read a text to feed; give --text FILE");
  LlamaModel m;
  if (!load_model(model, &m)) return kRuntime;
  std::vector<int32_t> text;
  tokenize(m.tok, bytes, false, false, &text);
  if (text.empty()) return error(kUsage, "the text has no tokens");
  std::printf(
      "| context | policy | budget | capacity | prefill tok/s | decode tok/s | events |\n"
      "|---|---|---|---|---|---|---|\n");
  for (const std::string& cs : ctxs) {
    long ctx;
    if (!parse_long(cs, 1, 1 << 20, &ctx)) return error(kUsage, "bad context '" + cs + "'");
    std::vector<int32_t> ids;  // the text, repeated if it is short
    while ((long)ids.size() < ctx + decode) ids.push_back(text[ids.size() % text.size()]);
    for (const std::string& pol : policies) {
      const bool full = pol == kFull;
      LlamaParams p;
      p.kv_budget = full_cache_bytes(
          m, dtype, full ? (int)(ctx + decode + 8) : (int)std::lround(fraction * ctx));
      p.kv_dtype = dtype;
      p.policy = pol.c_str();
      p.n_threads = (int)n_threads;
      p.max_batch = 64;
      LlamaContext c;
      std::string err;
      if (!llama_context_init(&c, m, p, &err)) return error(kUsage, pol + ": " + err);
      auto t0 = std::chrono::steady_clock::now();
      if (!llama_prefill(c, ids.data(), (int)ctx, nullptr)) return error(kRuntime, c.error);
      const double pre = ctx / seconds_since(t0);
      t0 = std::chrono::steady_clock::now();
      for (long i = ctx; i < ctx + decode; ++i)
        if (!llama_decode(c, ids[i], nullptr)) return error(kRuntime, c.error);
      const double dec = decode / seconds_since(t0);
      amskv_stats st;
      amskv_get_stats(c.kv, &st);
      std::printf("| %ld | %s | %s | %d | %.1f | %.1f | %llu |\n", ctx, pol.c_str(),
                  full ? "all" : eval::num(fraction, "%.2f").c_str(), st.capacity_tokens, pre, dec,
                  (unsigned long long)st.events);
      std::fflush(stdout);
    }
  }
  return 0;
}

}  // namespace cli
}  // namespace amskv
