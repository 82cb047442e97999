// The recall family's task files (JSONL, docs/eval.md): read and written here alone, so the
// fuzz target (tests/fuzz/fuzz_recall.cpp) covers the whole parser.
#include <algorithm>
#include <cmath>
#include <iterator>
#include <sstream>

#include "tools/cli/eval.h"
#include "tools/json.h"

namespace amskv {
namespace eval {

const char* const kRecallKinds[4] = {"recall", "recall_q", "chat", "code"};

// One task per line: {"id": "...", "pieces": ["text", ...], "facts": [{"piece": 0,
// "text": "...", "question": "...", "answer": "...", "offset": 120}, ...]} (offset
// optional; so are "kind", "sep", "qsep" and "special"). docs/eval.md describes the format.
bool parse_recall(const std::string& text, const std::string& path, std::vector<RecallTask>* out,
                  std::string* err) {
  std::stringstream ss(text);
  std::vector<RecallTask> tasks;  // appended to *out only when every line is good
  std::string line;
  int no = 0;
  while (std::getline(ss, line)) {
    ++no;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(no) + ": ";
    json::Value v;
    std::string jerr;
    if (!json::parse(line, &v, &jerr)) return *err = where + jerr, false;
    RecallTask t;
    const json::Value *id = v.get("id"), *pieces = v.get("pieces"), *facts = v.get("facts");
    if (!pieces || pieces->kind != json::Value::kArray || pieces->arr.empty())
      return *err = where + "'pieces' must be a non-empty array of strings", false;
    if (!facts || facts->kind != json::Value::kArray || facts->arr.empty())
      return *err = where + "'facts' must be a non-empty array", false;
    t.id = id && id->kind == json::Value::kString ? id->str : "task" + std::to_string(no);
    for (auto [key, field] : {std::pair{"kind", &t.kind}, {"sep", &t.sep}, {"qsep", &t.qsep}})
      if (const json::Value* x = v.get(key)) {
        if (x->kind != json::Value::kString)
          return *err = where + "'" + key + "' must be a string", false;
        *field = x->str;
      }
    if (std::find(std::begin(kRecallKinds), std::end(kRecallKinds), t.kind) ==
        std::end(kRecallKinds))
      return *err = where + "unknown 'kind' '" + t.kind + "' (recall, recall_q, chat, code)", false;
    if (const json::Value* x = v.get("special")) {
      if (x->kind != json::Value::kBool)
        return *err = where + "'special' must be true or false", false;
      t.special = x->b;
    }
    for (const json::Value& p : pieces->arr) {
      if (p.kind != json::Value::kString) return *err = where + "a piece is not a string", false;
      t.pieces.push_back(p.str);
    }
    for (const json::Value& f : facts->arr) {
      Fact x;
      const json::Value *piece = f.get("piece"), *text = f.get("text"), *q = f.get("question"),
                        *ans = f.get("answer"), *off = f.get("offset");
      if (!piece || piece->kind != json::Value::kNumber || piece->num < 0 ||
          piece->num >= (double)t.pieces.size() || piece->num != std::floor(piece->num))
        return *err = where + "a fact's 'piece' must index 'pieces'", false;
      for (const json::Value* s : {text, q, ans})
        if (!s || s->kind != json::Value::kString || s->str.empty())
          return *err = where + "a fact needs non-empty 'text', 'question' and 'answer'", false;
      x.piece = (int)piece->num;
      x.text = text->str, x.question = q->str, x.answer = ans->str;
      if (off) {
        if (off->kind != json::Value::kNumber || off->num < 0 ||
            off->num > (double)t.pieces[x.piece].size() || off->num != std::floor(off->num))
          return *err = where + "a fact's 'offset' must lie within its piece", false;
        x.offset = (long)off->num;
      }
      t.facts.push_back(x);
    }
    tasks.push_back(t);
  }
  if (tasks.empty()) return *err = "recall file '" + path + "' holds no task", false;
  out->insert(out->end(), tasks.begin(), tasks.end());
  return true;
}

std::string task_json(const RecallTask& t) {
  std::string o = "{\"id\": " + json::quote(t.id) + ", \"kind\": " + json::quote(t.kind) +
                  ", \"sep\": " + json::quote(t.sep) + ", \"qsep\": " + json::quote(t.qsep) +
                  ", \"special\": " + (t.special ? "true" : "false") + ", \"pieces\": [";
  for (size_t i = 0; i < t.pieces.size(); ++i) o += (i ? ", " : "") + json::quote(t.pieces[i]);
  o += "], \"facts\": [";
  for (size_t i = 0; i < t.facts.size(); ++i) {
    const Fact& f = t.facts[i];
    o += std::string(i ? ", " : "") + "{\"piece\": " + std::to_string(f.piece) +
         ", \"text\": " + json::quote(f.text) + ", \"question\": " + json::quote(f.question) +
         ", \"answer\": " + json::quote(f.answer) +
         (f.offset >= 0 ? ", \"offset\": " + std::to_string(f.offset) : std::string()) + "}";
  }
  return o + "]}";
}

}  // namespace eval
}  // namespace amskv
