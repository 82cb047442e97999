// The cost of one compression event per policy next to the decode step it interrupts.
// A layer of SmolLM2-135M's geometry (9 query heads, 3 KV heads, head_dim 64, f16) is filled
// to capacity; "event" times one amskv_attend call that must compress first, "decode" one
// that need not. The figure that matters: (event - decode) / interval / decode, the event's
// cost shared over the tokens between events, as a fraction of the decode step.
//
//   amskv_microbench_event --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <cstdio>
#include <random>
#include <string>
#include <vector>

#include "amskv/amskv.h"
#include "tools/cli/policies.h"

namespace {

constexpr int kQ = 9, kKV = 3, kD = 64;

struct Layer {
  amskv_session* s = nullptr;
  int32_t pos = 0;
  std::vector<float> q, k, v, out;
  std::mt19937 rng{7};

  Layer(const std::string& policy, int capacity, int interval) {
    amskv_config c = amskv_config_default();
    c.n_q_heads = kQ, c.n_kv_heads = kKV, c.head_dim = kD;
    c.policy = policy.c_str();
    c.interval = interval;
    amskv_session_create(&c, amskv_budget_for_capacity(&c, capacity), &s);
    q.resize((size_t)capacity * kQ * kD);
    k.resize((size_t)capacity * kKV * kD);
    v.resize(k.size());
    out.resize(q.size());
    std::normal_distribution<float> n(0.f, 1.f);
    for (auto* b : {&q, &k, &v})
      for (float& x : *b) x = n(rng);
  }
  ~Layer() { amskv_session_destroy(s); }
  // Tokens until the layer holds exactly `n`.
  void fill_to(int n) {
    const int held = amskv_layer_tokens(s, 0);
    if (n > held) amskv_prefill(s, 0, pos, n - held, q.data(), k.data(), v.data(), out.data());
    pos += n - held;
  }
  void step() { amskv_attend(s, 0, pos++, q.data(), k.data(), v.data(), out.data()); }
};

void run(benchmark::State& state, const std::string& policy, bool event) {
  const int capacity = (int)state.range(0), interval = (int)state.range(1);
  Layer layer(policy, capacity, interval);
  if (!layer.s) {
    state.SkipWithError(amskv_last_error(nullptr));
    return;
  }
  layer.fill_to(capacity);
  for (auto _ : state) {
    state.PauseTiming();
    // event: a full layer, so the timed call compresses first. decode: one slot free, so
    // it does not (an untimed event makes room when the layer is full).
    if (!event && amskv_layer_tokens(layer.s, 0) == capacity) layer.step();
    layer.fill_to(event ? capacity : capacity - 1);
    state.ResumeTiming();
    layer.step();
  }
  amskv_stats st;
  amskv_get_stats(layer.s, &st);
  state.counters["events"] = (double)st.events;
}

}  // namespace

int main(int argc, char** argv) {
  // Streaming, then every top-k scorer of the library alone and under AMS (query-model
  // scorers with the full covariance and with its diagonal, not what cov=auto picks).
  std::vector<std::string> policies = {amskv::cli::kStreaming};
  for (const amskv_scorer_info* s : amskv::cli::topk_scorers()) {
    const bool q = std::string(s->evidence) == "queries";
    policies.push_back(s->name + std::string(q ? ",cov=full" : ""));
    policies.push_back(std::string("ams:") + policies.back());
    if (q) policies.push_back(std::string("ams:") + s->name + ",cov=diag");
  }
  for (const std::string& p : policies)
    for (bool event : {false, true}) {
      const std::string name = (event ? "event/" : "decode/") + p;
      benchmark::RegisterBenchmark(name.c_str(), run, p, event)
          ->Args({1024, 512})
          ->Args({4096, 512})
          ->Unit(benchmark::kMicrosecond)
          ->Iterations(event ? 20 : 200);
    }
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
