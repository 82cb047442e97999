// amskv: run a GGUF llama model with its KV cache inside a fixed byte budget.
//
//   amskv run --prompt TEXT | --file PATH [-n 128] [--kv-budget 8MiB] [--policy ams:tova] ...
//   amskv chat [--system TEXT] [...]      an interactive ChatML conversation
//   amskv inspect [MODEL]                 geometry, tensor types, KV capacity per budget
//   amskv logits --tokens 1,2,3           (hidden, for tests) last position's logits
//
// The model is --model PATH, else $AMSKV_MODEL, else
// ~/.cache/amskv/SmolLM2-135M-Instruct.Q4_1.gguf (tools/setup.sh puts it there).
// Exit status: 0 done, 1 runtime error (model file, I/O, attention), 2 usage error (flags,
// budget, policy).
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/model/llama.h"
#include "runtime/model/sampler.h"
#include "tools/cli/common.h"
#include "tools/cli/eval.h"

namespace amskv {
int stress_main(int argc, char** argv);
}


using namespace amskv;

namespace {

using cli::default_model;
using cli::error;
using cli::kRuntime;
using cli::kUsage;
using cli::parse_float;
using cli::parse_long;
using cli::parse_size;

// "1,2,3" -> ids.
bool parse_ids(const std::string& s, std::vector<int32_t>* out) {
  std::stringstream ss(s);
  std::string item;
  long v;
  while (std::getline(ss, item, ','))
    if (!parse_long(item, 0, INT32_MAX, &v))
      return false;
    else
      out->push_back((int32_t)v);
  return !out->empty();
}

const char* dtype_name(amskv_dtype d) {
  return d == AMSKV_F32 ? "f32" : d == AMSKV_F16 ? "f16" : "q8";
}

// Every flag of every subcommand; each subcommand says which it accepts.
struct Options {
  std::string model = default_model(), prompt, file, system, tokens;
  std::string policy = "ams:tova";
  bool has_prompt = false, chat = false;
  size_t budget = 8u << 20;
  amskv_dtype dtype = AMSKV_F16;
  long n = 128, threads = 0, seed = 1, top_k = 0;
  float temp = 0.f, top_p = 1.f;
  std::vector<std::string> positional;
};

// Parses argv against `allowed` (flag names separated by spaces). Returns 0 on success,
// else prints one line and returns kUsage; -1 when --help was asked for.
int parse(int argc, char** argv, const char* allowed, Options* o) {
  const std::string allow = std::string(" ") + allowed + " ";
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") return -1;
    if (a.size() < 2 || a[0] != '-') {
      o->positional.push_back(a);
      continue;
    }
    if (allow.find(" " + a + " ") == std::string::npos)
      return error(kUsage, "unknown option '" + a + "' (see --help)");
    if (a == "--chat") {
      o->chat = true;
      continue;
    }
    if (i + 1 >= argc) return error(kUsage, a + " needs a value");
    const std::string v = argv[++i];
    bool ok = true;
    if (a == "--model") {
      o->model = v;
    } else if (a == "--prompt") {
      o->prompt = v, o->has_prompt = true;
    } else if (a == "--file") {
      o->file = v;
    } else if (a == "--system") {
      o->system = v;
    } else if (a == "--tokens") {
      o->tokens = v;
    } else if (a == "--policy") {
      o->policy = v;
    } else if (a == "-n") {
      ok = parse_long(v, 0, 1 << 30, &o->n);
    } else if (a == "--kv-budget") {
      ok = parse_size(v, &o->budget);
    } else if (a == "--kv-dtype") {
      ok = v == "f32" || v == "f16" || v == "q8";
      o->dtype = v == "f32" ? AMSKV_F32 : v == "f16" ? AMSKV_F16 : AMSKV_Q8;
    } else if (a == "--threads") {
      ok = parse_long(v, 1, 256, &o->threads);
    } else if (a == "--seed") {
      ok = parse_long(v, 0, 2147483647L, &o->seed);
    } else if (a == "--temp") {
      ok = parse_float(v, 0.f, 100.f, &o->temp);
    } else if (a == "--top-k") {
      ok = parse_long(v, 0, 1 << 30, &o->top_k);
    } else if (a == "--top-p") {
      ok = parse_float(v, 1e-9f, 1.f, &o->top_p) && o->top_p > 0.f;
    }
    if (!ok) {
      const char* want = a == "--kv-budget"  ? "a size like 8MiB, 512KiB, 1GiB or 1048576"
                         : a == "--kv-dtype" ? "f32, f16 or q8"
                         : a == "--threads"  ? "a count in 1..256"
                         : a == "--temp"     ? "a number in 0..100"
                         : a == "--top-p"    ? "a number in (0, 1]"
                                             : "a non-negative integer";
      return error(kUsage, "bad value '" + v + "' for " + a + ": expected " + want);
    }
  }
  if (o->threads == 0) o->threads = cli::default_threads();
  return 0;
}

