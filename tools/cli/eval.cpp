// amskv eval: every policy at the same budgets on the same inputs, one model pass for all.
//
// The policies of one run decode in lockstep: each step is one token for every (policy,
// budget) cell through llama_decode_many, so the weights are read once per step for all of
// them, and each cell's session evicts on its own. Tasks:
//   ppl     teacher-forced decode over each text: mean NLL per token, by position quarter
//   agree   after each text, the full cache's greedy continuation is fed to every cell:
//           argmax match rate, tokens to the first divergence, mean KL(full || policy)
//   recall  a long prompt with facts placed in different regions, then completion-style
//           questions answered greedily by each cell: exact match per fact and per region
//   cost    per cell, alone: prefill the context, then time decode steps (tokens/s)
// Every cell also reports its compression events and region wipe-out rate (amskv_stats).
#include "tools/cli/eval.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "runtime/model/llama.h"
#include "tools/cli/common.h"
#include "tools/json.h"
#include "tools/svg.h"

namespace amskv {
namespace {

using cli::error;
using cli::kRuntime;
using cli::kUsage;

// ---------------------------------------------------------------- defaults and options

// Default data: the first file of each list that exists. Texts of prose and of code that
// Debian installs with the packages amskv's set-up needs (base-files, python3, g++).
const char* const kDefaultProse[] = {"/usr/share/common-licenses/GPL-3",
                                     "/usr/share/common-licenses/GPL-2"};
const char* const kDefaultCode[] = {
    "/usr/lib/python3.11/argparse.py",     "/usr/lib/python3.12/argparse.py",
    "/usr/lib/python3.13/argparse.py",     "/usr/include/c++/12/bits/stl_algo.h",
    "/usr/include/c++/13/bits/stl_algo.h", "/usr/include/c++/14/bits/stl_algo.h"};
const char* const kDefaultFiller[] = {"/usr/share/common-licenses/GFDL-1.3",
                                      "/usr/share/common-licenses/LGPL-2.1",
                                      "/usr/share/common-licenses/GPL-2"};

// full is the ceiling, random the floor; each scorer as global top-k and as ams:; then the
// AMS ablations (no EMA credit, no guaranteed quota, no mass-proportional share, fixed-length
// regions instead of mass-cut ones).
const char* const kDefaultPolicies[] = {"full",
                                        "random",
                                        "streaming",
                                        "tova",
                                        "ams:tova",
                                        "h2o",
                                        "ams:h2o",
                                        "snapkv",
                                        "ams:snapkv",
                                        "expected_attention",
                                        "ams:expected_attention",
                                        "keydiff",
                                        "ams:keydiff",
                                        "knorm",
                                        "ams:knorm",
                                        "ams:tova,credit=0",
                                        "ams:tova,min_keep=0",
                                        "ams:tova,mass=0",
                                        "ams:tova,segmenter=fixed"};
const char* const kQuickPolicies[] = {"full",     "random",  "streaming",  "tova",
                                      "ams:tova", "keydiff", "ams:keydiff"};

struct Options {
  std::string model = cli::default_model(), out = "eval-out", recall_file, plot_event, from;
  std::string plot_policy;  // the user's first --policy, for --plot-event
  std::vector<std::string> texts, policies, budgets;
  bool ppl = true, recall = true, agree = true, quick = false;
  long ctx = 2048, agree_tokens = 64, facts = 8, recall_tasks = 2, cost_tokens = 64;
  long threads = 0, seed = 1, layer = -1;
  amskv_dtype dtype = AMSKV_F16;
};

const char* const kHelp =
    "amskv eval: every policy at the same KV budgets on the same inputs (docs/results.md)\n"
    "  --task LIST         ppl,recall,agree (default all three)\n"
    "  --text FILE         a text for ppl and agree (repeat; default: a prose and a code file\n"
    "                      Debian installs, see docs/results.md)\n"
    "  --recall FILE       recall tasks, JSONL (docs/eval.md; default: generated from a text\n"
    "                      on the machine, written to OUT/recall_tasks.jsonl)\n"
    "  --policy P          a policy to evaluate (repeat; default: full, random, streaming,\n"
    "                      each scorer as top-k and ams:, and the AMS ablations)\n"
    "  --budgets LIST      fractions of --ctx (0.1,0.25,0.5, the default) or sizes (4MiB)\n"
    "  --ctx N             context tokens: texts are cut to N, recall prompts built to N (2048)\n"
    "  --agree-tokens N    greedy tokens of the full cache compared after each text (64)\n"
    "  --facts N, --recall-tasks N   of the generated recall set (8, 2)\n"
    "  --cost-tokens N     decode steps timed per cell after a prefill of --ctx (64; 0 = skip)\n"
    "  --out DIR           results.csv, results.json, summary.md and SVG plots (eval-out)\n"
    "  --quick             CI mode: small run plus checks of what must always hold\n"
    "  --plot-event FILE   instead: draw one compression event of --policy (ams:tova) and of\n"
    "                      its global top-k twin at --budgets (one value) on the first text;\n"
    "                      --layer L (default the middle layer)\n"
    "  --from FILE         instead: rewrite the report and plots of a finished run from its\n"
    "                      results.json into --out\n"
    "  --seed S, --threads N, --kv-dtype f32|f16|q8, --model PATH\n";

bool split(const std::string& s, char sep, std::vector<std::string>* out) {
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep))
    if (!item.empty()) out->push_back(item);
  return !out->empty();
}

int parse(int argc, char** argv, Options* o) {
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") return -1;
    if (a == "--quick") {
      o->quick = true;
      continue;
    }
    if (i + 1 >= argc) return error(kUsage, a + " needs a value");
    const std::string v = argv[++i];
    bool ok = true;
    if (a == "--model") {
      o->model = v;
    } else if (a == "--task") {
      std::vector<std::string> t;
      ok = split(v, ',', &t);
      o->ppl = o->recall = o->agree = false;
      for (const std::string& x : t) {
        if (x == "ppl")
          o->ppl = true;
        else if (x == "recall")
          o->recall = true;
        else if (x == "agree")
          o->agree = true;
        else
          ok = false;
      }
    } else if (a == "--text") {
      o->texts.push_back(v);
    } else if (a == "--recall") {
      o->recall_file = v;
    } else if (a == "--policy") {
      o->policies.push_back(v);
    } else if (a == "--budgets") {
      o->budgets.clear();
      ok = split(v, ',', &o->budgets);
    } else if (a == "--ctx") {
      ok = cli::parse_long(v, 256, 1 << 20, &o->ctx);
    } else if (a == "--agree-tokens") {
      ok = cli::parse_long(v, 1, 4096, &o->agree_tokens);
    } else if (a == "--facts") {
      ok = cli::parse_long(v, 1, 64, &o->facts);
    } else if (a == "--recall-tasks") {
      ok = cli::parse_long(v, 1, 1000, &o->recall_tasks);
    } else if (a == "--cost-tokens") {
      ok = cli::parse_long(v, 0, 1 << 20, &o->cost_tokens);
    } else if (a == "--out") {
      o->out = v;
    } else if (a == "--from") {
      o->from = v;
    } else if (a == "--plot-event") {
      o->plot_event = v;
    } else if (a == "--layer") {
      ok = cli::parse_long(v, 0, 4096, &o->layer);
    } else if (a == "--seed") {
      ok = cli::parse_long(v, 0, 2147483647L, &o->seed);
    } else if (a == "--threads") {
      ok = cli::parse_long(v, 1, 256, &o->threads);
    } else if (a == "--kv-dtype") {
      ok = v == "f32" || v == "f16" || v == "q8";
      o->dtype = v == "f32" ? AMSKV_F32 : v == "f16" ? AMSKV_F16 : AMSKV_Q8;
    } else {
      return error(kUsage, "unknown option '" + a + "' (see amskv eval --help)");
    }
    if (!ok) return error(kUsage, "bad value '" + v + "' for " + a + " (see amskv eval --help)");
  }
  if (o->threads == 0) o->threads = cli::default_threads();
  return 0;
}

std::string first_existing(const char* const* list, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (access(list[i], R_OK) == 0) return list[i];
  return "";
}

