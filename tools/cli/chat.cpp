// amskv chat: an interactive conversation in the model's chat template, all of it in one KV
// session.
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>

#include "tools/cli/generate.h"

namespace amskv {
namespace cli {

int cmd_chat(int argc, char** argv) {
  Generation g;
  g.n = 512;
  std::string system;
  Spec spec{"chat",
            "[options]",
            "  Talk to an instruct model; the whole conversation stays in the KV session and the\n"
            "  eviction policy keeps it inside the budget. /quit (or end of input) exits.\n",
            {string_flag("--system", "TEXT", "a system message first", &system)}};
  add_generation_flags(&g, "reply tokens at most per turn", &spec.flags);
  int rc;
  if (!parse(argc, argv, spec, &rc)) return rc;
  Generator gen;
  if (int e = start(g, &gen)) return e;
  print_session(g, gen);
  std::vector<int32_t> ids;
  // Template text is tokenized with special tokens; what the user types is not, so typing
  // "<|im_end|>" cannot end a turn.
  auto add = [&](const std::string& text, bool special) {
    tokenize(gen.m.tok, text, false, special, &ids);
  };
  if (!gen.m.chat) return error(kUsage, "chat: the model's chat template is not one amskv knows");
  const ChatFormat& f = *gen.m.chat;
  if (gen.m.tok.add_bos_token && gen.m.tok.bos_id >= 0) ids.push_back(gen.m.tok.bos_id);
  // Without a system role the system text opens the first user turn.
  std::string pending_system;
  if (!system.empty() && f.system) {
    add(chat_open(f, "system"), true), add(system, false), add(f.end, true);
  } else if (!system.empty()) {
    pending_system = system + "\n\n";
  }
  const bool tty = isatty(0);
  std::string line;
  for (;;) {
    if (tty) std::fputs("> ", stdout), std::fflush(stdout);
    if (!std::getline(std::cin, line) || line == "/quit") break;
    if (line.empty()) continue;
    add(chat_open(f, "user"), true), add(pending_system + line, false);
    add(f.end + chat_open(f, "assistant"), true);
    pending_system.clear();
    auto t0 = std::chrono::steady_clock::now();
    if (!prefill(gen, ids)) return error(kRuntime, gen.c.error);
    ids.clear();
    long generated = 0;
    const bool ok = generate(gen, g.n, &generated);
    std::fputs("\n", stdout);
    if (!ok) return error(kRuntime, gen.c.error);
    // Close the turn in the history: the end token (sampled or not) and a newline.
    add(f.end, true);
    amskv_stats st;
    amskv_get_stats(gen.c.kv, &st);
    const int gl = first_global_layer(gen.m);
    std::fprintf(stderr, "[%ld tokens, %.1f tok/s; position %d, layer %d holds %d, %llu events]\n",
                 generated, generated / seconds_since(t0), gen.c.pos, gl,
                 amskv_layer_tokens(gen.c.kv, gl), (unsigned long long)st.events);
  }
  print_eviction(gen.c);
  return 0;
}

}  // namespace cli
}  // namespace amskv
