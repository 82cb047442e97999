// libFuzzer: arbitrary bytes as a recall task file (JSONL, docs/eval.md). A file is either
// refused with a message naming it, leaving the output as it was, or read into tasks whose
// facts index their pieces and lie within them; an accepted file written back
// (task_json) reads back to the same tasks.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tools/cli/eval.h"

using namespace amskv::eval;

namespace {

bool same(const RecallTask& a, const RecallTask& b) {
  if (a.id != b.id || a.kind != b.kind || a.sep != b.sep || a.qsep != b.qsep ||
      a.special != b.special || a.pieces != b.pieces || a.facts.size() != b.facts.size())
    return false;
  for (size_t i = 0; i < a.facts.size(); ++i) {
    const Fact &x = a.facts[i], &y = b.facts[i];
    if (x.piece != y.piece || x.offset != y.offset || x.text != y.text ||
        x.question != y.question || x.answer != y.answer)
      return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text((const char*)data, size);
  std::vector<RecallTask> tasks(1);  // a task already there must stay
  tasks[0].id = "kept";
  std::string err;
  if (!parse_recall(text, "fuzz.jsonl", &tasks, &err)) {
    if (tasks.size() != 1 || tasks[0].id != "kept") __builtin_trap();
    if (err.rfind("fuzz.jsonl", 0) != 0 && err.find("'fuzz.jsonl'") == std::string::npos)
      __builtin_trap();  // the message names the file
    return 0;
  }
  tasks.erase(tasks.begin());
  std::string again;
  for (const RecallTask& t : tasks) {
    if (t.pieces.empty() || t.facts.empty()) __builtin_trap();
    for (const Fact& f : t.facts)
      if (f.piece < 0 || f.piece >= (int)t.pieces.size() || f.offset < -1 ||
          f.offset > (long)t.pieces[f.piece].size() || f.text.empty() || f.question.empty() ||
          f.answer.empty())
        __builtin_trap();
    again += task_json(t) + "\n";
  }
  std::vector<RecallTask> back;
  if (!parse_recall(again, "again", &back, &err) || back.size() != tasks.size()) __builtin_trap();
  for (size_t i = 0; i < tasks.size(); ++i)
    if (!same(tasks[i], back[i])) __builtin_trap();
  return 0;
}