std::string base_name(const std::string& path) {
  const size_t s = path.find_last_of('/');
  return s == std::string::npos ? path : path.substr(s + 1);
}

// FNV-1a of a file's bytes: which exact text a result came from.
std::string fnv_hex(const std::string& bytes) {
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) h = (h ^ c) * 1099511628211ull;
  char buf[20];
  std::snprintf(buf, sizeof buf, "%016llx", (unsigned long long)h);
  return buf;
}

// ---------------------------------------------------------------- recall tasks

struct Fact {
  int piece = 0;
  long offset = -1;  // byte offset in its piece where the fact goes; -1: near the middle
  std::string text, question, answer;
};

struct RecallTask {
  std::string id;
  std::vector<std::string> pieces;
  std::vector<Fact> facts;
};

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
std::vector<RecallTask> make_recall(const Tokenizer& tok, const std::string& text,
                                    const std::string& name, int ctx, int n_facts, int n_tasks,
                                    uint64_t seed) {
  static const char* const kAdj[] = {"silver", "crimson", "hidden", "northern", "quiet",  "golden",
                                     "broken", "ancient", "frozen", "distant",  "hollow", "bright",
                                     "marble", "copper",  "velvet", "amber"};
  static const char* const kNoun[] = {
      "falcon", "lantern", "harbor", "orchard", "compass", "violin",  "glacier", "meadow",
      "beacon", "archive", "tunnel", "garden",  "anchor",  "citadel", "river",   "mirror"};
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
    std::vector<std::pair<int, int>> used;
    for (int f = 0; f < n_facts; ++f) {
      std::vector<int32_t> piece;
      for (int i = 0; i < per_piece; ++i) piece.push_back(ids[(at++) % ids.size()]);
      t.pieces.push_back(detokenize(tok, piece));
      int a, n;
      do {
        a = (int)(rng() % 16), n = (int)(rng() % 16);
      } while (std::find(used.begin(), used.end(), std::make_pair(a, n)) != used.end());
      used.push_back({a, n});
      const std::string key = std::string(kAdj[a]) + " " + kNoun[n];
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

// ---------------------------------------------------------------- cells and their results

struct Cell {
  std::string policy;        // as the user wrote it (the label)
  std::string budget_label;  // "0.25", "4MiB", or "ctx" for the full cache
  double fraction = 0;       // of --ctx, 0 when a size was given
  size_t budget = 0;         // bytes every session of the cell gets
  bool full = false;
  // Session facts (from the first stream).
  int capacity = 0;
  size_t session_bytes = 0;
  bool failed = false;
  std::string error;
  // Sums and counts (doubles, so a report read back from results.json keeps its means).
  // ppl
  double nll = 0, nll_q[4] = {0, 0, 0, 0};
  double nll_n = 0, nll_qn[4] = {0, 0, 0, 0};
  // agree
  double agree_n = 0, agree_match = 0, first_div = 0, agree_docs = 0;
  double kl = 0;
  // recall
  double recall_n = 0, recall_hit = 0;
  std::vector<double> region_n, region_hit;
  // eviction, summed over streams
  uint64_t events = 0;
  double wipe_segments = 0, wiped = 0;
  // cost
  double decode_tps = -1, prefill_tps = -1;

  double mean_nll() const { return nll_n ? nll / nll_n : NAN; }
  double match_rate() const { return agree_n ? (double)agree_match / agree_n : NAN; }
  double mean_kl() const { return agree_n ? kl / agree_n : NAN; }
  double mean_first_div() const { return agree_docs ? first_div / agree_docs : NAN; }
  double recall_acc() const { return recall_n ? recall_hit / recall_n : NAN; }
  double wipe_rate() const { return wipe_segments ? wiped / wipe_segments : 0.0; }
};

struct Eval {
  const Options& o;
  const LlamaModel& m;
  std::vector<Cell> cells;
  int full_cell = -1;
  std::vector<std::string> checks_failed;
  double minutes = 0;   // of the run
  size_t peak_rss = 0;  // of the run's process
  long steps_done = 0, steps_total = 0;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now(), last_print = t0;
  bool tty = isatty(2);

  Eval(const Options& opt, const LlamaModel& model) : o(opt), m(model) {}

  // The session policy string: the random scorer gets the run's seed unless it has one.
  std::string session_policy(const Cell& c) const {
    if (c.policy.rfind("random", 0) == 0 && c.policy.find("seed=") == std::string::npos)
      return c.policy + ",seed=" + std::to_string(o.seed);
    return c.policy;
  }

  void progress(const std::string& what, long done, long total, double tps) {
    ++steps_done;
    const auto now = std::chrono::steady_clock::now();
    const double since = std::chrono::duration<double>(now - last_print).count();
    if (done != total && since < (tty ? 0.5 : 20.0)) return;
    last_print = now;
    const double el = cli::seconds_since(t0);
    const double eta = steps_done > 0 ? el / steps_done * (steps_total - steps_done) : 0;
    std::fprintf(stderr, "%seval: %s %ld/%ld, %.0f tok/s, %.0fs elapsed, about %.0fs left%s",
                 tty ? "\r\033[K" : "", what.c_str(), done, total, tps, el, std::max(0.0, eta),
                 tty && done != total ? "" : "\n");
  }
};

// Per-cell contexts for one stream: fresh sessions, max_batch 1 (the work context lends the
// activations for the whole batch).
struct Stream {
  std::vector<std::unique_ptr<LlamaContext>> ctx;
  std::vector<LlamaContext*> seqs;
  std::vector<int> cell;  // seqs[i] belongs to cells[cell[i]]
  LlamaContext work;
  std::vector<float> logits;  // [n][n_vocab]
};

bool open_stream(Eval& ev, Stream* s, size_t full_budget, std::string* err) {
  for (size_t c = 0; c < ev.cells.size(); ++c) {
    Cell& cell = ev.cells[c];
    if (cell.failed) continue;
    auto ctx = std::make_unique<LlamaContext>();
    LlamaParams p;
    p.kv_budget = cell.full ? full_budget : cell.budget;
    p.kv_dtype = ev.o.dtype;
    const std::string pol = ev.session_policy(cell);
    p.policy = pol.c_str();
    p.n_threads = 1;  // sessions run one layer of one token at a time here
    p.max_batch = 1;
    std::string e;
    if (!llama_context_init(ctx.get(), ev.m, p, &e)) {
      cell.failed = true;
      cell.error = e;
      std::fprintf(stderr, "eval: %s at %s: %s (skipped)\n", cell.policy.c_str(),
                   cell.budget_label.c_str(), e.c_str());
      continue;
    }
    amskv_stats st;
    amskv_get_stats(ctx->kv, &st);
    if (!cell.full || cell.capacity == 0) cell.capacity = st.capacity_tokens;
    cell.session_bytes = std::max(cell.session_bytes, st.bytes_used);
    s->seqs.push_back(ctx.get());
    s->cell.push_back((int)c);
    s->ctx.push_back(std::move(ctx));
  }
  if (s->seqs.empty()) return *err = "no policy could be evaluated", false;
  LlamaParams wp;
  const amskv_config cfg = llama_session_config(ev.m, ev.o.dtype, "full", 1);
  wp.kv_budget = amskv_budget_for_capacity(&cfg, 128);
  wp.kv_dtype = ev.o.dtype;
  wp.policy = "full";
  wp.n_threads = (int)ev.o.threads;
  wp.max_batch = (int)s->seqs.size();
  if (!llama_context_init(&s->work, ev.m, wp, err)) return false;
  s->logits.assign(s->seqs.size() * (size_t)ev.m.hp.n_vocab, 0.f);
  return true;
}

// After a stream: eviction counts, and the budget invariants.
void close_stream(Eval& ev, Stream& s) {
  for (size_t i = 0; i < s.seqs.size(); ++i) {
    Cell& c = ev.cells[s.cell[i]];
    amskv_stats st;
    amskv_get_stats(s.seqs[i]->kv, &st);
    c.events += st.events;
    c.wipe_segments += (double)st.wipe_segments;
    c.wiped += (double)st.wiped_segments;
    bool held = st.bytes_used <= st.budget_bytes;
    for (int l = 0; l < ev.m.hp.n_layer; ++l)
      held = held && amskv_layer_tokens(s.seqs[i]->kv, l) <= st.capacity_tokens;
    if (!held)
      ev.checks_failed.push_back(c.policy + " at " + c.budget_label + " exceeded its budget");
  }
}

// log-softmax of row x [n] into out; returns the argmax.
int log_softmax(const float* x, int n, std::vector<double>* out) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  double sum = 0;
  for (int i = 0; i < n; ++i) sum += std::exp((double)x[i] - x[best]);
  const double lse = x[best] + std::log(sum);
  out->resize(n);
  for (int i = 0; i < n; ++i) (*out)[i] = x[i] - lse;
  return best;
}

int argmax(const float* x, int n) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (x[i] > x[best]) best = i;
  return best;
}

