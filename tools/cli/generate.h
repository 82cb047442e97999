// What the model subcommands share: the model and a context with one-line errors, and for
// run and chat their common flags, their set-up and the one generation loop.
#pragma once

#include <string>
#include <vector>

#include "runtime/model/llama.h"
#include "runtime/model/sampler.h"
#include "tools/cli/common.h"
#include "tools/cli/flags.h"
#include "tools/cli/policies.h"

namespace amskv {
namespace cli {

// Loads the model (a path or a short name): 0, or the exit status after its one line: 2 for a
// GGUF the runner does not support (architecture, tensor type, key, shape), 1 for a file that
// cannot be read.
int load_model(const std::string& path, LlamaModel* m);

// A context, or one line and its exit status: a refused budget or policy is the user's
// (kUsage), anything else kRuntime.
int make_context(const LlamaModel& m, amskv_dtype dtype, long threads, const char* policy,
                 size_t budget, LlamaContext* c, bool onednn = false);

// The bytes the full cache of this model needs for `tokens` tokens per layer.
size_t full_cache_bytes(const LlamaModel& m, amskv_dtype dtype, int tokens, int n_threads = 1);

// The settings run and chat share.
struct Generation {
  std::string model = default_model(), policy = default_policy();
  size_t budget = 8u << 20;
  // k8v4: the most quality per byte at every budget below the full q8 cache, on both
  // models measured (docs/guide.md, "Which dtype"); --kv-dtype f16 as llama.cpp's cache.
  amskv_dtype dtype = AMSKV_K8V4;
  // Sampling as llama.cpp's defaults; --temp 0 is greedy. A fixed seed: a run repeats.
  long n = 128, threads = default_threads(), seed = 1, top_k = 40, repeat_last_n = 64;
  float temp = 0.8f, top_p = 0.95f, min_p = 0.05f, repeat_penalty = 1.f;
  bool ignore_eos = false;  // go on past the end of text (benchmarks)
  bool onednn = false;      // prompt batches on oneDNN
};

// Their flags, appended to a command's own.
void add_generation_flags(Generation* g, const char* n_help, std::vector<Flag>* flags);

struct Generator {
  LlamaModel m;
  Sampler sampler;
  LlamaContext c;
  std::vector<std::string> pieces;  // every token's bytes
  std::vector<float> logits;        // [n_vocab], of the last token fed
  bool ignore_eos = false;
};

// Prompt tokens through the model, seen by the sampler's repetition penalty too; false:
// gen.c.error says why.
bool prefill(Generator& gen, const std::vector<int32_t>& ids);

// Model, sampler and context for g; 0 or the exit status.
int start(const Generation& g, Generator* gen);

// The session line on stderr: model, budget, capacity, dtype, policy, kernels, threads.
void print_session(const Generation& g, const Generator& gen);

// Samples, prints and decodes up to n tokens after gen.logits, stopping at the end of text.
// false when a decode failed (gen.c.error says why).
bool generate(Generator& gen, long n, long* generated);

// The first global (not sliding-window) layer: the one the stats lines show.
int first_global_layer(const LlamaModel& m);
// The eviction line on stderr: events, tokens evicted, wipe-out rate, tokens held.
void print_eviction(const LlamaContext& c);

}  // namespace cli
}  // namespace amskv