const char* const kRunHelp =
    "amskv run: generate text from a prompt with the KV cache in a fixed budget\n"
    "  --prompt TEXT | --file PATH   the prompt\n"
    "  --chat              wrap the prompt in the ChatML template (instruct models)\n"
    "  -n N                tokens to generate at most (128); stops earlier at end of text\n"
    "  --kv-budget SIZE    KV session bytes: 8MiB (default), 512KiB, 1GiB or plain bytes\n"
    "  --kv-dtype T        f32, f16 (default) or q8\n"
    "  --policy STRING     full, streaming, <scorer>, ams:<scorer>[,key=value...]\n"
    "                      (default ams:tova; see docs/guide.md)\n"
    "  --threads N         threads (default: all CPUs)\n"
    "  --temp T            sampling temperature (0 = greedy, the default)\n"
    "  --top-k K, --top-p P, --seed S   sampling (0 = off, 1.0 = off, seed 1)\n"
    "  --model PATH        GGUF model (default $AMSKV_MODEL or "
    "~/.cache/amskv/SmolLM2-135M-Instruct.Q4_1.gguf)\n"
    "Text goes to stdout as it is produced; budget, capacity, speeds and eviction stats go to "
    "stderr.\n";
const char* const kChatHelp =
    "amskv chat: talk to an instruct model; the whole conversation stays in the KV session\n"
    "and the eviction policy keeps it inside the budget. /quit (or end of input) exits.\n"
    "  --system TEXT       a system message first\n"
    "  -n N                reply tokens at most per turn (512)\n"
    "  --kv-budget, --kv-dtype, --policy, --threads, --temp (0.7 here), --top-k, --top-p,\n"
    "  --seed, --model     as for amskv run\n";
const char* const kInspectHelp =
    "amskv inspect [MODEL]: architecture, hyperparameters, tensor types and the KV capacity\n"
    "(tokens per layer) for budgets of 1, 4, 16 and 64 MiB with each KV dtype.\n"
    "  --policy STRING     policy the capacities are for (default ams:tova)\n"
    "  --model PATH        the model, as an alternative to MODEL\n";
const char* const kLogitsHelp =
    "amskv logits --tokens 1,2,3 | --prompt TEXT: (for tests) prefill with the full cache and\n"
    "print the last position's logits, one per line.\n"
    "  --kv-dtype T (default f32), --threads N, --model PATH\n";

// Loads the model or says why not (exit 1).
bool load(const Options& o, LlamaModel* m) {
  std::string err;
  if (llama_load(o.model.c_str(), m, &err)) return true;
  error(kRuntime, err);
  return false;
}

// A context or one line: a refused budget or policy is the user's (2), anything else 1.
int make_context(const LlamaModel& m, const Options& o, const char* policy, size_t budget,
                 LlamaContext* c) {
  LlamaParams p;
  p.kv_budget = budget;
  p.kv_dtype = o.dtype;
  p.policy = policy;
  p.n_threads = (int)o.threads;
  std::string err;
  if (llama_context_init(c, m, p, &err)) return 0;
  const bool usage = c->status == AMSKV_E_BUDGET || c->status == AMSKV_E_POLICY ||
                     c->status == AMSKV_E_INVALID || c->status == AMSKV_E_UNSUPPORTED;
  return error(usage ? kUsage : kRuntime, err);
}

using cli::is_end;
using cli::seconds_since;
using cli::token_pieces;

