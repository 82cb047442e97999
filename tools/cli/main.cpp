// amskv: run a GGUF llama model with its KV cache inside a fixed byte budget.
//
// The command table below gives dispatch, `amskv --help` and the unknown-subcommand error;
// each subcommand is one file in tools/cli/ with its own flag table (tools/cli/flags.h). A new
// one: its file with `int cmd_NAME(int argc, char** argv)`, its declaration and its row here.
// Exit status: 0 done, 1 runtime error (model file, I/O, attention), 2 usage error (flags,
// budget, policy).
#include <cstdio>
#include <string>

#include "tools/cli/common.h"

namespace amskv {
namespace cli {

// Each entry is in tools/cli/<name>.cpp.
int cmd_run(int argc, char** argv);
int cmd_chat(int argc, char** argv);
int cmd_inspect(int argc, char** argv);
int cmd_eval(int argc, char** argv);
int cmd_recall_gen(int argc, char** argv);
int cmd_bench(int argc, char** argv);
int cmd_stress(int argc, char** argv);
int cmd_logits(int argc, char** argv);

struct Command {
  const char* name;
  const char* summary;  // one line for amskv --help; nullptr: hidden (for tests)
  int (*entry)(int argc, char** argv);
};

const Command kCommands[] = {
    {"run", "generate text from a prompt", cmd_run},
    {"chat", "interactive ChatML chat", cmd_chat},
    {"inspect", "model and KV capacity table", cmd_inspect},
    {"eval", "policies against each other on the real model", cmd_eval},
    {"recall-gen", "recall tasks for amskv eval", cmd_recall_gen},
    {"bench", "prefill/decode tokens/s of the model per context", cmd_bench},
    {"stress", "budget stress test with invariants", cmd_stress},
    {"logits", nullptr, cmd_logits},
};

std::string overview() {
  std::string s = "amskv: a llama GGUF model with its KV cache in a fixed memory budget\n";
  char line[160];
  for (const Command& c : kCommands)
    if (c.summary)
      std::snprintf(line, sizeof line, "  amskv %-11s %s\n", c.name, c.summary), s += line;
  return s +
         "amskv SUBCOMMAND --help describes each. The model is --model PATH, else $AMSKV_MODEL,\n"
         "else ~/.cache/amskv/SmolLM2-135M-Instruct.Q4_1.gguf (tools/setup.sh puts it there).\n"
         "Exit status: 0 done, 1 runtime error, 2 usage error (flags, budget, policy).\n\n";
}

int main(int argc, char** argv) {
  const std::string name = argc > 1 ? argv[1] : "";
  for (const Command& c : kCommands)
    if (name == c.name) return c.entry(argc - 2, argv + 2);
  if (name == "--help" || name == "-h" || name == "help") {
    // Then run's flags: tools/run.sh passes its options to run.
    std::fputs(overview().c_str(), stdout);
    char help[] = "--help";
    char* args[] = {help};
    return cmd_run(1, args);
  }
  if (name.empty()) return std::fputs(overview().c_str(), stderr), kUsage;
  std::string names;
  for (const Command& c : kCommands)
    if (c.summary) names += std::string(names.empty() ? "" : ", ") + c.name;
  return error(kUsage, "unknown subcommand '" + name + "' (" + names + "; see --help)");
}

}  // namespace cli
}  // namespace amskv

int main(int argc, char** argv) {
  return amskv::cli::main(argc, argv);
}