// ppl and agree on one text: teacher-forced text tokens, then the full cache's greedy
// continuation fed to every cell. Records per-step NLL into `trace` (for the
// reproducibility check) when it is not null.
bool run_text(Eval& ev, const std::vector<int32_t>& text, const std::string& name,
              std::vector<double>* trace, std::string* err) {
  const int T = (int)text.size(), A = ev.o.agree ? (int)ev.o.agree_tokens : 0;
  const int V = ev.m.hp.n_vocab;
  const amskv_config fcfg = llama_session_config(ev.m, ev.o.dtype, "full", 1);
  Stream s;
  if (!open_stream(ev, &s, amskv_budget_for_capacity(&fcfg, T + A + 8), err)) return false;
  const int n = (int)s.seqs.size();
  int full = -1;
  for (int i = 0; i < n; ++i)
    if (ev.cells[s.cell[i]].full) full = i;
  std::vector<int32_t> tok(n);
  std::vector<double> lp, lp_full;
  std::vector<char> diverged(n, 0);
  int32_t next_cont = -1;
  const int steps = T + A - 1;
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < steps; ++i) {
    const int32_t t = i < T ? text[i] : next_cont;
    std::fill(tok.begin(), tok.end(), t);
    if (!llama_decode_many(s.work, s.seqs.data(), tok.data(), n, s.logits.data()))
      return *err = s.work.error, false;
    if (i + 1 < T && ev.o.ppl) {  // predict text[i + 1]
      const int q = (int)((int64_t)i * 4 / (T - 1));
      for (int c = 0; c < n; ++c) {
        const float* x = s.logits.data() + (size_t)c * V;
        const int best = argmax(x, V);
        float sum = 0;  // float exp: this runs for every cell and vocabulary entry
        for (int v = 0; v < V; ++v) sum += std::exp(x[v] - x[best]);
        const double nll = -((double)x[text[i + 1]] - x[best] - std::log((double)sum));
        Cell& cell = ev.cells[s.cell[c]];
        cell.nll += nll, cell.nll_n++;
        cell.nll_q[q] += nll, cell.nll_qn[q]++;
        if (trace) trace->push_back(nll);
      }
    }
    if (i >= T - 1 && A > 0 && full >= 0) {  // agreement step j = i - (T - 1)
      const int32_t want = log_softmax(s.logits.data() + (size_t)full * V, V, &lp_full);
      for (int c = 0; c < n; ++c) {
        Cell& cell = ev.cells[s.cell[c]];
        const int got = log_softmax(s.logits.data() + (size_t)c * V, V, &lp);
        double kl = 0;
        for (int v = 0; v < V; ++v) kl += std::exp(lp_full[v]) * (lp_full[v] - lp[v]);
        cell.kl += std::max(0.0, kl);
        cell.agree_n++;
        if (got == want && !diverged[c]) cell.first_div++;
        if (got == want)
          cell.agree_match++;
        else
          diverged[c] = 1;
        if (trace) trace->push_back(kl + got);
      }
      next_cont = want;
    }
    ev.progress("text " + name + " (" + std::to_string(n) + " cells)", i + 1, steps,
                (double)(i + 1) * n / cli::seconds_since(t0));
  }
  if (A > 0)
    for (int c = 0; c < n; ++c) ev.cells[s.cell[c]].agree_docs++;
  close_stream(ev, s);
  return true;
}

// True when the greedy text starts with the answer (after spaces) and does not go on with
// more of the same word or number.
bool answer_matches(const std::string& gen, const std::string& answer) {
  size_t a = gen.find_first_not_of(" \t\n");
  if (a == std::string::npos || gen.compare(a, answer.size(), answer) != 0) return false;
  const size_t e = a + answer.size();
  return e >= gen.size() || !std::isalnum((unsigned char)gen[e]);
}

bool run_recall(Eval& ev, const RecallTask& task, std::string* err) {
  const Tokenizer& tok = ev.m.tok;
  const int V = ev.m.hp.n_vocab;
  std::vector<int32_t> prompt;
  tokenize(tok, recall_prompt(task), false, false, &prompt);
  struct Q {
    std::vector<int32_t> ids;
    int gen;
  };
  std::vector<Q> qs;
  long total = (long)prompt.size();
  for (const Fact& f : task.facts) {
    Q q;
    tokenize(tok, "\n\n" + f.question, false, false, &q.ids);
    std::vector<int32_t> a;
    tokenize(tok, " " + f.answer, false, false, &a);
    q.gen = (int)a.size() + 1;
    total += (long)q.ids.size() + q.gen;
    qs.push_back(q);
  }
  const amskv_config fcfg = llama_session_config(ev.m, ev.o.dtype, "full", 1);
  Stream s;
  if (!open_stream(ev, &s, amskv_budget_for_capacity(&fcfg, (int)total + 8), err)) return false;
  const int n = (int)s.seqs.size();
  for (int c = 0; c < n; ++c) {
    Cell& cell = ev.cells[s.cell[c]];
    cell.region_n.resize(std::max(cell.region_n.size(), task.pieces.size()), 0);
    cell.region_hit.resize(cell.region_n.size(), 0);
  }
  std::vector<int32_t> tok_in(n);
  long done = 0;
  const auto t0 = std::chrono::steady_clock::now();
  auto step = [&]() {
    if (!llama_decode_many(s.work, s.seqs.data(), tok_in.data(), n, s.logits.data()))
      return *err = s.work.error, false;
    ++done;
    ev.progress("recall " + task.id + " (" + std::to_string(n) + " cells)", done, total,
                (double)done * n / cli::seconds_since(t0));
    return true;
  };
  for (int32_t t : prompt) {
    std::fill(tok_in.begin(), tok_in.end(), t);
    if (!step()) return false;
  }
  std::vector<std::vector<int32_t>> gen(n);
  for (size_t k = 0; k < qs.size(); ++k) {
    for (int32_t t : qs[k].ids) {
      std::fill(tok_in.begin(), tok_in.end(), t);
      if (!step()) return false;
    }
    for (auto& g : gen) g.clear();
    for (int j = 0; j < qs[k].gen; ++j) {
      for (int c = 0; c < n; ++c) {
        tok_in[c] = argmax(s.logits.data() + (size_t)c * V, V);
        gen[c].push_back(tok_in[c]);
      }
      if (j + 1 < qs[k].gen && !step()) return false;
    }
    done += 1;  // the last answer token is not fed
    const Fact& f = task.facts[k];
    for (int c = 0; c < n; ++c) {
      Cell& cell = ev.cells[s.cell[c]];
      const bool hit = answer_matches(detokenize(tok, gen[c]), f.answer);
      cell.recall_n++, cell.recall_hit += hit;
      cell.region_n[f.piece]++, cell.region_hit[f.piece] += hit;
    }
  }
  close_stream(ev, s);
  return true;
}