void print_session(const Options& o, const LlamaContext& c) {
  amskv_stats st;
  amskv_get_stats(c.kv, &st);
  std::fprintf(stderr,
               "amskv: %s (%d layers); KV budget %zu bytes (%.2f MiB), session %zu bytes, "
               "capacity %d tokens/layer, target %d; %s, policy %s, kernels %s, %ld threads\n",
               o.model.c_str(), c.m->hp.n_layer, st.budget_bytes, st.budget_bytes / 1048576.0,
               st.bytes_used, st.capacity_tokens, st.target_tokens, dtype_name(o.dtype),
               o.policy.c_str(), st.isa, o.threads);
}

void print_eviction(const LlamaContext& c) {
  amskv_stats st;
  amskv_get_stats(c.kv, &st);
  // Region wipe-out (amskv_stats.wipe_rate): regions with no token kept at an event.
  std::fprintf(stderr,
               "amskv: %llu events, %llu tokens evicted, wipe-out rate %.4f (%llu of %llu "
               "regions), layer 0 holds %d tokens\n",
               (unsigned long long)st.events, (unsigned long long)st.tokens_evicted, st.wipe_rate,
               (unsigned long long)st.wiped_segments, (unsigned long long)st.wipe_segments,
               amskv_layer_tokens(c.kv, 0));
}

// Samples, prints and decodes up to n tokens after `logits`, stopping at the end of text.
// false when a decode failed (c.error says why).
bool generate(LlamaContext& c, Sampler& sampler, const std::vector<std::string>& pieces, long n,
              std::vector<float>* logits, long* generated) {
  for (*generated = 0; *generated < n; ++*generated) {
    const int32_t next = sampler_sample(sampler, logits->data());
    if (is_end(c.m->tok, next)) return true;
    std::fwrite(pieces[next].data(), 1, pieces[next].size(), stdout);
    std::fflush(stdout);
    if (!llama_decode(c, next, logits->data())) return false;
  }
  return true;
}

int run(int argc, char** argv) {
  Options o;
  const int rc = parse(argc, argv,
                       "--model --prompt --file --chat -n --kv-budget --kv-dtype --policy "
                       "--threads --seed --temp --top-k --top-p",
                       &o);
  if (rc < 0) return std::fputs(kRunHelp, stdout), 0;
  if (rc) return rc;
  if (!o.positional.empty()) return error(kUsage, "unexpected argument '" + o.positional[0] + "'");
  if (o.has_prompt == !o.file.empty())
    return error(kUsage, "run needs --prompt TEXT or --file PATH");
  if (!o.file.empty() && !cli::read_file(o.file, &o.prompt))
    return error(kRuntime, "cannot read prompt file '" + o.file + "'");
  LlamaModel m;
  if (!load(o, &m)) return kRuntime;
  Sampler sampler;
  std::string err;
  if (!sampler_init(&sampler, m.hp.n_vocab, {o.temp, (int)o.top_k, o.top_p, (uint64_t)o.seed},
                    &err))
    return error(kUsage, err);
  LlamaContext c;
  if (int e = make_context(m, o, o.policy.c_str(), o.budget, &c)) return e;

  std::vector<int32_t> ids;
  if (o.chat)
    tokenize(m.tok, chatml_prompt({{"user", o.prompt}}, true), false, true, &ids);
  else
    tokenize(m.tok, o.prompt, false, false, &ids);
  if (ids.empty()) return error(kUsage, "the prompt is empty");
  const std::vector<std::string> pieces = token_pieces(m.tok);
  std::vector<float> logits(m.hp.n_vocab);
  print_session(o, c);

  auto t0 = std::chrono::steady_clock::now();
  if (!llama_prefill(c, ids.data(), (int)ids.size(), logits.data()))
    return error(kRuntime, c.error);
  const double prefill_s = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  long generated = 0;
  const bool ok = generate(c, sampler, pieces, o.n, &logits, &generated);
  const double decode_s = seconds_since(t0);
  std::fputs("\n", stdout);
  if (!ok) return error(kRuntime, c.error);
  std::fprintf(stderr,
               "amskv: prompt %zu tokens, prefill %.1f tok/s; generated %ld tokens, decode %.1f "
               "tok/s\n",
               ids.size(), ids.size() / prefill_s, generated,
               generated > 0 ? generated / decode_s : 0.0);
  print_eviction(c);
  return 0;
}

