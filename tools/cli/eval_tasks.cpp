// amskv eval's inputs: the default texts on the machine and the recall tasks (a JSONL
// file, or made from any text).
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
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

const char* const kAdj[] = {
    "silver", "crimson", "hidden",  "northern", "quiet",  "golden",  "broken", "ancient",
    "frozen", "distant", "hollow",  "bright",   "marble", "copper",  "velvet", "amber",
    "narrow", "gentle",  "rusty",   "wooden",   "purple", "sandy",   "stormy", "silent",
    "lonely", "eastern", "crooked", "painted",  "sunken", "winter",  "hungry", "iron",
    "lucky",  "misty",   "olive",   "proud",    "rapid",  "scarlet", "tender", "umber",
    "vivid",  "wild",    "yellow",  "azure",    "bronze", "coral",   "dusty",  "emerald",
    "faded",  "glass",   "humble",  "ivory",    "jade",   "keen",    "lunar",  "mossy",
    "noble",  "opal",    "pale",    "royal",    "salty",  "tiny",    "upper",  "vast"};
const char* const kNoun[] = {
    "falcon",  "lantern", "harbor",  "orchard",  "compass", "violin",  "glacier", "meadow",
    "beacon",  "archive", "tunnel",  "garden",   "anchor",  "citadel", "river",   "mirror",
    "badger",  "candle",  "dolphin", "engine",   "feather", "goblet",  "hammer",  "island",
    "jacket",  "kettle",  "ladder",  "magnet",   "needle",  "oyster",  "parrot",  "quarry",
    "rabbit",  "saddle",  "teapot",  "umbrella", "valley",  "wagon",   "yacht",   "zebra",
    "bakery",  "cactus",  "desert",  "fountain", "geyser",  "helmet",  "igloo",   "jungle",
    "kitchen", "lobster", "mango",   "nest",     "otter",   "pebble",  "quilt",   "rocket",
    "spider",  "tower",   "unicorn", "vessel",   "walnut",  "window",  "basket",  "castle"};
static_assert(std::size(kAdj) == 64 && std::size(kNoun) == 64, "--facts allows 64");

// The keys of one task: an adjective and a noun each, no word used twice, and 4-digit values.
struct Key {
  std::string adj, noun, value;
  std::string words() const { return adj + " " + noun; }
};
std::vector<Key> pick_keys(std::mt19937_64& rng, int n) {
  int adj[64], noun[64];
  for (int i = 0; i < 64; ++i) adj[i] = noun[i] = i;
  for (int i = 0; i < n; ++i) {
    std::swap(adj[i], adj[i + (int)(rng() % (uint64_t)(64 - i))]);
    std::swap(noun[i], noun[i + (int)(rng() % (uint64_t)(64 - i))]);
  }
  std::vector<Key> keys;
  for (int i = 0; i < n; ++i)
    keys.push_back({kAdj[adj[i]], kNoun[noun[i]], std::to_string(1000 + rng() % 9000)});
  return keys;
}

// The next n tokens of the filler (wrapping) as text.
std::string take(const Tokenizer& tok, const std::vector<int32_t>& ids, size_t* at, int n) {
  std::vector<int32_t> piece;
  for (int i = 0; i < n; ++i) piece.push_back(ids[(*at)++ % ids.size()]);
  return detokenize(tok, piece);
}

std::string snake(const Key& k) {
  return k.adj + "_" + k.noun;
}
std::string camel(const Key& k) {
  auto up = [](std::string w) { return w[0] = (char)std::toupper((unsigned char)w[0]), w; };
  return up(k.adj) + up(k.noun);
}

// Where a definition goes in a piece of code: the first line after the middle that starts at
// column 0 (top level), else the first line after the middle, else the end.
long line_start_near_middle(const std::string& piece) {
  const size_t mid = piece.size() / 2;
  for (size_t nl = piece.find('\n', mid); nl != std::string::npos; nl = piece.find('\n', nl + 1))
    if (nl + 1 < piece.size() && !std::isspace((unsigned char)piece[nl + 1])) return (long)nl + 1;
  const size_t nl = piece.find('\n', mid);
  return nl == std::string::npos ? (long)piece.size() : (long)nl + 1;
}

