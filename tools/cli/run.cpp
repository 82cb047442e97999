// amskv run: generate text from a prompt with the KV cache in a fixed budget.
#include <chrono>
#include <cstdio>

#include "tools/cli/generate.h"

namespace amskv {
namespace cli {

int cmd_run(int argc, char** argv) {
  Generation g;
  std::string prompt, file;
  bool has_prompt = false, chat = false;
  Spec spec{"run",
            "--prompt TEXT | --file PATH [options]",
            "  Generate text from a prompt with the KV cache in a fixed budget. Text goes to\n"
            "  stdout as it is produced; budget, capacity, speeds and eviction stats to stderr.\n",
            {string_flag("--prompt", "TEXT", "the prompt", &prompt, &has_prompt),
             string_flag("--file", "PATH", "the prompt, from a file", &file),
             switch_flag("--chat", "wrap the prompt in the model's chat template (instruct models)",
                         &chat)}};
  add_generation_flags(&g, "tokens to generate at most; stops earlier at end of text", &spec.flags);
  int rc;
  if (!parse(argc, argv, spec, &rc)) return rc;
  if (has_prompt == !file.empty()) return error(kUsage, "run needs --prompt TEXT or --file PATH");
  if (!file.empty() && !read_file(file, &prompt))
    return error(kRuntime, "cannot read prompt file '" + file + "'");
  Generator gen;
  if (int e = start(g, &gen)) return e;
  std::vector<int32_t> ids;
  const bool bos = gen.m.tok.add_bos_token;
  if (chat) {
    if (!gen.m.chat)
      return error(kUsage, "--chat: the model's chat template is not one amskv knows");
    const ChatFormat& f = *gen.m.chat;
    tokenize(gen.m.tok, chat_open(f, "user"), bos, true, &ids);
    tokenize(gen.m.tok, prompt, false, false, &ids);
    tokenize(gen.m.tok, f.end + chat_open(f, "assistant"), false, true, &ids);
  } else {
    tokenize(gen.m.tok, prompt, bos, false, &ids);
  }
  if (ids.empty()) return error(kUsage, "the prompt is empty");
  print_session(g, gen);

  auto t0 = std::chrono::steady_clock::now();
  if (!prefill(gen, ids)) return error(kRuntime, gen.c.error);
  const double prefill_s = seconds_since(t0);
  t0 = std::chrono::steady_clock::now();
  long generated = 0;
  const bool ok = generate(gen, g.n, &generated);
  const double decode_s = seconds_since(t0);
  std::fputs("\n", stdout);
  if (!ok) return error(kRuntime, gen.c.error);
  std::fprintf(stderr,
               "amskv: prompt %zu tokens, prefill %.1f tok/s; generated %ld tokens, decode %.1f "
               "tok/s\n",
               ids.size(), ids.size() / prefill_s, generated,
               generated > 0 ? generated / decode_s : 0.0);
  print_eviction(gen.c);
  return 0;
}

}  // namespace cli
}  // namespace amskv
