// amskv bench: prefill and decode speed of the model per depth and policy, as llama.cpp's
// llama-bench measures them (tools/vs_llama.sh runs the two side by side). At each depth D the
// first D tokens of the text are prefilled untimed; then `--prompt` P more are prefilled
// (timed, with the last one's logits) and `--decode` N more decoded one at a time
// (teacher-forced, so every policy decodes the same tokens), each step what `amskv run` does:
// every layer, the output layer's logits and a greedy pick (`--temp 0`). An evicting policy
// gets `--fraction` of the bytes the full cache needs for the D + P tokens (as amskv eval's
// budgets); the full cache room for all of them. The
// table shows the output layer's share of the decode time; the run ends with its peak
// resident memory and what it is made of. Not the Google Benchmark programs in tools/microbench/.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>

#include "tools/cli/eval.h"

namespace amskv {
namespace cli {

int cmd_bench(int argc, char** argv) {
  std::string model = default_model(), text_path = eval::default_code();
  std::vector<std::string> depths = {"0", "2048", "8192"}, policies = {kFull, default_policy()};
  float fraction = 0.25f;
  long prompt = 512, decode = 128, n_threads = default_threads(), batch = 64;
  bool onednn = false;
  amskv_dtype dtype = AMSKV_F16;
  Spec spec{
      "bench",
      "[options]",
      "  Prefill and decode tokens/s of the model per depth (tokens already cached) and policy.\n",
      {list_flag("--depth", "LIST", "tokens in the cache before the timed ones", &depths, ','),
       long_flag("--prompt", "P", "prompt tokens prefilled, timed", &prompt, 1, 1 << 20),
       policies_flag(&policies, "a policy to time", nullptr),
       float_flag("--fraction", "F",
                  "budget of the evicting policies: a fraction of the full cache's bytes for depth "
                  "+ prompt",
                  &fraction, 1e-3f, 1.f),
       long_flag("--decode", "N", "decode steps timed after the prefill", &decode, 1, 1 << 20),
       string_flag("--text", "FILE", "text to feed (the evaluation's code text)", &text_path),
       long_flag("--batch", "B", "prompt tokens per pass over the weights", &batch, 1, 4096),
       onednn_flag(&onednn), threads_flag(&n_threads), kv_dtype_flag(&dtype), model_flag(&model)}};
  int rc;
  if (!parse(argc, argv, spec, &rc)) return rc;
  std::string bytes;
  if (text_path.empty() || !read_file(text_path, &bytes))
    return error(kRuntime, "cannot read a text to feed; give --text FILE");
  LlamaModel m;
  const auto t_load = std::chrono::steady_clock::now();
  if (int e = load_model(model, &m)) return e;
  const double load_s = seconds_since(t_load);
  std::vector<int32_t> text;
  tokenize(m.tok, bytes, false, false, &text);
  if (text.empty()) return error(kUsage, "the text has no tokens");
  Sampler sampler;  // greedy, as amskv run --temp 0 (and llama-completion --temp 0)
  std::string serr;
  if (!sampler_init(&sampler, m.hp.n_vocab, SamplerParams{}, &serr)) return error(kRuntime, serr);
  std::vector<float> logits(m.hp.n_vocab);
  std::printf(
      "| depth | policy | budget | capacity | prefill %ld tok/s | decode %ld tok/s | output layer "
      "| "
      "events |\n|---|---|---|---|---|---|---|---|\n",
      prompt, decode);
  size_t kv_max = 0, runner_max = 0;
  for (const std::string& ds : depths) {
    long depth;
    if (!parse_long(ds, 0, 1 << 20, &depth)) return error(kUsage, "bad depth '" + ds + "'");
    const long ctx = depth + prompt;
    std::vector<int32_t> ids;  // the text, repeated if it is short
    while ((long)ids.size() < ctx + decode) ids.push_back(text[ids.size() % text.size()]);
    for (const std::string& pol : policies) {
      const bool full = pol == kFull;
      LlamaParams p;
      p.kv_budget =
          full ? full_cache_bytes(m, dtype, (int)(ctx + decode + 8), (int)n_threads)
               : (size_t)(fraction * (double)full_cache_bytes(m, dtype, (int)ctx, (int)n_threads));
      p.kv_dtype = dtype;
      p.policy = pol.c_str();
      p.n_threads = (int)n_threads;
      p.max_batch = (int)batch;
      p.onednn = onednn;
      LlamaContext c;
      std::string err;
      if (!llama_context_init(&c, m, p, &err)) return error(kUsage, pol + ": " + err);
      if (depth > 0 && !llama_prefill(c, ids.data(), (int)depth, nullptr))
        return error(kRuntime, c.error);
      auto t0 = std::chrono::steady_clock::now();
      if (!llama_prefill(c, ids.data() + depth, (int)prompt, logits.data()))
        return error(kRuntime, c.error);
      const double pre = prompt / seconds_since(t0);
      c.output_seconds = 0;
      t0 = std::chrono::steady_clock::now();
      int32_t sampled = 0;
      for (long i = ctx; i < ctx + decode; ++i) {
        sampled ^= sampler_sample(sampler, logits.data());
        if (!llama_decode(c, ids[i], logits.data())) return error(kRuntime, c.error);
      }
      const double dec_s = seconds_since(t0), dec = decode / dec_s;
      amskv_stats st;
      amskv_get_stats(c.kv, &st);
      kv_max = std::max(kv_max, st.bytes_used);
      runner_max = std::max(runner_max, llama_context_bytes(c));
      std::printf("| %ld | %s | %s | %d | %.1f | %.1f | %.0f%% | %llu |\n", depth, pol.c_str(),
                  full ? "all" : eval::num(fraction, "%.2f").c_str(), st.capacity_tokens, pre, dec,
                  100 * c.output_seconds / dec_s, (unsigned long long)st.events);
      std::fflush(stdout);
      if (sampled == -1) std::printf("(never)\n");  // keeps the sampling from being elided
    }
  }
  const double mib = 1048576.0;
  std::printf(
      "\npeak resident memory %.1f MiB: model file %.1f MiB mapped (the repacked tensors' pages "
      "given back), repacked weights %.1f MiB, largest KV session %.1f MiB, runner buffers %.1f "
      "MiB; model loaded and repacked in %.2f s (%ld threads, kernels %s, prompt batches of "
      "%ld%s)\n",
      peak_rss_bytes() / mib, m.file.size / mib, m.packed.bytes / mib, kv_max / mib,
      runner_max / mib, load_s, n_threads, amskv_active_isa(), batch,
      onednn ? " on oneDNN bf16" : "");
  return 0;
}

}  // namespace cli
}  // namespace amskv