// A definition early in a file and the later line that must reuse its value: a function that
// returns a constant or a config block (fn false), in Python or C++.
Fact code_fact(const Key& k, bool py, bool fn) {
  Fact x;
  x.answer = k.value;
  const std::string& v = k.value;
  if (py && fn) {
    x.text = "def " + snake(k) + "_limit():\n    limit = " + v + "\n    return limit\n";
    x.question = "assert " + snake(k) + "_limit() ==";
  } else if (py) {
    std::string up = snake(k);
    for (char& c : up) c = (char)std::toupper((unsigned char)c);
    x.text = up + " = {\n    \"port\": " + v + ",\n    \"retries\": 3,\n}\n";
    x.question = "assert " + up + "[\"port\"] ==";
  } else if (fn) {
    x.text = "constexpr int " + snake(k) + "_limit() {\n  return " + v + ";\n}\n";
    x.question = "static_assert(" + snake(k) + "_limit() ==";
  } else {
    x.text = "struct " + camel(k) + "Config {\n  static constexpr int port = " + v +
             ";\n  static constexpr int retries = 3;\n};\n";
    x.question = "static_assert(" + camel(k) + "Config::port ==";
  }
  return x;
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

std::vector<std::string> default_code_fillers() {
  std::vector<std::string> out;
  add_found(first_existing(kCodePython), &out);
  add_found(first_existing(kCodeCpp), &out);
  return out;
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

bool load_recall(const std::string& path, std::vector<RecallTask>* out, std::string* err) {
  std::string all;
  if (!cli::read_file(path, &all)) return *err = "cannot read recall file '" + path + "'", false;
  return parse_recall(all, path, out, err);
}

// Tasks from any text: each task takes the next stretch of the text (wrapping), cuts it into
// n_facts pieces of equal token counts so the prompt is about ctx tokens, and binds a random
// 4-digit number to a made-up key in each piece. Questions are completion-style ("The
// number of the silver falcon is"), so the answer is a copy a model can make by attending.
// The keys of a task share no word: each adjective and each noun is used once.
std::vector<RecallTask> make_recall(const Tokenizer& tok, const std::string& text,
                                    const std::string& name, int ctx, int n_facts, int n_tasks,
                                    uint64_t seed) {
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
    const std::vector<Key> keys = pick_keys(rng, n_facts);
    for (int f = 0; f < n_facts; ++f) {
      t.pieces.push_back(take(tok, ids, &at, per_piece));
      Fact x;
      x.piece = f;
      x.text = " The secret number of the " + keys[f].words() + " is " + keys[f].value + ". ";
      x.question = "The secret number of the " + keys[f].words() + " is";
      x.answer = keys[f].value;
      t.facts.push_back(x);
    }
    tasks.push_back(t);
  }
  return tasks;
}

std::vector<RecallTask> make_tasks(const std::string& kind, const Tokenizer& tok,
                                   const ChatFormat* chat, const std::string& text,
                                   const std::string& name, int ctx, int n_facts, int n_tasks,
                                   uint64_t seed, std::string* err) {
  if (kind == "recall") return make_recall(tok, text, name, ctx, n_facts, n_tasks, seed);
  if (kind == "recall_q") {
    // Recall's tasks with one more piece before the context that names every key (about 5
    // tokens each, taken from the filler), in another order than the facts come.
    std::vector<RecallTask> tasks =
        make_recall(tok, text, name, std::max(256, ctx - 5 * n_facts), n_facts, n_tasks, seed);
    std::mt19937_64 rng(seed ^ 0x9e3779b97f4a7c15ull);
    for (RecallTask& t : tasks) {
      std::vector<int> order(t.facts.size());
      for (size_t i = 0; i < order.size(); ++i) order[i] = (int)i;
      std::shuffle(order.begin(), order.end(), rng);
      std::string pre = "At the end you will be asked the secret numbers of";
      for (size_t i = 0; i < order.size(); ++i) {
        const std::string& q = t.facts[order[i]].question;  // "The secret number of the X Y is"
        const std::string key =
            q.substr(q.find(" of the ") + 8, q.size() - q.find(" of the ") - 11);
        pre += std::string(i == 0 ? " the " : i + 1 == order.size() ? " and the " : ", the ") + key;
      }
      t.pieces.insert(t.pieces.begin(), pre + ".");
      for (Fact& f : t.facts) f.piece++;
      t.kind = "recall_q", t.id += "-q";
    }
    return tasks;
  }
  std::vector<int32_t> ids;
  tokenize(tok, text, false, false, &ids);
  if (ids.empty())
    return *err = "the filler '" + name + "' holds no token", std::vector<RecallTask>();
  std::mt19937_64 rng(seed);
  std::vector<RecallTask> tasks;
  if (kind == "chat") {
    if (!chat) return *err = "the chat task needs a model whose chat template amskv knows", tasks;
    const ChatFormat& cf = *chat;
    auto turn = [&](const char* role, const std::string& content) {
      return chat_open(cf, role) + content + cf.end;
    };
    // Fact turns first (the fact, then some filler; the assistant acknowledges), then
    // unrelated turns of filler until about ctx tokens; the last reply stays open and each
    // question closes it, asks in a new user turn and opens the assistant's answer.
    const int fact_turns_tokens = n_facts * 48, unrelated = 100;
    size_t at = 0;
    for (int k = 0; k < n_tasks; ++k) {
      RecallTask t;
      t.id = name + "-chat-" + std::to_string(k), t.kind = "chat", t.special = true, t.sep = "";
      t.qsep = cf.end;
      const std::vector<Key> keys = pick_keys(rng, n_facts);
      for (int f = 0; f < n_facts; ++f) {
        const std::string open = chat_open(cf, "user");
        t.pieces.push_back(open + " " + take(tok, ids, &at, 24) + cf.end +
                           turn("assistant", "Noted."));
        Fact x;
        x.piece = f, x.offset = (long)open.size();
        x.text =
            "Please remember: the code of the " + keys[f].words() + " is " + keys[f].value + ".";
        x.question = chat_open(cf, "user") + "What is the code of the " + keys[f].words() + "?" +
                     cf.end + chat_open(cf, "assistant") + "The code of the " + keys[f].words() +
                     " is";
        x.answer = keys[f].value;
        t.facts.push_back(x);
      }
      for (int used = fact_turns_tokens; used + unrelated < ctx - 16 * n_facts; used += unrelated)
        t.pieces.push_back(turn("user", take(tok, ids, &at, unrelated / 2 - 4)) +
                           turn("assistant", take(tok, ids, &at, unrelated / 2 - 4)));
      std::string& last = t.pieces.back();  // left open for the first question to close
      last.resize(last.size() - std::strlen(cf.end));
      tasks.push_back(t);
    }
    return tasks;
  }
  if (kind == "code") {
    // Definitions in the first quarter of a file of real code, one per stretch, alternately
    // a function returning a constant and a config block; the questions are later lines that
    // must reuse a value. Python for .py fillers, else C++.
    const bool py = name.size() > 3 && name.compare(name.size() - 3, 3, ".py") == 0;
    const int filler = std::max(64 * n_facts, ctx - 40 * n_facts);
    const int early = filler / 4 / n_facts, late = filler - early * n_facts;
    size_t at = ids.size() > (size_t)(4 * ctx) ? (size_t)(2 * ctx) : 0;  // past ppl's stretch
    for (int k = 0; k < n_tasks; ++k) {
      RecallTask t;
      t.id = name + "-code-" + std::to_string(k), t.kind = "code", t.sep = "\n", t.qsep = "\n";
      const std::vector<Key> keys = pick_keys(rng, n_facts);
      for (int f = 0; f < n_facts; ++f) {
        Fact x = code_fact(keys[f], py, f % 2 == 0);
        x.piece = f;
        t.pieces.push_back(take(tok, ids, &at, early));
        x.offset = line_start_near_middle(t.pieces.back());
        t.facts.push_back(x);
      }
      t.pieces.push_back(take(tok, ids, &at, late));  // the rest of the file, no definitions
      tasks.push_back(t);
    }
    return tasks;
  }
  *err = "unknown task kind '" + kind + "'";
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
    p += (i ? t.sep : "") + piece;
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
