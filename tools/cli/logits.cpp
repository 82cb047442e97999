// amskv logits (hidden, for tests): prefill with the full cache and print the last
// position's logits.
#include <cstdio>
#include <sstream>

#include "tools/cli/generate.h"

namespace amskv {
namespace cli {

int cmd_logits(int argc, char** argv) {
  std::string model = default_model(), prompt, tokens;
  bool has_prompt = false;
  amskv_dtype dtype = AMSKV_F32;
  long n_threads = default_threads();
  Spec spec{"logits",
            "--tokens 1,2,3 | --prompt TEXT [options]",
            "  (For tests) prefill with the full cache and print the last position's logits, one\n"
            "  per line.\n",
            {string_flag("--tokens", "IDS", "token ids, comma-separated", &tokens),
             string_flag("--prompt", "TEXT", "text to tokenize instead", &prompt, &has_prompt),
             kv_dtype_flag(&dtype), threads_flag(&n_threads), model_flag(&model)}};
  int rc;
  if (!parse(argc, argv, spec, &rc)) return rc;
  if (has_prompt == !tokens.empty()) return error(kUsage, "logits needs --tokens or --prompt");
  LlamaModel m;
  if (int e = load_model(model, &m)) return e;
  std::vector<int32_t> ids;
  std::stringstream ss(tokens);
  std::string item;
  long v;
  while (std::getline(ss, item, ','))
    if (!parse_long(item, 0, INT32_MAX, &v))
      return error(kUsage, "--tokens takes ids like 1,2,3");
    else
      ids.push_back((int32_t)v);
  if (!tokens.empty() && ids.empty()) return error(kUsage, "--tokens takes ids like 1,2,3");
  if (has_prompt) tokenize(m.tok, prompt, false, false, &ids);
  if (ids.empty()) return error(kUsage, "no tokens");
  // The full cache, with room for these tokens.
  LlamaContext c;
  const size_t budget = full_cache_bytes(m, dtype, (int)ids.size() + 64, (int)n_threads);
  if (int e = make_context(m, dtype, n_threads, kFull, budget, &c)) return e;
  std::vector<float> out(m.hp.n_vocab);
  if (!llama_prefill(c, ids.data(), (int)ids.size(), out.data())) return error(kRuntime, c.error);
  for (float x : out) std::printf("%.6g\n", x);
  return 0;
}

}  // namespace cli
}  // namespace amskv
