#include "tools/cli/generate.h"

#include <cstdio>

namespace amskv {
namespace cli {

int load_model(const std::string& path, LlamaModel* m) {
  std::string err;
  bool unsupported;
  if (llama_load(model_path(path).c_str(), m, &err, &unsupported)) return 0;
  return error(unsupported ? kUsage : kRuntime, err);
}

int make_context(const LlamaModel& m, amskv_dtype dtype, long threads, const char* policy,
                 size_t budget, LlamaContext* c, bool onednn) {
  LlamaParams p;
  p.onednn = onednn;
  p.kv_budget = budget;
  p.kv_dtype = dtype;
  p.policy = policy;
  p.n_threads = (int)threads;
  std::string err;
  if (llama_context_init(c, m, p, &err)) return 0;
  const bool usage = c->status == AMSKV_E_BUDGET || c->status == AMSKV_E_POLICY ||
                     c->status == AMSKV_E_INVALID || c->status == AMSKV_E_UNSUPPORTED;
  return error(usage ? kUsage : kRuntime, err);
}

size_t full_cache_bytes(const LlamaModel& m, amskv_dtype dtype, int tokens, int n_threads) {
  const amskv_config cfg = llama_session_config(m, dtype, kFull, n_threads);
  return amskv_budget_for_capacity(&cfg, tokens);
}

void add_generation_flags(Generation* g, const char* n_help, std::vector<Flag>* flags) {
  flags->insert(
      flags->end(),
      {long_flag("-n", "N", n_help, &g->n, 0, 1 << 30), kv_budget_flag(&g->budget),
       kv_dtype_flag(&g->dtype), policy_flag(&g->policy), threads_flag(&g->threads),
       float_flag("--temp", "T", "sampling temperature, 0 = greedy", &g->temp, 0.f, 100.f),
       long_flag("--top-k", "K", "sample from the K most likely tokens, 0 = all", &g->top_k, 0,
                 1 << 30),
       float_flag("--top-p", "P", "then from the smallest set reaching probability P, 1 = all",
                  &g->top_p, 1e-9f, 1.f),
       float_flag("--min-p", "P", "then those at least P times as likely as the best, 0 = all",
                  &g->min_p, 0.f, 1.f),
       float_flag("--repeat-penalty", "R",
                  "divide the logits of the last --repeat-last-n tokens by R, 1 = off",
                  &g->repeat_penalty, 1e-3f, 10.f),
       long_flag("--repeat-last-n", "N", "tokens the repeat penalty looks back on",
                 &g->repeat_last_n, 0, 4096),
       seed_flag(&g->seed, "sampling seed"),
       switch_flag("--ignore-eos", "go on past the end of text (for benchmarks)", &g->ignore_eos),
       onednn_flag(&g->onednn), model_flag(&g->model)});
}

int start(const Generation& g, Generator* gen) {
  if (int e = load_model(g.model, &gen->m)) return e;
  std::string err;
  if (!sampler_init(&gen->sampler, gen->m.hp.n_vocab,
                    {g.temp, (int)g.top_k, g.top_p, (uint64_t)g.seed, g.min_p, g.repeat_penalty,
                     (int)g.repeat_last_n},
                    &err))
    return error(kUsage, err);
  if (int e =
          make_context(gen->m, g.dtype, g.threads, g.policy.c_str(), g.budget, &gen->c, g.onednn))
    return e;
  gen->pieces = token_pieces(gen->m.tok);
  gen->logits.assign(gen->m.hp.n_vocab, 0.f);
  gen->ignore_eos = g.ignore_eos;
  return 0;
}

void print_session(const Generation& g, const Generator& gen) {
  amskv_stats st;
  amskv_get_stats(gen.c.kv, &st);
  std::fprintf(stderr,
               "amskv: %s (%d layers); KV budget %zu bytes (%.2f MiB), session %zu bytes, "
               "capacity %d tokens/layer, target %d; %s, policy %s, kernels %s, %ld threads\n",
               g.model.c_str(), gen.m.hp.n_layer, st.budget_bytes, st.budget_bytes / 1048576.0,
               st.bytes_used, st.capacity_tokens, st.target_tokens, amskv_dtype_name(g.dtype),
               g.policy.c_str(), st.isa, g.threads);
}

bool prefill(Generator& gen, const std::vector<int32_t>& ids) {
  for (int32_t id : ids) sampler_accept(gen.sampler, id);
  return llama_prefill(gen.c, ids.data(), (int)ids.size(), gen.logits.data());
}

bool generate(Generator& gen, long n, long* generated) {
  for (*generated = 0; *generated < n; ++*generated) {
    const int32_t next = sampler_sample(gen.sampler, gen.logits.data());
    sampler_accept(gen.sampler, next);
    if (!gen.ignore_eos && is_end(gen.m.tok, next)) return true;
    std::fwrite(gen.pieces[next].data(), 1, gen.pieces[next].size(), stdout);
    std::fflush(stdout);
    if (!llama_decode(gen.c, next, gen.logits.data())) return false;
  }
  return true;
}

int first_global_layer(const LlamaModel& m) {
  int l = 0;
  while (l + 1 < m.hp.n_layer && m.layers[l].local) ++l;
  return l;
}

void print_eviction(const LlamaContext& c) {
  amskv_stats st;
  amskv_get_stats(c.kv, &st);
  const int l = first_global_layer(*c.m);
  char local[96] = "";
  if (st.local_layers)
    std::snprintf(local, sizeof local, " (%d local layers hold their last %d)", st.local_layers,
                  st.local_capacity_tokens);
  // Region wipe-out (amskv_stats.wipe_rate): regions with no token kept at an event.
  std::fprintf(stderr,
               "amskv: KV session %.2f of %.2f MiB budget, layer %d holds %d of %d tokens%s; %llu "
               "events, %llu tokens evicted, wipe-out rate %.4f (%llu of %llu regions)\n",
               st.bytes_used / 1048576.0, st.budget_bytes / 1048576.0, l,
               amskv_layer_tokens(c.kv, l), st.capacity_tokens, local,
               (unsigned long long)st.events, (unsigned long long)st.tokens_evicted, st.wipe_rate,
               (unsigned long long)st.wiped_segments, (unsigned long long)st.wipe_segments);
}

}  // namespace cli
}  // namespace amskv