int chat(int argc, char** argv) {
  Options o;
  o.n = 512;
  o.temp = 0.7f;
  const int rc = parse(argc, argv,
                       "--model --system -n --kv-budget --kv-dtype --policy --threads --seed "
                       "--temp --top-k --top-p",
                       &o);
  if (rc < 0) return std::fputs(kChatHelp, stdout), 0;
  if (rc) return rc;
  if (!o.positional.empty()) return error(kUsage, "unexpected argument '" + o.positional[0] + "'");
  LlamaModel m;
  if (!load(o, &m)) return kRuntime;
  Sampler sampler;
  std::string err;
  if (!sampler_init(&sampler, m.hp.n_vocab, {o.temp, (int)o.top_k, o.top_p, (uint64_t)o.seed},
                    &err))
    return error(kUsage, err);
  LlamaContext c;
  if (int e = make_context(m, o, o.policy.c_str(), o.budget, &c)) return e;
  print_session(o, c);
  const std::vector<std::string> pieces = token_pieces(m.tok);
  std::vector<float> logits(m.hp.n_vocab);
  std::vector<int32_t> ids;
  // Template text is tokenized with special tokens; what the user types is not, so typing
  // "<|im_end|>" cannot end a turn.
  auto add = [&](const std::string& text, bool special) {
    tokenize(m.tok, text, false, special, &ids);
  };
  if (!o.system.empty()) {
    add("<|im_start|>system\n", true), add(o.system, false), add("<|im_end|>\n", true);
  }
  const bool tty = isatty(0);
  std::string line;
  for (;;) {
    if (tty) std::fputs("> ", stdout), std::fflush(stdout);
    if (!std::getline(std::cin, line) || line == "/quit") break;
    if (line.empty()) continue;
    add("<|im_start|>user\n", true), add(line, false),
        add("<|im_end|>\n<|im_start|>assistant\n", true);
    auto t0 = std::chrono::steady_clock::now();
    if (!llama_prefill(c, ids.data(), (int)ids.size(), logits.data()))
      return error(kRuntime, c.error);
    ids.clear();
    long generated = 0;
    const bool ok = generate(c, sampler, pieces, o.n, &logits, &generated);
    std::fputs("\n", stdout);
    if (!ok) return error(kRuntime, c.error);
    // Close the turn in the history: the end token (sampled or not) and a newline.
    add("<|im_end|>\n", true);
    amskv_stats st;
    amskv_get_stats(c.kv, &st);
    std::fprintf(stderr, "[%ld tokens, %.1f tok/s; position %d, layer 0 holds %d, %llu events]\n",
                 generated, generated / seconds_since(t0), c.pos, amskv_layer_tokens(c.kv, 0),
                 (unsigned long long)st.events);
  }
  print_eviction(c);
  return 0;
}

int inspect(int argc, char** argv) {
  Options o;
  const int rc = parse(argc, argv, "--model --policy", &o);
  if (rc < 0) return std::fputs(kInspectHelp, stdout), 0;
  if (rc) return rc;
  if (o.positional.size() > 1) return error(kUsage, "inspect takes one model path");
  if (o.positional.size() == 1) o.model = o.positional[0];
  LlamaModel m;
  if (!load(o, &m)) return kRuntime;
  const LlamaHparams& hp = m.hp;
  std::printf("%s\n", o.model.c_str());
  std::printf("architecture llama, GGUF v%u, %zu tensors, %.1f MiB\n", m.file.version,
              m.file.tensors.size(), m.file.size / 1048576.0);
  std::printf(
      "layers %d, embedding %d, heads %d (KV heads %d, head_dim %d), ffn %d, vocab %d,\n"
      "rope theta %g, rms eps %g, embeddings %s\n",
      hp.n_layer, hp.n_embd, hp.n_head, hp.n_head_kv, hp.head_dim, hp.n_ff, hp.n_vocab,
      hp.rope_theta, hp.rms_eps, m.output == m.tok_embd ? "tied" : "separate output");
  std::map<std::string, int> types;
  for (const GgufTensor& t : m.file.tensors) types[ggml_type_name(t.type)]++;
  std::printf("tensor types:");
  for (auto& [name, count] : types) std::printf(" %s x%d", name.c_str(), count);
  std::printf("\ntokenizer: %zu tokens, bos %d, eos %d\n", m.tok.tokens.size(), m.tok.bos_id,
              m.tok.eos_id);
  std::printf("\nKV capacity, tokens per layer (policy %s):\n", o.policy.c_str());
  std::printf("| budget | f32 | f16 | q8 |\n|---|---|---|---|\n");
  for (int mib : {1, 4, 16, 64}) {
    std::printf("| %d MiB |", mib);
    for (amskv_dtype dt : {AMSKV_F32, AMSKV_F16, AMSKV_Q8}) {
      const amskv_config cfg = llama_session_config(m, dt, o.policy.c_str(), 1);
      amskv_session* s = nullptr;
      const amskv_status status = amskv_session_create(&cfg, (size_t)mib << 20, &s);
      if (status == AMSKV_E_POLICY) return error(kUsage, amskv_last_error(nullptr));
      if (status != AMSKV_OK) {
        std::printf(" too small |");
        continue;
      }
      amskv_stats st;
      amskv_get_stats(s, &st);
      std::printf(" %d |", st.capacity_tokens);
      amskv_session_destroy(s);
    }
    std::printf("\n");
  }
  return 0;
}