// Each cell alone: prefill the first ctx - cost tokens of the text, then time `cost`
// teacher-forced decode steps.
void run_cost(Eval& ev, const std::vector<int32_t>& text) {
  const int cost = (int)ev.o.cost_tokens, pre = (int)text.size() - cost;
  if (cost <= 0 || pre < 1) return;
  const amskv_config fcfg = llama_session_config(ev.m, ev.o.dtype, "full", 1);
  for (size_t c = 0; c < ev.cells.size(); ++c) {
    Cell& cell = ev.cells[c];
    if (cell.failed) continue;
    LlamaContext ctx;
    LlamaParams p;
    p.kv_budget = cell.full ? amskv_budget_for_capacity(&fcfg, (int)text.size() + 8) : cell.budget;
    p.kv_dtype = ev.o.dtype;
    const std::string pol = ev.session_policy(cell);
    p.policy = pol.c_str();
    p.n_threads = (int)ev.o.threads;
    p.max_batch = 64;
    std::string err;
    if (!llama_context_init(&ctx, ev.m, p, &err)) continue;
    auto t0 = std::chrono::steady_clock::now();
    if (!llama_prefill(ctx, text.data(), pre, nullptr)) continue;
    cell.prefill_tps = pre / cli::seconds_since(t0);
    t0 = std::chrono::steady_clock::now();
    bool ok = true;
    for (int i = pre; i < (int)text.size() && ok; ++i) ok = llama_decode(ctx, text[i], nullptr);
    if (ok) cell.decode_tps = cost / cli::seconds_since(t0);
    ev.progress("cost", (long)c + 1, (long)ev.cells.size(), cell.decode_tps);
  }
}

// ---------------------------------------------------------------- output

