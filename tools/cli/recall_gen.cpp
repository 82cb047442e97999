// amskv recall-gen: recall tasks for amskv eval (JSONL, docs/eval.md) made from any text.
#include <cstdio>

#include "tools/cli/eval.h"

namespace amskv {
namespace cli {

int cmd_recall_gen(int argc, char** argv) {
  std::string model = default_model(), text, kind = "recall";
  long ctx = 2048, facts = 16, tasks = 4, seed = 1;
  Spec spec{"recall-gen",
            "--text FILE [options]",
            "  Writes recall tasks (JSONL, docs/eval.md) built from FILE to stdout; the model's\n"
            "  tokenizer sizes the pieces.\n",
            {string_flag("--text", "FILE", "the text the tasks are cut from", &text),
             only(string_flag("--kind", "K",
                              "recall (facts in prose), recall_q (the keys named first), chat "
                              "(the model's chat template) or code (Python for .py, else C++)",
                              &kind),
                  "recall recall_q chat code"),
             long_flag("--ctx", "N", "tokens per task prompt", &ctx, 256, 1 << 20),
             long_flag("--facts", "N", "facts per task", &facts, 1, 64),
             long_flag("--tasks", "N", "tasks", &tasks, 1, 100000),
             seed_flag(&seed, "seed of the facts"), model_flag(&model)}};
  int rc;
  if (!parse(argc, argv, spec, &rc)) return rc;
  if (text.empty()) return error(kUsage, "recall-gen needs --text FILE");
  std::string bytes;
  if (!read_file(text, &bytes) || bytes.empty())
    return error(kRuntime, "cannot read text '" + text + "'");
  LlamaModel m;
  if (int e = load_model(model, &m)) return e;
  std::string err;
  const std::vector<eval::RecallTask> out =
      eval::make_tasks(kind, m.tok, m.chat, bytes, eval::base_name(text), (int)ctx, (int)facts,
                       (int)tasks, (uint64_t)seed, &err);
  if (out.empty()) return error(kUsage, "recall-gen --kind " + kind + ": " + err);
  for (const eval::RecallTask& t : out) std::printf("%s\n", eval::task_json(t).c_str());
  return 0;
}

}  // namespace cli
}  // namespace amskv
