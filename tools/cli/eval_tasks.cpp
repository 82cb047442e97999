// amskv eval's inputs: the default texts on the machine and the recall tasks (a JSONL
// file, or made from any text).
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <random>
#include <sstream>

#include "tools/cli/eval.h"
#include "tools/json.h"

namespace amskv {
namespace eval {
namespace {

// Default data: the first file of each list that exists, from the packages amskv's set-up
// installs (base-files, python3, g++) and, marked "@", the cache tools/setup.sh fills (the
// Python language reference, extracted from python3's pydoc data).
const char* const kProseGnu[] = {"/usr/share/common-licenses/GPL-3",
                                 "/usr/share/common-licenses/GPL-2"};
const char* const kProsePython[] = {"@texts/python-reference.txt"};
const char* const kCodePython[] = {"/usr/lib/python3.11/argparse.py",
                                   "/usr/lib/python3.12/argparse.py",
                                   "/usr/lib/python3.13/argparse.py"};
const char* const kCodeCpp[] = {"/usr/include/c++/12/bits/stl_algo.h",
                                "/usr/include/c++/13/bits/stl_algo.h",
                                "/usr/include/c++/14/bits/stl_algo.h"};
const char* const kFillerGnu[] = {"/usr/share/common-licenses/GFDL-1.3",
                                  "/usr/share/common-licenses/LGPL-2.1"};

template <size_t N>
std::string first_existing(const char* const (&list)[N]) {
  for (const char* p : list) {
    const std::string path = p[0] == '@' ? cli::cache_dir() + "/" + (p + 1) : p;
    if (access(path.c_str(), R_OK) == 0) return path;
  }
  return "";
}

void add_found(const std::string& p, std::vector<std::string>* out) {
  if (!p.empty()) out->push_back(p);
}

}  // namespace

std::vector<std::string> default_texts() {
  std::vector<std::string> out;
  for (const std::string& p : {first_existing(kProseGnu), first_existing(kProsePython),
                               first_existing(kCodePython), first_existing(kCodeCpp)})
    add_found(p, &out);
  return out;
}

std::string default_code() {
  return first_existing(kCodePython);
}

std::vector<std::string> default_fillers() {
  std::vector<std::string> out;
  add_found(first_existing(kFillerGnu), &out);
  add_found(first_existing(kProsePython), &out);
  return out;
}

std::string base_name(const std::string& path) {
  const size_t s = path.find_last_of('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

std::string data_record(const std::string& use, const std::string& path, const std::string& bytes) {
  // FNV-1a of the bytes: which exact text a result came from.
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  char fnv[20];
  std::snprintf(fnv, sizeof fnv, "%016llx", (unsigned long long)h);
  return "{\"use\": \"" + use + "\", \"path\": " + json::quote(path) +
         ", \"bytes\": " + std::to_string(bytes.size()) + ", \"fnv1a64\": \"" + fnv + "\"}";
}

// One task per line: {"id": "...", "pieces": ["text", ...], "facts": [{"piece": 0,
// "text": "...", "question": "...", "answer": "...", "offset": 120}, ...]} (offset
// optional). docs/eval.md describes the format.
bool load_recall(const std::string& path, std::vector<RecallTask>* out, std::string* err) {
  std::string all;
  if (!cli::read_file(path, &all)) return *err = "cannot read recall file '" + path + "'", false;
  std::stringstream ss(all);
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
    out->push_back(t);
  }
  if (out->empty()) return *err = "recall file '" + path + "' holds no task", false;
  return true;
}

std::string task_json(const RecallTask& t) {
  std::string o = "{\"id\": " + json::quote(t.id) + ", \"pieces\": [";
  for (size_t i = 0; i < t.pieces.size(); ++i) o += (i ? ", " : "") + json::quote(t.pieces[i]);
  o += "], \"facts\": [";
  for (size_t i = 0; i < t.facts.size(); ++i) {
    const Fact& f = t.facts[i];
    o += std::string(i ? ", " : "") + "{\"piece\": " + std::to_string(f.piece) +
         ", \"text\": " + json::quote(f.text) + ", \"question\": " + json::quote(f.question) +
         ", \"answer\": " + json::quote(f.answer) + "}";
  }
  return o + "]}";
}

// Tasks from any text: each task takes the next stretch of the text (wrapping), cuts it into
// n_facts pieces of equal token counts so the prompt is about ctx tokens, and binds a random
// 4-digit number to a made-up key in each piece. Questions are completion-style ("The
// number of the silver falcon is"), so the answer is a copy a model can make by attending.
// The keys of a task share no word: each adjective and each noun is used once.
std::vector<RecallTask> make_recall(const Tokenizer& tok, const std::string& text,
                                    const std::string& name, int ctx, int n_facts, int n_tasks,
                                    uint64_t seed) {
  static const char* const kAdj[] = {
      "silver", "crimson", "hidden",  "northern", "quiet",  "golden",  "broken", "ancient",
      "frozen", "distant", "hollow",  "bright",   "marble", "copper",  "velvet", "amber",
      "narrow", "gentle",  "rusty",   "wooden",   "purple", "sandy",   "stormy", "silent",
      "lonely", "eastern", "crooked", "painted",  "sunken", "winter",  "hungry", "iron",
      "lucky",  "misty",   "olive",   "proud",    "rapid",  "scarlet", "tender", "umber",
      "vivid",  "wild",    "yellow",  "azure",    "bronze", "coral",   "dusty",  "emerald",
      "faded",  "glass",   "humble",  "ivory",    "jade",   "keen",    "lunar",  "mossy",
      "noble",  "opal",    "pale",    "royal",    "salty",  "tiny",    "upper",  "vast"};
  static const char* const kNoun[] = {
      "falcon",  "lantern", "harbor",  "orchard",  "compass", "violin",  "glacier", "meadow",
      "beacon",  "archive", "tunnel",  "garden",   "anchor",  "citadel", "river",   "mirror",
      "badger",  "candle",  "dolphin", "engine",   "feather", "goblet",  "hammer",  "island",
      "jacket",  "kettle",  "ladder",  "magnet",   "needle",  "oyster",  "parrot",  "quarry",
      "rabbit",  "saddle",  "teapot",  "umbrella", "valley",  "wagon",   "yacht",   "zebra",
      "bakery",  "cactus",  "desert",  "fountain", "geyser",  "helmet",  "igloo",   "jungle",
      "kitchen", "lobster", "mango",   "nest",     "otter",   "pebble",  "quilt",   "rocket",
      "spider",  "tower",   "unicorn", "vessel",   "walnut",  "window",  "basket",  "castle"};
  static_assert(std::size(kAdj) == 64 && std::size(kNoun) == 64, "--facts allows 64");
  std::vector<int32_t> ids;
  tokenize(tok, text, false, false, &ids);
  std::mt19937_64 rng(seed);
  std::vector<RecallTask> tasks;
  // Room for the facts (~14 tokens each) and the questions with answers (~16 each).
  const int filler = std::max(64 * n_facts, ctx - 30 * n_facts);
  const int per_piece = filler / n_facts;
  size_t at = 0;
  for (int k = 0; k < n_tasks; ++k) {
    RecallTask t;
    t.id = name + "-" + std::to_string(k);
    // A random adjective and noun for each fact, none used twice in the task.
    int adj[64], noun[64];
    for (int i = 0; i < 64; ++i) adj[i] = noun[i] = i;
    for (int i = 0; i < n_facts; ++i) {
      std::swap(adj[i], adj[i + (int)(rng() % (uint64_t)(64 - i))]);
      std::swap(noun[i], noun[i + (int)(rng() % (uint64_t)(64 - i))]);
    }
    for (int f = 0; f < n_facts; ++f) {
      std::vector<int32_t> piece;
      for (int i = 0; i < per_piece; ++i) piece.push_back(ids[(at++) % ids.size()]);
      t.pieces.push_back(detokenize(tok, piece));
      const std::string key = std::string(kAdj[adj[f]]) + " " + kNoun[noun[f]];
      const std::string value = std::to_string(1000 + rng() % 9000);
      Fact x;
      x.piece = f;
      x.text = " The secret number of the " + key + " is " + value + ". ";
      x.question = "The secret number of the " + key + " is";
      x.answer = value;
      t.facts.push_back(x);
    }
    tasks.push_back(t);
  }
  return tasks;
}

// The prompt: pieces joined by blank lines, each fact inside its piece at its offset (or at
// the whitespace nearest the middle).
std::string recall_prompt(const RecallTask& t) {
  std::string p;
  for (size_t i = 0; i < t.pieces.size(); ++i) {
    std::string piece = t.pieces[i];
    for (const Fact& f : t.facts) {
      if (f.piece != (int)i) continue;
      size_t at = f.offset >= 0 ? (size_t)f.offset : piece.size() / 2;
      if (f.offset < 0) {
        const size_t sp = piece.find_first_of(" \n", at);
        at = sp == std::string::npos ? piece.size() : sp;
      }
      piece.insert(at, f.text);
    }
    p += (i ? "\n\n" : "") + piece;
  }
  return p;
}

// True when the greedy text starts with the answer (after spaces) and does not go on with
// more of the same word or number.
bool answer_matches(const std::string& gen, const std::string& answer) {
  size_t a = gen.find_first_not_of(" \t\n");
  if (a == std::string::npos || gen.compare(a, answer.size(), answer) != 0) return false;
  const size_t e = a + answer.size();
  return e >= gen.size() || !std::isalnum((unsigned char)gen[e]);
}

}  // namespace eval
}  // namespace amskv