std::string num(double v, const char* f = "%.4f") {
  if (std::isnan(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string jnum(double v) {
  if (std::isnan(v) || std::isinf(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

bool write_file(const std::string& path, const std::string& s) {
  std::ofstream out(path, std::ios::binary);
  out << s;
  return (bool)out;
}

const Cell* full_cell(const Eval& ev) {
  return ev.full_cell >= 0 ? &ev.cells[ev.full_cell] : nullptr;
}

std::string csv(const Eval& ev) {
  std::string o =
      "policy,budget,fraction,budget_bytes,session_bytes,capacity,nll,nll_gap,nll_q1,nll_q2,"
      "nll_q3,nll_q4,recall,agree_match,agree_first_div,agree_kl,events,wipe_rate,"
      "prefill_tps,decode_tps,error\n";
  const Cell* f = full_cell(ev);
  for (const Cell& c : ev.cells) {
    o += "\"" + c.policy + "\"," + c.budget_label + "," + num(c.fraction) + "," +
         std::to_string(c.budget) + "," + std::to_string(c.session_bytes) + "," +
         std::to_string(c.capacity) + "," + num(c.mean_nll()) + "," +
         num(f ? c.mean_nll() - f->mean_nll() : NAN) + ",";
    for (int q = 0; q < 4; ++q) o += num(c.nll_qn[q] ? c.nll_q[q] / c.nll_qn[q] : NAN) + ",";
    o += num(c.recall_acc()) + "," + num(c.match_rate()) + "," + num(c.mean_first_div(), "%.1f") +
         "," + num(c.mean_kl(), "%.5f") + "," + std::to_string(c.events) + "," +
         num(c.wipe_rate()) + "," + num(c.prefill_tps, "%.1f") + "," + num(c.decode_tps, "%.1f") +
         ",\"" + c.error + "\"\n";
  }
  return o;
}

std::string results_json(const Eval& ev, const std::vector<std::string>& data) {
  std::string o = "{\n  \"model\": " + json::quote(ev.o.model) +
                  ",\n  \"ctx\": " + std::to_string(ev.o.ctx) +
                  ",\n  \"agree_tokens\": " + std::to_string(ev.o.agree_tokens) +
                  ",\n  \"seed\": " + std::to_string(ev.o.seed) +
                  ",\n  \"threads\": " + std::to_string(ev.o.threads) + ",\n  \"kv_dtype\": \"" +
                  (ev.o.dtype == AMSKV_F32   ? "f32"
                   : ev.o.dtype == AMSKV_F16 ? "f16"
                                             : "q8") +
                  "\",\n  \"peak_rss_bytes\": " + std::to_string(ev.peak_rss) +
                  ",\n  \"minutes\": " + jnum(ev.minutes) + ",\n  \"data\": [";
  for (size_t i = 0; i < data.size(); ++i) o += (i ? ", " : "") + data[i];
  o += "],\n  \"cells\": [\n";
  for (size_t i = 0; i < ev.cells.size(); ++i) {
    const Cell& c = ev.cells[i];
    o += "    {\"policy\": " + json::quote(c.policy) +
         ", \"budget\": " + json::quote(c.budget_label) +
         ", \"budget_bytes\": " + std::to_string(c.budget) +
         ", \"session_bytes\": " + std::to_string(c.session_bytes) +
         ", \"capacity\": " + std::to_string(c.capacity) + ", \"nll\": " + jnum(c.mean_nll()) +
         ", \"nll_quarters\": [";
    for (int q = 0; q < 4; ++q)
      o += (q ? ", " : "") + jnum(c.nll_qn[q] ? c.nll_q[q] / c.nll_qn[q] : NAN);
    o += "], \"recall\": " + jnum(c.recall_acc()) + ", \"recall_by_region\": [";
    for (size_t r = 0; r < c.region_n.size(); ++r)
      o += (r ? ", " : "") + jnum(c.region_n[r] ? (double)c.region_hit[r] / c.region_n[r] : NAN);
    o += "], \"agree_match\": " + jnum(c.match_rate()) +
         ", \"agree_first_div\": " + jnum(c.mean_first_div()) +
         ", \"agree_kl\": " + jnum(c.mean_kl()) + ", \"events\": " + std::to_string(c.events) +
         ", \"wipe_rate\": " + jnum(c.wipe_rate()) +
         ", \"prefill_tps\": " + jnum(c.prefill_tps < 0 ? NAN : c.prefill_tps) +
         ", \"decode_tps\": " + jnum(c.decode_tps < 0 ? NAN : c.decode_tps) +
         ", \"error\": " + json::quote(c.error) + "}" + (i + 1 < ev.cells.size() ? ",\n" : "\n");
  }
  return o + "  ]\n}\n";
}

std::string markdown(const Eval& ev) {
  const Cell* f = full_cell(ev);
  std::string o =
      "| policy | budget | capacity | NLL | gap to full | recall | agree match | first div | "
      "KL | wipe-out | events | decode tok/s "
      "|\n|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  std::vector<std::string> labels;
  for (const Cell& c : ev.cells)
    if (std::find(labels.begin(), labels.end(), c.budget_label) == labels.end())
      labels.push_back(c.budget_label);
  for (const std::string& b : labels)
    for (const Cell& c : ev.cells) {
      if (c.budget_label != b) continue;
      if (c.failed) {
        o += "| " + c.policy + " | " + b + " | - | " + c.error + " |||||||||\n";
        continue;
      }
      o += "| " + c.policy + " | " + b + " | " + std::to_string(c.capacity) + " | " +
           num(c.mean_nll(), "%.3f") + " | " +
           num(f ? c.mean_nll() - f->mean_nll() : NAN, "%+.3f") + " | " +
           num(c.recall_acc(), "%.2f") + " | " + num(c.match_rate(), "%.3f") + " | " +
           num(c.mean_first_div(), "%.1f") + " | " + num(c.mean_kl(), "%.4f") + " | " +
           num(c.wipe_rate(), "%.3f") + " | " + std::to_string(c.events) + " | " +
           num(c.decode_tps < 0 ? NAN : c.decode_tps, "%.1f") + " |\n";
    }
  return o;
}

// AMS against global top-k with the same scorer at the same budget, pair by pair, and how
// many pairs each side wins on each metric.
std::string ams_vs_topk(const Eval& ev) {
  static const char* const kPairScorers[] = {"tova",    "h2o",  "snapkv", "expected_attention",
                                             "keydiff", "knorm"};
  auto find = [&](const std::string& policy, const std::string& budget) -> const Cell* {
    for (const Cell& c : ev.cells)
      if (c.policy == policy && c.budget_label == budget && !c.failed) return &c;
    return nullptr;
  };
  const Cell* f = full_cell(ev);
  struct Metric {
    const char* name;
    double (*get)(const Cell&, const Cell*);
    bool lower_better;
    const char* fmt;
    int ams = 0, topk = 0, tie = 0;
  };
  Metric ms[] = {
      {"NLL gap",
       [](const Cell& c, const Cell* f) { return f ? c.mean_nll() - f->mean_nll() : NAN; }, true,
       "%+.3f"},
      {"recall", [](const Cell& c, const Cell*) { return c.recall_acc(); }, false, "%.2f"},
      {"agree match", [](const Cell& c, const Cell*) { return c.match_rate(); }, false, "%.3f"},
      {"KL", [](const Cell& c, const Cell*) { return c.mean_kl(); }, true, "%.4f"},
      {"wipe-out", [](const Cell& c, const Cell*) { return c.wipe_rate(); }, true, "%.3f"}};
  std::string o = "| scorer | budget |";
  for (const Metric& m : ms) o += std::string(" ") + m.name + " top-k / ams |";
  o += "\n|---|---|---|---|---|---|---|\n";
  std::vector<std::string> labels;
  for (const Cell& c : ev.cells)
    if (!c.full && std::find(labels.begin(), labels.end(), c.budget_label) == labels.end())
      labels.push_back(c.budget_label);
  int pairs = 0;
  for (const char* s : kPairScorers)
    for (const std::string& b : labels) {
      const Cell *t = find(s, b), *a = find(std::string("ams:") + s, b);
      if (!t || !a) continue;
      ++pairs;
      o += std::string("| ") + s + " | " + b + " |";
      for (Metric& m : ms) {
        const double x = m.get(*t, f), y = m.get(*a, f);
        std::string tx = num(x, m.fmt), ty = num(y, m.fmt);
        if (!std::isnan(x) && !std::isnan(y)) {
          const bool ams_wins = m.lower_better ? y < x : y > x;
          const bool topk_wins = m.lower_better ? x < y : x > y;
          if (tx == ty)
            m.tie++;
          else if (ams_wins)
            m.ams++, ty = "**" + ty + "**";
          else if (topk_wins)
            m.topk++, tx = "**" + tx + "**";
        }
        o += " " + tx + " / " + ty + " |";
      }
      o += "\n";
    }
  o += "\nPairs won (better at the precision shown; bold above), of " + std::to_string(pairs) + ":";
  for (const Metric& m : ms)
    o += std::string(" ") + m.name + " AMS " + std::to_string(m.ams) + ", top-k " +
         std::to_string(m.topk) + ", tie " + std::to_string(m.tie) + ";";
  o.back() = '.';
  return o + "\n";
}

// Quality against budget fraction: one line per policy; ams: solid, top-k dashed, the same
// colour per scorer; the full cache as a flat reference line.
std::string plot(const Eval& ev, const std::string& title, const std::string& y_label,
                 double (*metric)(const Cell&, const Cell*)) {
  const Cell* f = full_cell(ev);
  std::vector<std::string> names;
  for (const Cell& c : ev.cells)
    if (!c.full && c.fraction > 0 && std::find(names.begin(), names.end(), c.policy) == names.end())
      names.push_back(c.policy);
  std::vector<std::string> scorers;
  std::vector<svg::Series> series;
  double lo = 1, hi = 0;
  for (const std::string& name : names) {
    svg::Series s;
    s.name = name;
    const bool ams = name.rfind("ams:", 0) == 0;
    std::string scorer = ams ? name.substr(4) : name;
    if (ams && scorer.find(',') != std::string::npos) scorer = name;  // ablations: own colour
    auto it = std::find(scorers.begin(), scorers.end(), scorer);
    if (it == scorers.end()) scorers.push_back(scorer), it = scorers.end() - 1;
    s.color = svg::palette((int)(it - scorers.begin()));
    s.dashed = !ams;
    for (const Cell& c : ev.cells)
      if (c.policy == name && c.fraction > 0 && !c.failed) {
        s.x.push_back(c.fraction);
        s.y.push_back(metric(c, f));
        lo = std::min(lo, c.fraction), hi = std::max(hi, c.fraction);
      }
    series.push_back(s);
  }
  if (f && !f->failed) {
    svg::Series s;
    s.name = "full";
    s.color = "#000000";
    s.x = {lo, hi};
    s.y = {metric(*f, f), metric(*f, f)};
    series.insert(series.begin(), s);
  }
  return svg::line_chart(title, "KV budget (fraction of the context)", y_label, series);
}

double m_gap(const Cell& c, const Cell* f) {
  return f ? c.mean_nll() - f->mean_nll() : NAN;
}
double m_recall(const Cell& c, const Cell*) {
  return c.recall_acc();
}
double m_match(const Cell& c, const Cell*) {
  return c.match_rate();
}
double m_kl(const Cell& c, const Cell*) {
  return c.mean_kl();
}
double m_wipe(const Cell& c, const Cell*) {
  return c.wipe_rate();
}

// ---------------------------------------------------------------- the event picture

struct Captured {
  int layer = 0, seen = 0;
  svg::EventPanel panel;
};

void capture(const amskv_event_info* e, void* user) {
  Captured* cap = (Captured*)user;
  if (e->layer != cap->layer || e->kv_head != 0 || !e->mass) return;
  cap->seen++;
  svg::EventPanel& p = cap->panel;
  p.positions.assign(e->positions, e->positions + e->n_tokens);
  p.mass.assign(e->mass, e->mass + e->n_tokens);
  p.kept.assign(e->n_tokens, 0);
  for (int i = 0; i < e->n_keep; ++i) p.kept[e->kept[i]] = 1;
  if (e->n_ams_segments > 0) {
    p.seg_start.assign(e->ams_seg_start, e->ams_seg_start + e->n_ams_segments);
    p.seg_quota.assign(e->ams_seg_quota, e->ams_seg_quota + e->n_ams_segments);
  } else {
    p.seg_start.assign(e->seg_start, e->seg_start + e->n_segments);
    p.seg_quota.clear();
  }
}

int plot_event(const Options& o, const LlamaModel& m, const std::vector<int32_t>& text,
               double fraction, size_t bytes) {
  const std::string ams = o.plot_policy.empty() ? "ams:tova" : o.plot_policy;
  if (ams.rfind("ams:", 0) != 0) return error(kUsage, "--plot-event wants an ams: policy");
  std::string twin = ams.substr(4);
  twin = twin.substr(0, twin.find(','));  // the scorer alone, as global top-k
  const amskv_config fcfg = llama_session_config(m, o.dtype, "full", 1);
  const size_t budget =
      bytes ? bytes : amskv_budget_for_capacity(&fcfg, (int)std::lround(fraction * o.ctx));
  const int layer = o.layer >= 0 ? (int)o.layer : m.hp.n_layer / 2;
  if (layer >= m.hp.n_layer) return error(kUsage, "--layer is beyond the model's layers");
  Captured caps[2];
  LlamaContext ctx[2];
  LlamaContext* seqs[2] = {&ctx[0], &ctx[1]};
  const std::string pols[2] = {ams, twin};
  for (int i = 0; i < 2; ++i) {
    LlamaParams p;
    p.kv_budget = budget;
    p.kv_dtype = o.dtype;
    p.policy = pols[i].c_str();
    p.n_threads = (int)o.threads;
    p.max_batch = 2;
    std::string err;
    if (!llama_context_init(&ctx[i], m, p, &err)) return error(kUsage, err);
    caps[i].layer = layer;
    amskv_set_event_observer(ctx[i].kv, capture, &caps[i]);
  }
  std::vector<float> logits(2 * (size_t)m.hp.n_vocab);
  for (size_t i = 0; i < text.size(); ++i) {
    const int32_t t[2] = {text[i], text[i]};
    if (!llama_decode_many(ctx[0], seqs, t, 2, logits.data())) return error(kRuntime, ctx[0].error);
  }
  if (!caps[0].seen || !caps[1].seen)
    return error(kUsage, "no compression event at this budget over " + std::to_string(text.size()) +
                             " tokens; lower --budgets");
  amskv_stats st;
  amskv_get_stats(ctx[0].kv, &st);
  caps[0].panel.title = ams + ": its mass-cut regions and quotas";
  caps[1].panel.title = twin + " (global top-k): the same budget; regions cut from its mass";
  const std::string title = "Layer " + std::to_string(layer) +
                            ", KV head 0, last compression event over " +
                            std::to_string(text.size()) + " tokens; capacity " +
                            std::to_string(st.capacity_tokens) + " tokens";
  if (!write_file(o.plot_event, svg::event_figure(title, {caps[0].panel, caps[1].panel})))
    return error(kRuntime, "cannot write " + o.plot_event);
  std::fprintf(stderr, "eval: wrote %s (layer %d: %d and %d events seen)\n", o.plot_event.c_str(),
               layer, caps[0].seen, caps[1].seen);
  return 0;
}

// A finished run back from its results.json (amskv eval --from): the cells with their
// means, the run's settings and data records; for re-rendering the report and plots.
bool load_results(const std::string& path, Options* o, std::vector<Cell>* cells,
                  std::vector<std::string>* data, double* minutes, size_t* rss, std::string* err) {
  std::string text;
  if (!cli::read_file(path, &text)) return *err = "cannot read '" + path + "'", false;
  json::Value v;
  if (!json::parse(text, &v, err)) return *err = path + ": " + *err, false;
  auto number = [](const json::Value* x) {
    return x && x->kind == json::Value::kNumber ? x->num : NAN;
  };
  const json::Value* cs = v.get("cells");
  if (!cs || cs->kind != json::Value::kArray) return *err = path + ": no 'cells' array", false;
  if (const json::Value* m = v.get("model"); m && m->kind == json::Value::kString)
    o->model = m->str;
  auto whole = [&](const char* key, long* out) {
    const double x = number(v.get(key));
    if (!std::isnan(x)) *out = (long)x;
  };
  whole("ctx", &o->ctx), whole("agree_tokens", &o->agree_tokens), whole("seed", &o->seed);
  whole("threads", &o->threads);
  *minutes = number(v.get("minutes"));
  *rss = (size_t)std::max(0.0, number(v.get("peak_rss_bytes")));
  if (const json::Value* d = v.get("data"); d && d->kind == json::Value::kArray)
    for (const json::Value& x : d->arr) data->push_back(json::dump(x));
  o->ppl = o->recall = o->agree = false;
  for (const json::Value& x : cs->arr) {
    Cell c;
    const json::Value *p = x.get("policy"), *b = x.get("budget"), *e = x.get("error");
    if (!p || p->kind != json::Value::kString || !b || b->kind != json::Value::kString)
      return *err = path + ": a cell without policy or budget", false;
    c.policy = p->str, c.budget_label = b->str;
    c.full = c.policy == "full" && c.budget_label == "ctx";
    float f;
    if (cli::parse_float(c.budget_label, 1e-4f, 1.f, &f)) c.fraction = f;
    c.budget = (size_t)std::max(0.0, number(x.get("budget_bytes")));
    c.session_bytes = (size_t)std::max(0.0, number(x.get("session_bytes")));
    c.capacity = (int)std::max(0.0, number(x.get("capacity")));
    c.error = e && e->kind == json::Value::kString ? e->str : "";
    c.failed = !c.error.empty();
    // One "observation" per mean reproduces it exactly.
    auto put = [&](const char* key, double* sum, double* n) {
      const double m = number(x.get(key));
      if (!std::isnan(m)) *sum = m, *n = 1;
      return !std::isnan(m);
    };
    o->ppl |= put("nll", &c.nll, &c.nll_n);
    if (const json::Value* q = x.get("nll_quarters"); q && q->kind == json::Value::kArray)
      for (size_t i = 0; i < 4 && i < q->arr.size(); ++i)
        if (!std::isnan(number(&q->arr[i]))) c.nll_q[i] = q->arr[i].num, c.nll_qn[i] = 1;
    o->recall |= put("recall", &c.recall_hit, &c.recall_n);
    if (const json::Value* r = x.get("recall_by_region"); r && r->kind == json::Value::kArray)
      for (const json::Value& y : r->arr) {
        c.region_hit.push_back(std::isnan(number(&y)) ? 0 : y.num);
        c.region_n.push_back(std::isnan(number(&y)) ? 0 : 1);
      }
    o->agree |= put("agree_match", &c.agree_match, &c.agree_n);
    double unused = 0;
    put("agree_kl", &c.kl, &unused);
    put("agree_first_div", &c.first_div, &c.agree_docs);
    put("wipe_rate", &c.wiped, &c.wipe_segments);
    c.events = (uint64_t)std::max(0.0, number(x.get("events")));
    const double pt = number(x.get("prefill_tps")), dt = number(x.get("decode_tps"));
    c.prefill_tps = std::isnan(pt) ? -1 : pt;
    c.decode_tps = std::isnan(dt) ? -1 : dt;
    cells->push_back(c);
  }
  return true;
}

// summary.md (returned in md_out too), results.csv, results.json and the plots in --out.
bool write_report(const Eval& ev, const std::vector<std::string>& data, std::string* md_out) {
  std::string& md = *md_out;
  md = "# amskv eval summary\n\nModel `" + ev.o.model + "`, context " + std::to_string(ev.o.ctx) +
       " tokens, agreement over " + std::to_string(ev.o.agree_tokens) + " tokens per text, seed " +
       std::to_string(ev.o.seed) + ", " + std::to_string(ev.o.threads) + " threads, " +
       num(ev.minutes, "%.1f") + " min, peak RSS " + num(ev.peak_rss / 1048576.0, "%.0f") +
       " MiB.\n\nData:\n\n";
  for (const std::string& d : data) md += "- `" + d + "`\n";
  md += "\n" + markdown(ev) + "\n## AMS against global top-k, same scorer and budget\n\n" +
        ams_vs_topk(ev);
  bool ok = write_file(ev.o.out + "/summary.md", md) &&
            write_file(ev.o.out + "/results.csv", csv(ev)) &&
            write_file(ev.o.out + "/results.json", results_json(ev, data));
  if (ev.o.ppl)
    ok &= write_file(
        ev.o.out + "/ppl_gap.svg",
        plot(ev, "NLL gap to the full cache (lower is better)", "mean NLL - full", m_gap));
  if (ev.o.recall)
    ok &=
        write_file(ev.o.out + "/recall.svg",
                   plot(ev, "Region recall, exact match (higher is better)", "accuracy", m_recall));
  if (ev.o.agree) {
    ok &= write_file(ev.o.out + "/agree_match.svg", plot(ev, "Greedy agreement with the full cache",
                                                         "argmax match rate", m_match));
    ok &=
        write_file(ev.o.out + "/agree_kl.svg",
                   plot(ev, "KL(full || policy) on the full cache's path", "mean KL (nats)", m_kl));
  }
  ok &= write_file(ev.o.out + "/wipe_out.svg", plot(ev, "Region wipe-out rate (lower is better)",
                                                    "wiped regions / regions", m_wipe));
  return ok;
}

}  // namespace

int eval_main(int argc, char** argv) {
  Options o;
  const int rc = parse(argc, argv, &o);
  if (rc < 0) return std::fputs(kHelp, stdout), 0;
  if (rc) return rc;
  if (!o.policies.empty()) o.plot_policy = o.policies[0];
  if (o.quick) {
    if (o.policies.empty()) o.policies.assign(std::begin(kQuickPolicies), std::end(kQuickPolicies));
    if (o.budgets.empty()) o.budgets = {"0.25", "0.5"};
    o.ctx = std::min(o.ctx, 512L);
    o.agree_tokens = std::min(o.agree_tokens, 16L);
    o.facts = std::min(o.facts, 4L);
    o.recall_tasks = 1;
    o.cost_tokens = std::min(o.cost_tokens, 16L);
  }
  if (o.policies.empty())
    o.policies.assign(std::begin(kDefaultPolicies), std::end(kDefaultPolicies));
  if (o.budgets.empty()) o.budgets = {"0.1", "0.25", "0.5"};

  if (!o.from.empty()) {  // the report of a finished run, without the model
    std::vector<Cell> cells;
    std::vector<std::string> data;
    double minutes = 0;
    size_t rss = 0;
    std::string err;
    if (!load_results(o.from, &o, &cells, &data, &minutes, &rss, &err)) return error(kUsage, err);
    static const LlamaModel none;
    Eval ev(o, none);
    ev.cells = cells;
    for (size_t i = 0; i < cells.size(); ++i)
      if (cells[i].full) ev.full_cell = (int)i;
    ev.minutes = minutes, ev.peak_rss = rss;
    mkdir(o.out.c_str(), 0755);
    std::string md;
    if (!write_report(ev, data, &md)) return error(kRuntime, "cannot write results to " + o.out);
    std::fputs(md.c_str(), stdout);
    return 0;
  }

  LlamaModel m;
  std::string err;
  if (!llama_load(o.model.c_str(), &m, &err)) return error(kRuntime, err);

  // Texts: the user's, or the default prose and code.
  std::vector<std::string> text_paths = o.texts;
  if (text_paths.empty()) {
    for (const std::string& p : {first_existing(kDefaultProse, std::size(kDefaultProse)),
                                 first_existing(kDefaultCode, std::size(kDefaultCode))})
      if (!p.empty()) text_paths.push_back(p);
    if (o.quick && text_paths.size() > 1) text_paths.resize(1);
  }
  if (text_paths.empty() && (o.ppl || o.agree || !o.plot_event.empty()))
    return error(kRuntime, "no default text found; give --text FILE");
  std::vector<std::vector<int32_t>> texts;
  std::vector<std::string> data;  // JSON records of the inputs
  for (const std::string& p : text_paths) {
    std::string bytes;
    if (!cli::read_file(p, &bytes)) return error(kRuntime, "cannot read text '" + p + "'");
    std::vector<int32_t> ids;
    tokenize(m.tok, bytes, false, false, &ids);
    if ((long)ids.size() < o.ctx)
      return error(kUsage, "text '" + p + "' has " + std::to_string(ids.size()) +
                               " tokens, fewer than --ctx " + std::to_string(o.ctx));
    ids.resize(o.ctx);
    texts.push_back(ids);
    data.push_back("{\"use\": \"text\", \"path\": " + json::quote(p) + ", \"bytes\": " +
                   std::to_string(bytes.size()) + ", \"fnv1a64\": \"" + fnv_hex(bytes) + "\"}");
  }

  // Budgets: fractions of --ctx as the bytes the full cache needs for that many tokens
  // (every policy then gets the same bytes), or sizes.
  struct Budget {
    std::string label;
    double fraction = 0;
    size_t bytes = 0;
  };
  std::vector<Budget> budgets;
  const amskv_config fcfg = llama_session_config(m, o.dtype, "full", 1);
  for (const std::string& b : o.budgets) {
    Budget x;
    x.label = b;
    float f;
    if (cli::parse_float(b, 1e-4f, 1.f, &f)) {
      x.fraction = f;
      x.bytes = amskv_budget_for_capacity(&fcfg, (int)std::lround(f * o.ctx));
    } else if (!cli::parse_size(b, &x.bytes)) {
      return error(kUsage, "bad budget '" + b + "': a fraction in (0, 1] or a size like 4MiB");
    }
    budgets.push_back(x);
  }

  if (!o.plot_event.empty()) {
    if (budgets.size() != 1) return error(kUsage, "--plot-event takes one value in --budgets");
    return plot_event(o, m, texts[0], budgets[0].fraction,
                      budgets[0].fraction ? 0 : budgets[0].bytes);
  }

  Eval ev(o, m);
  {
    Cell full;
    full.policy = "full", full.budget_label = "ctx", full.full = true;
    ev.cells.push_back(full);
    ev.full_cell = 0;
  }
  for (const Budget& b : budgets)
    for (const std::string& p : o.policies) {
      if (p == "full") continue;
      Cell c;
      c.policy = p, c.budget_label = b.label, c.fraction = b.fraction, c.budget = b.bytes;
      // Refuse bad policy strings before any work.
      const amskv_config cfg = llama_session_config(m, o.dtype, p.c_str(), 1);
      if (amskv_session_bytes(&cfg, (size_t)1 << 30) == 0)
        return error(kUsage, "policy '" + p + "': " + amskv_last_error(nullptr));
      if (amskv_session_bytes(&cfg, b.bytes) == 0)
        c.failed = true, c.error = "budget too small for its state";
      ev.cells.push_back(c);
    }

  // Recall tasks: the user's file, or generated from a text on the machine.
  std::vector<RecallTask> recall;
  if (o.recall) {
    if (!o.recall_file.empty()) {
      if (!load_recall(o.recall_file, &recall, &err)) return error(kUsage, err);
      data.push_back("{\"use\": \"recall\", \"path\": " + json::quote(o.recall_file) + "}");
    } else {
      const std::string p = first_existing(kDefaultFiller, std::size(kDefaultFiller));
      std::string bytes;
      if (p.empty() || !cli::read_file(p, &bytes))
        return error(kRuntime, "no default filler text found; give --recall FILE");
      recall = make_recall(m.tok, bytes, base_name(p), (int)o.ctx, (int)o.facts,
                           (int)o.recall_tasks, (uint64_t)o.seed);
      data.push_back("{\"use\": \"recall filler\", \"path\": " + json::quote(p) + ", \"bytes\": " +
                     std::to_string(bytes.size()) + ", \"fnv1a64\": \"" + fnv_hex(bytes) + "\"}");
    }
  }

  mkdir(o.out.c_str(), 0755);
  if (o.recall) {
    std::string jsonl;
    for (const RecallTask& t : recall) jsonl += task_json(t) + "\n";
    write_file(o.out + "/recall_tasks.jsonl", jsonl);
  }

  // Work estimate for the progress line.
  for (size_t i = 0; i < texts.size(); ++i)
    ev.steps_total += (long)texts[i].size() + (o.agree ? o.agree_tokens : 0) - 1;
  for (const RecallTask& t : recall) ev.steps_total += (long)o.ctx + 20 * (long)t.facts.size();
  if (o.cost_tokens > 0 && !texts.empty()) ev.steps_total += (long)ev.cells.size();
  if (o.quick && !texts.empty()) ev.steps_total += (long)texts[0].size() + o.agree_tokens - 1;

  const auto t_start = std::chrono::steady_clock::now();
  std::vector<double> trace1;
  if (o.ppl || o.agree)
    for (size_t i = 0; i < texts.size(); ++i)
      if (!run_text(ev, texts[i], base_name(text_paths[i]), i == 0 ? &trace1 : nullptr, &err))
        return error(kRuntime, err);
  for (const RecallTask& t : recall)
    if (!run_recall(ev, t, &err)) return error(kRuntime, err);
  if (!texts.empty()) run_cost(ev, texts[0]);

  // Quick mode: what must always hold.
  if (o.quick) {
    // Reproducible: the first text again, on fresh sessions, gives the same numbers bit for
    // bit (the random policy included, with the same seed).
    if (!trace1.empty()) {
      Eval again(o, m);
      again.cells = ev.cells;
      for (Cell& c : again.cells) {  // the same cells with no results yet
        Cell fresh;
        fresh.policy = c.policy, fresh.budget_label = c.budget_label, fresh.fraction = c.fraction;
        fresh.budget = c.budget, fresh.full = c.full, fresh.failed = c.failed,
        fresh.error = c.error;
        c = fresh;
      }
      again.steps_total = ev.steps_total, again.steps_done = ev.steps_done;
      std::vector<double> trace2;
      if (!run_text(again, texts[0], base_name(text_paths[0]) + " again", &trace2, &err))
        return error(kRuntime, err);
      if (trace1 != trace2) ev.checks_failed.push_back("a second run of the same text differs");
    }
    const Cell* f = full_cell(ev);
    for (const Cell& c : ev.cells) {
      if (c.failed) {
        ev.checks_failed.push_back(c.policy + " at " + c.budget_label + " failed: " + c.error);
        continue;
      }
      if (f && o.agree && !(c.match_rate() <= f->match_rate() && c.mean_kl() >= f->mean_kl()))
        ev.checks_failed.push_back(c.policy + " at " + c.budget_label +
                                   " agrees with the full cache better than the full cache");
      if (!c.full && c.fraction > 0 && c.fraction < 1 && c.events == 0)
        ev.checks_failed.push_back(c.policy + " at " + c.budget_label + " never evicted");
      if (c.session_bytes > c.budget && !c.full)
        ev.checks_failed.push_back(c.policy + " at " + c.budget_label +
                                   " took more bytes than its budget");
    }
    if (f && o.agree && !(f->match_rate() == 1.0 && f->mean_kl() == 0.0))
      ev.checks_failed.push_back("the full cache disagrees with itself");
  }

  const double minutes = cli::seconds_since(t_start) / 60;
  ev.minutes = minutes;
  ev.peak_rss = cli::peak_rss_bytes();
  std::string md;
  if (!write_report(ev, data, &md)) return error(kRuntime, "cannot write results to " + o.out);
  std::fputs(md.c_str(), stdout);
  std::fprintf(stderr, "eval: results in %s (%.1f min)\n", o.out.c_str(), minutes);
  if (o.quick) {
    for (const std::string& c : ev.checks_failed)
      std::fprintf(stderr, "eval: CHECK FAILED: %s\n", c.c_str());
    if (!ev.checks_failed.empty()) return kRuntime;
    std::fprintf(stderr,
                 "eval: quick checks passed (agreement ordering, reproducibility, budgets)\n");
  } else if (!ev.checks_failed.empty()) {
    for (const std::string& c : ev.checks_failed)
      std::fprintf(stderr, "eval: WARNING: %s\n", c.c_str());
    return kRuntime;
  }
  return 0;
}

// amskv bench: prefill and decode speed of the model at a few context lengths, per policy,
// each policy at a budget that is a fraction of the context (the full cache gets room for
// all of it). Prefill takes the first `ctx` tokens of the text in batches; decode then
// feeds `decode` more tokens of it one at a time (teacher-forced, so every policy decodes
// the same tokens).
int bench_main(int argc, char** argv) {
  std::string model = cli::default_model(), text_path;
  std::vector<std::string> ctxs = {"512", "2048", "8192"}, policies;
  float fraction = 0.25f;
  long decode = 128, threads = 0;
  amskv_dtype dtype = AMSKV_F16;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(
          "amskv bench: prefill and decode tokens/s of the model per context and policy\n"
          "  --ctx LIST          context lengths (512,2048,8192)\n"
          "  --policy P          repeat (default: full and ams:tova)\n"
          "  --fraction F        budget of the evicting policies, fraction of the context (0.25)\n"
          "  --decode N          decode steps timed after the prefill (128)\n"
          "  --text FILE         text to feed (default: the evaluation's code text)\n"
          "  --threads N, --kv-dtype f32|f16|q8, --model PATH\n",
          stdout);
      return 0;
    }
    if (i + 1 >= argc) return error(kUsage, a + " needs a value");
    const std::string v = argv[++i];
    bool ok = true;
    if (a == "--ctx") {
      ctxs.clear();
      ok = split(v, ',', &ctxs);
    } else if (a == "--policy") {
      policies.push_back(v);
    } else if (a == "--fraction") {
      ok = cli::parse_float(v, 1e-3f, 1.f, &fraction);
    } else if (a == "--decode") {
      ok = cli::parse_long(v, 1, 1 << 20, &decode);
    } else if (a == "--text") {
      text_path = v;
    } else if (a == "--threads") {
      ok = cli::parse_long(v, 1, 256, &threads);
    } else if (a == "--model") {
      model = v;
    } else if (a == "--kv-dtype") {
      ok = v == "f32" || v == "f16" || v == "q8";
      dtype = v == "f32" ? AMSKV_F32 : v == "f16" ? AMSKV_F16 : AMSKV_Q8;
    } else {
      return error(kUsage, "unknown option '" + a + "' (see amskv bench --help)");
    }
    if (!ok) return error(kUsage, "bad value '" + v + "' for " + a);
  }
  if (policies.empty()) policies = {"full", "ams:tova"};
  if (threads == 0) threads = cli::default_threads();
  if (text_path.empty()) text_path = first_existing(kDefaultCode, std::size(kDefaultCode));
  std::string bytes;
  if (text_path.empty() || !cli::read_file(text_path, &bytes))
    return error(kRuntime, "cannot read a text to feed; give --text FILE");
  LlamaModel m;
  std::string err;
  if (!llama_load(model.c_str(), &m, &err)) return error(kRuntime, err);
  std::vector<int32_t> text;
  tokenize(m.tok, bytes, false, false, &text);
  if (text.empty()) return error(kUsage, "the text has no tokens");
  std::printf(
      "| context | policy | budget | capacity | prefill tok/s | decode tok/s | events |\n"
      "|---|---|---|---|---|---|---|\n");
  for (const std::string& cs : ctxs) {
    long ctx;
    if (!cli::parse_long(cs, 1, 1 << 20, &ctx)) return error(kUsage, "bad context '" + cs + "'");
    std::vector<int32_t> ids;  // the text, repeated if it is short
    while ((long)ids.size() < ctx + decode) ids.push_back(text[ids.size() % text.size()]);
    for (const std::string& pol : policies) {
      const bool full = pol == "full";
      const amskv_config cfg = llama_session_config(m, dtype, "full", 1);
      LlamaParams p;
      p.kv_budget = amskv_budget_for_capacity(
          &cfg, full ? (int)(ctx + decode + 8) : (int)std::lround(fraction * ctx));
      p.kv_dtype = dtype;
      p.policy = pol.c_str();
      p.n_threads = (int)threads;
      p.max_batch = 64;
      LlamaContext c;
      if (!llama_context_init(&c, m, p, &err)) return error(kUsage, pol + ": " + err);
      auto t0 = std::chrono::steady_clock::now();
      if (!llama_prefill(c, ids.data(), (int)ctx, nullptr)) return error(kRuntime, c.error);
      const double pre = ctx / cli::seconds_since(t0);
      t0 = std::chrono::steady_clock::now();
      for (long i = ctx; i < ctx + decode; ++i)
        if (!llama_decode(c, ids[i], nullptr)) return error(kRuntime, c.error);
      const double dec = decode / cli::seconds_since(t0);
      amskv_stats st;
      amskv_get_stats(c.kv, &st);
      std::printf("| %ld | %s | %s | %d | %.1f | %.1f | %llu |\n", ctx, pol.c_str(),
                  full ? "all" : num(fraction, "%.2f").c_str(), st.capacity_tokens, pre, dec,
                  (unsigned long long)st.events);
      std::fflush(stdout);
    }
  }
  return 0;
}

int recall_gen_main(int argc, char** argv) {
  std::string model = cli::default_model(), text, name;
  long ctx = 2048, facts = 8, tasks = 4, seed = 1;
  for (int i = 0; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--help" || a == "-h") {
      std::fputs(
          "amskv recall-gen --text FILE [--ctx 2048] [--facts 8] [--tasks 4] [--seed 1]\n"
          "  writes recall tasks (JSONL, docs/eval.md) built from FILE to stdout; the model's\n"
          "  tokenizer (--model PATH) sizes the pieces\n",
          stdout);
      return 0;
    }
    if (i + 1 >= argc) return error(kUsage, a + " needs a value");
    const std::string v = argv[++i];
    bool ok = true;
    if (a == "--text")
      text = v;
    else if (a == "--model")
      model = v;
    else if (a == "--ctx")
      ok = cli::parse_long(v, 256, 1 << 20, &ctx);
    else if (a == "--facts")
      ok = cli::parse_long(v, 1, 64, &facts);
    else if (a == "--tasks")
      ok = cli::parse_long(v, 1, 100000, &tasks);
    else if (a == "--seed")
      ok = cli::parse_long(v, 0, 2147483647L, &seed);
    else
      return error(kUsage, "unknown option '" + a + "' (see amskv recall-gen --help)");
    if (!ok) return error(kUsage, "bad value '" + v + "' for " + a);
  }
  if (text.empty()) return error(kUsage, "recall-gen needs --text FILE");
  std::string bytes;
  if (!cli::read_file(text, &bytes) || bytes.empty())
    return error(kRuntime, "cannot read text '" + text + "'");
  LlamaModel m;
  std::string err;
  if (!llama_load(model.c_str(), &m, &err)) return error(kRuntime, err);
  for (const RecallTask& t :
       make_recall(m.tok, bytes, base_name(text), (int)ctx, (int)facts, (int)tasks, (uint64_t)seed))
    std::printf("%s\n", task_json(t).c_str());
  return 0;
}

}  // namespace amskv