int logits(int argc, char** argv) {
  Options o;
  o.dtype = AMSKV_F32;
  const int rc = parse(argc, argv, "--model --tokens --prompt --kv-dtype --threads", &o);
  if (rc < 0) return std::fputs(kLogitsHelp, stdout), 0;
  if (rc) return rc;
  if (o.has_prompt == !o.tokens.empty()) return error(kUsage, "logits needs --tokens or --prompt");
  LlamaModel m;
  if (!load(o, &m)) return kRuntime;
  std::vector<int32_t> ids;
  if (!o.tokens.empty() && !parse_ids(o.tokens, &ids))
    return error(kUsage, "--tokens takes ids like 1,2,3");
  if (o.has_prompt) tokenize(m.tok, o.prompt, false, false, &ids);
  if (ids.empty()) return error(kUsage, "no tokens");
  // The full cache, with room for these tokens.
  const amskv_config cfg = llama_session_config(m, o.dtype, "full", 1);
  const size_t budget = amskv_budget_for_capacity(&cfg, (int)ids.size() + 64);
  LlamaContext c;
  if (int e = make_context(m, o, "full", budget, &c)) return e;
  std::vector<float> out(m.hp.n_vocab);
  if (!llama_prefill(c, ids.data(), (int)ids.size(), out.data())) return error(kRuntime, c.error);
  for (float v : out) std::printf("%.6g\n", v);
  return 0;
}

const char* const kHelp =
    "amskv: a llama GGUF model with its KV cache in a fixed memory budget\n"
    "  amskv run --prompt TEXT | --file PATH [options]   generate text\n"
    "  amskv chat [options]                              interactive ChatML chat\n"
    "  amskv inspect [MODEL]                             model and KV capacity table\n"
    "  amskv eval [options]                              policies against each other\n"
    "  amskv recall-gen --text FILE                      recall tasks for amskv eval\n"
    "  amskv bench [options]                             prefill/decode tokens/s per context\n"
    "  amskv stress [--seconds N] [--threads N]          budget stress test with invariants\n"
    "amskv SUBCOMMAND --help describes each.\n\n";

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "";
  if (cmd == "run") return run(argc - 2, argv + 2);
  if (cmd == "chat") return chat(argc - 2, argv + 2);
  if (cmd == "inspect") return inspect(argc - 2, argv + 2);
  if (cmd == "logits") return logits(argc - 2, argv + 2);
  if (cmd == "eval") return eval_main(argc - 2, argv + 2);
  if (cmd == "recall-gen") return recall_gen_main(argc - 2, argv + 2);
  if (cmd == "bench") return bench_main(argc - 2, argv + 2);
  if (cmd == "stress") return stress_main(argc - 2, argv + 2);
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::fputs(kHelp, stdout);
    std::fputs(kRunHelp, stdout);
    return 0;
  }
  if (cmd.empty()) return std::fputs(kHelp, stderr), kUsage;
  return error(kUsage, "unknown subcommand '" + cmd +
                           "' (run, chat, inspect, eval, bench, stress, recall-gen; see --help)");
}
