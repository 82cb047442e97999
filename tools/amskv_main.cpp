// amskv: run a GGUF llama model with its KV cache inside a fixed byte budget.
//
//   amskv run [--model PATH] [--prompt TEXT | --file PATH] [-n 64] [--kv-budget 8MiB]
//             [--kv-dtype f16] [--policy ams:tova] [--threads 2] [--temp 0] [--seed 1]
//             [--chat]
//   amskv inspect [MODEL]
//
// The model defaults to $AMSKV_MODEL, else ~/.cache/amskv/SmolLM2-135M-Instruct.Q4_1.gguf
// (tools/setup.sh puts it there).
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/model/llama.h"

using namespace amskv;

namespace {

std::string default_model() {
  const char* env = std::getenv("AMSKV_MODEL");
  if (env && *env) return env;
  const char* home = std::getenv("HOME");
  return std::string(home ? home : ".") + "/.cache/amskv/SmolLM2-135M-Instruct.Q4_1.gguf";
}

int usage_error(const std::string& msg) {
  std::fprintf(stderr, "amskv: %s (see amskv --help)\n", msg.c_str());
  return 2;
}

bool parse_size(const std::string& s, size_t* out) {
  char* end;
  const double v = std::strtod(s.c_str(), &end);
  const std::string unit = end;
  double mul = unit.empty()    ? 1
               : unit == "KiB" ? 1024.0
               : unit == "MiB" ? 1048576.0
               : unit == "GiB" ? 1073741824.0
                               : -1;
  if (mul < 0 || !(v > 0) || v * mul > 1e15) return false;
  *out = (size_t)(v * mul);
  return true;
}

bool parse_int(const std::string& s, long lo, long hi, long* out) {
  char* end;
  const long v = std::strtol(s.c_str(), &end, 10);
  if (s.empty() || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

struct Rng {  // xorshift64*: the same draws on every platform
  uint64_t s;
  double uniform() {
    s ^= s >> 12, s ^= s << 25, s ^= s >> 27;
    return (double)((s * 0x2545F4914F6CDD1Dull) >> 11) / 9007199254740992.0;
  }
};

int sample(const std::vector<float>& logits, float temp, Rng* rng) {
  int best = 0;
  for (int i = 1; i < (int)logits.size(); ++i)
    if (logits[i] > logits[best]) best = i;
  if (temp <= 0.f) return best;
  double sum = 0;
  for (float l : logits) sum += std::exp((l - logits[best]) / temp);
  double r = rng->uniform() * sum;
  for (int i = 0; i < (int)logits.size(); ++i) {
    r -= std::exp((logits[i] - logits[best]) / temp);
    if (r <= 0) return i;
  }
  return best;
}

int run(int argc, char** argv) {
  std::string model = default_model(), prompt = "The capital of France is", policy = "ams:tova";
  std::string dtype = "f16";
  size_t budget = 8u << 20;
  long n = 64, threads = 2, seed = 1;
  float temp = 0.f;
  bool chat = false;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&](std::string* out) {
      if (i + 1 >= argc) return false;
      *out = argv[++i];
      return true;
    };
    std::string v;
    if (a == "--model") {
      if (!value(&model)) return usage_error("--model needs a path");
    } else if (a == "--prompt") {
      if (!value(&prompt)) return usage_error("--prompt needs text");
    } else if (a == "--file") {
      if (!value(&v)) return usage_error("--file needs a path");
      std::ifstream in(v, std::ios::binary);
      if (!in) return usage_error("cannot read " + v);
      std::stringstream ss;
      ss << in.rdbuf();
      prompt = ss.str();
    } else if (a == "-n") {
      if (!value(&v) || !parse_int(v, 0, 1 << 24, &n)) return usage_error("-n needs a count");
    } else if (a == "--kv-budget") {
      if (!value(&v) || !parse_size(v, &budget))
        return usage_error("--kv-budget needs a size like 8MiB, 512KiB or 1048576");
    } else if (a == "--kv-dtype") {
      if (!value(&dtype) || (dtype != "f32" && dtype != "f16" && dtype != "q8"))
        return usage_error("--kv-dtype takes f32, f16 or q8");
    } else if (a == "--policy") {
      if (!value(&policy)) return usage_error("--policy needs a policy string");
    } else if (a == "--threads") {
      if (!value(&v) || !parse_int(v, 1, 256, &threads))
        return usage_error("--threads needs 1-256");
    } else if (a == "--seed") {
      if (!value(&v) || !parse_int(v, 0, LONG_MAX, &seed))
        return usage_error("--seed needs a number");
    } else if (a == "--temp") {
      if (!value(&v)) return usage_error("--temp needs a number");
      temp = std::strtof(v.c_str(), nullptr);
      if (!(temp >= 0.f && temp <= 100.f)) return usage_error("--temp takes 0 to 100");
    } else if (a == "--chat") {
      chat = true;
    } else {
      return usage_error("unknown option " + a);
    }
  }
  LlamaModel m;
  std::string err;
  if (!llama_load(model.c_str(), &m, &err)) {
    std::fprintf(stderr, "amskv: %s\n", err.c_str());
    return 1;
  }
  LlamaContext ctx;
  const amskv_dtype dt = dtype == "f32" ? AMSKV_F32 : dtype == "f16" ? AMSKV_F16 : AMSKV_Q8;
  if (!llama_context_init(&ctx, m, budget, dt, policy.c_str(), (int)threads, &err)) {
    std::fprintf(stderr, "amskv: %s\n", err.c_str());
    return 1;
  }
  if (chat) prompt = chatml_prompt({{"user", prompt}}, true);
  std::vector<int32_t> ids;
  tokenize(m.tok, prompt, false, chat, &ids);
  if (ids.empty()) return usage_error("the prompt has no tokens");
  amskv_stats st;
  amskv_get_stats(ctx.kv, &st);
  std::fprintf(stderr,
               "amskv: %s, %d layers; KV budget %zu bytes, session %zu, capacity %d tokens/layer, "
               "target %d, %s, policy %s, kernels %s, %ld threads\n",
               model.c_str(), m.hp.n_layer, st.budget_bytes, st.bytes_used, st.capacity_tokens,
               st.target_tokens, dtype.c_str(), policy.c_str(), st.isa, threads);
  auto t0 = std::chrono::steady_clock::now();
  for (int32_t id : ids)
    if (!llama_decode(&ctx, id, &err)) {
      std::fprintf(stderr, "amskv: %s\n", err.c_str());
      return 1;
    }
  auto t1 = std::chrono::steady_clock::now();
  Rng rng{(uint64_t)seed * 0x9E3779B97F4A7C15ull + 1};
  std::fputs(chat ? "" : prompt.c_str(), stdout);
  int generated = 0;
  for (; generated < n; ++generated) {
    const int next = sample(ctx.logits, temp, &rng);
    // End of text, or another control token such as <|im_end|>.
    if (next == m.tok.eos_id || (!m.tok.types.empty() && m.tok.types[next] == 3)) break;
    std::fputs(detokenize_token(m.tok, next).c_str(), stdout);
    std::fflush(stdout);
    if (!llama_decode(&ctx, next, &err)) {
      std::fprintf(stderr, "\namskv: %s\n", err.c_str());
      return 1;
    }
  }
  auto t2 = std::chrono::steady_clock::now();
  std::fputs("\n", stdout);
  amskv_get_stats(ctx.kv, &st);
  const double pre = std::chrono::duration<double>(t1 - t0).count();
  const double dec = std::chrono::duration<double>(t2 - t1).count();
  std::fprintf(stderr,
               "amskv: prompt %zu tokens at %.1f tok/s, generated %d at %.1f tok/s; %llu events, "
               "%llu tokens evicted, wipe-out rate %.4f, layer 0 holds %d\n",
               ids.size(), pre > 0 ? ids.size() / pre : 0.0, generated,
               dec > 0 ? generated / dec : 0.0, (unsigned long long)st.events,
               (unsigned long long)st.tokens_evicted, st.wipe_rate, amskv_layer_tokens(ctx.kv, 0));
  return 0;
}

int inspect(int argc, char** argv) {
  const std::string model = argc > 0 ? argv[0] : default_model();
  LlamaModel m;
  std::string err;
  if (!llama_load(model.c_str(), &m, &err)) {
    std::fprintf(stderr, "amskv: %s\n", err.c_str());
    return 1;
  }
  const LlamaHparams& hp = m.hp;
  std::printf(
      "%s\nllama: %d layers, embedding %d, %d query heads, %d KV heads, head_dim %d, "
      "ffn %d, vocab %d, rope theta %g, rms eps %g\n",
      model.c_str(), hp.n_layer, hp.n_embd, hp.n_head, hp.n_head_kv, hp.head_dim, hp.n_ff,
      hp.n_vocab, hp.rope_theta, hp.rms_eps);
  std::map<std::string, int> types;
  for (const GgufTensor& t : m.file.tensors) types[ggml_type_name(t.type)]++;
  std::printf("tensors:");
  for (auto& [name, count] : types) std::printf(" %s x%d", name.c_str(), count);
  std::printf(
      "\n\nKV capacity (tokens per layer, policy ams:tova, 1 thread):\n| budget | f32 | f16 | q8 "
      "|\n| --- | --- | --- | --- |\n");
  for (int mib : {1, 4, 16, 64}) {
    std::printf("| %d MiB |", mib);
    for (amskv_dtype dt : {AMSKV_F32, AMSKV_F16, AMSKV_Q8}) {
      amskv_config c = amskv_config_default();
      c.n_layers = hp.n_layer, c.n_q_heads = hp.n_head, c.n_kv_heads = hp.n_head_kv;
      c.head_dim = hp.head_dim, c.kv_dtype = dt, c.policy = "ams:tova";
      amskv_session* s;
      if (amskv_session_create(&c, (size_t)mib << 20, &s) == AMSKV_OK) {
        amskv_stats st;
        amskv_get_stats(s, &st);
        std::printf(" %d |", st.capacity_tokens);
        amskv_session_destroy(s);
      } else {
        std::printf(" too small |");
      }
    }
    std::printf("\n");
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string cmd = argc > 1 ? argv[1] : "--help";
  if (cmd == "run") return run(argc - 2, argv + 2);
  if (cmd == "inspect") return inspect(argc - 2, argv + 2);
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    std::printf(
        "amskv run [--model PATH] [--prompt TEXT | --file PATH] [-n 64] [--kv-budget 8MiB]\n"
        "          [--kv-dtype f32|f16|q8] [--policy ams:tova] [--threads 2] [--temp 0]\n"
        "          [--seed 1] [--chat]\n"
        "amskv inspect [MODEL]\n");
    return 0;
  }
  return usage_error("unknown command '" + cmd + "'");
}
