// amskv eval: every policy at the same budgets on the same inputs, one model pass for all
// (docs/results.md). What its files share:
//   eval.cpp         the command: flags, inputs, cells, quick checks
//   eval_cells.cpp   lockstep decoding of every cell: ppl and agree over texts, recall, cost
//   eval_tasks.cpp   inputs: the default texts, recall tasks (make, prompt)
//   eval_jsonl.cpp   the recall tasks' JSONL files (parse, write)
//   eval_report.cpp  results.csv, results.json, summary.md with the pair table; --from
//   eval_plots.cpp   the SVG charts and the picture of one compression event (--plot-event)
#pragma once

#include <unistd.h>

#include <chrono>
#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "runtime/model/llama.h"
#include "tools/cli/generate.h"

namespace amskv {
namespace eval {

using cli::error;
using cli::kRuntime;
using cli::kUsage;

struct Options {
  std::string model = cli::default_model(), out = "eval-out", recall_file, plot_event, from;
  std::string plot_policy;  // --plot-event's: the user's first --policy, else the default
  std::vector<std::string> texts, policies = cli::frontier_policies(), budgets = {"0.1", "0.25"};
  std::vector<std::string> tasks = {"ppl", "recall", "agree"};
  bool ppl = true, recall = true, agree = true, quick = false;
  long ctx = 2048, agree_tokens = 64, facts = 16, recall_tasks = 4, cost_tokens = 64;
  long threads = cli::default_threads(), seed = 1, layer = -1;
  // --kv-dtype: the first is the reference (the full cache, the bytes budget fractions are
  // of); every policy runs in each. A policy written p@dtype runs in that dtype only.
  std::vector<std::string> dtype_names = {"f16", "q8", "k8v4", "q4"};
  amskv_dtype dtype = AMSKV_F16;  // the reference
  std::vector<amskv_dtype> dtypes = {AMSKV_F16};
};

// "ams:tova@q4" -> "ams:tova" and AMSKV_Q4; a label without '@' keeps `ref`. False when the
// part after '@' is not a dtype.
bool split_dtype(const std::string& label, amskv_dtype ref, std::string* policy,
                 amskv_dtype* dtype);

// What eval needs to know of each KV dtype, one row per amskv_dtype in enum order: its rank
// by bytes an element (fewer bytes, higher rank; equal bytes, equal rank: at equal bytes a
// higher rank holds more tokens) and its dash pattern in the frontier plot. NULL for a value
// that is not a dtype.
struct DtypeLook {
  int rank;
  const char* dash;
};
const DtypeLook* dtype_look(amskv_dtype dtype);

// ---------------------------------------------------------------- inputs (eval_tasks.cpp)

// Default data, those found on this machine: the texts of ppl and agree (two of prose, two of
// code, each of another source), the code text of `amskv bench` ("" if none), and the
// fillers of generated recall tasks (their tasks alternate between them).
std::vector<std::string> default_texts();
std::string default_code();
std::vector<std::string> default_fillers();
std::vector<std::string> default_code_fillers();  // of the code task: Python, then C++

std::string base_name(const std::string& path);
// The JSON record of an input file in results.json: its use, path, size and FNV-1a hash.
std::string data_record(const std::string& use, const std::string& path, const std::string& bytes);

struct Fact {
  int piece = 0;
  long offset = -1;  // byte offset in its piece where the fact goes; -1: near the middle
  std::string text, question, answer;
};

// A task of recall's family: a prompt of pieces with facts in them, then questions whose
// greedy answers are scored by exact match. Its kind says which task made it: recall (facts
// in prose), recall_q (the same with the keys named before the context: question-aware),
// chat (facts in early turns of the model's chat template, unrelated turns after them) or
// code (definitions early in a source file, a later line that reuses a value).
struct RecallTask {
  std::string id, kind = "recall";
  std::vector<std::string> pieces;
  std::vector<Fact> facts;
  std::string sep = "\n\n";   // between pieces
  std::string qsep = "\n\n";  // before each question
  bool special = false;       // the text holds special tokens (the chat template's)
};

// The kinds of recall's family, in report order.
extern const char* const kRecallKinds[4];

// A JSONL task file (docs/eval.md); false + err naming the file and line. parse_recall
// takes the file's text (eval_jsonl.cpp), load_recall reads it first.
bool parse_recall(const std::string& text, const std::string& path, std::vector<RecallTask>* out,
                  std::string* err);
bool load_recall(const std::string& path, std::vector<RecallTask>* out, std::string* err);
std::string task_json(const RecallTask& t);  // one line of such a file
// Tasks from any text: n_tasks prompts of about ctx tokens with n_facts facts each.
std::vector<RecallTask> make_recall(const Tokenizer& tok, const std::string& text,
                                    const std::string& name, int ctx, int n_facts, int n_tasks,
                                    uint64_t seed);
// The same tasks of another kind (kRecallKinds): recall_q from recall's; chat needs the
// model's chat format; code cuts its filler from `text` as source code (Python when `name`
// ends in .py, else C++). Empty with *err set when the kind cannot be made.
std::vector<RecallTask> make_tasks(const std::string& kind, const Tokenizer& tok,
                                   const ChatFormat* chat, const std::string& text,
                                   const std::string& name, int ctx, int n_facts, int n_tasks,
                                   uint64_t seed, std::string* err);
// The prompt: pieces joined by blank lines, each fact inside its piece.
std::string recall_prompt(const RecallTask& t);
// The greedy text starts with the answer and does not go on with more of the same word.
bool answer_matches(const std::string& gen, const std::string& answer);

// ---------------------------------------------------------------- cells (eval_cells.cpp)

constexpr int kNllBlock = 64;  // tokens per block of the NLL's block bootstrap

struct Cell {
  std::string policy;  // the label: as the user wrote it, @dtype unless the reference's
  amskv_dtype dtype = AMSKV_F16;
  bool whole = false;        // its budget holds the whole input in its dtype (full, full@q4)
  std::string budget_label;  // "0.25", "4MiB", or "ctx" for the full cache
  double fraction = 0;       // of the full cache's bytes at --ctx; 0: a size
  size_t budget = 0;         // bytes every session of the cell gets
  bool full = false;
  // Session facts (from the first stream).
  int capacity = 0;
  std::string ea_cov;  // expected_attention: "full" or "diag", the statistics its budget held
  size_t session_bytes = 0;
  bool failed = false;
  std::string error;
  // Sums and counts (doubles, so a report read back from results.json keeps its means).
  // ppl
  double nll = 0, nll_q[4] = {0, 0, 0, 0};
  double nll_n = 0, nll_qn[4] = {0, 0, 0, 0};
  // Mean NLL of each block of kNllBlock predicted tokens, texts in order (block bootstrap).
  std::vector<double> nll_blocks;
  // agree
  double agree_n = 0, agree_match = 0, first_div = 0, agree_docs = 0;
  double kl = 0;
  // recall
  double recall_n = 0, recall_hit = 0;
  // Per fact, in the same order in every cell (for paired intervals): answered chained (each
  // question after the ones before it) and fresh (alone, on a copy of the post-prompt cache).
  std::vector<char> recall_hits, fresh_hits;
  std::vector<double> region_n, region_hit;
  // block survival after each recall prompt, over facts x global layers x KV heads: the
  // share of those that hold every token of the fact, and the share that hold none
  double block_n = 0, block_kept = 0, block_lost = 0;
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
  double fresh_acc() const {
    if (fresh_hits.empty()) return NAN;
    double h = 0;
    for (char x : fresh_hits) h += x;
    return h / (double)fresh_hits.size();
  }
  double kept_rate() const { return block_n ? block_kept / block_n : NAN; }
  double lost_rate() const { return block_n ? block_lost / block_n : NAN; }
  double wipe_rate() const { return wipe_segments ? wiped / wipe_segments : 0.0; }
};

struct Eval {
  const Options& o;
  const LlamaModel& m;
  std::vector<Cell> cells;
  int full_cell = -1;
  std::vector<std::string> checks_failed;
  std::vector<std::string> fact_kinds;  // the task kind of each fact, in Cell.*_hits order
  double minutes = 0;                   // of the run
  size_t peak_rss = 0;                  // of the run's process
  long steps_done = 0, steps_total = 0;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now(), last_print = t0;
  bool tty = isatty(2);

  Eval(const Options& opt, const LlamaModel& model) : o(opt), m(model) {}

  // The session policy string: a top-k policy gets the run's seed unless it has one (only
  // the random scorer reads it).
  std::string session_policy(const Cell& c) const;
  // One step done; a progress line on stderr now and then.
  void progress(const std::string& what, long done, long total, double tps);
};

// ppl and agree on one text: teacher-forced text tokens, then the full cache's greedy
// continuation fed to every cell. Records per-step NLL into `trace` (for the
// reproducibility check) when it is not null.
bool run_text(Eval& ev, const std::vector<int32_t>& text, const std::string& name,
              std::vector<double>* trace, std::string* err);
bool run_recall(Eval& ev, const RecallTask& task, std::string* err);
// Each cell alone: prefill the first ctx - cost tokens of the text, then time `cost`
// teacher-forced decode steps.
void run_cost(Eval& ev, const std::vector<int32_t>& text);

// ---------------------------------------------------------------- report (eval_report.cpp)

std::string num(double v, const char* f = "%.4f");  // "" for NaN
bool write_file(const std::string& path, const std::string& s);
const Cell* full_cell(const Eval& ev);

// What every table and chart compares, against the full cache's cell f (may be null).
struct Metric {
  const char* name;
  double (*get)(const Cell& c, const Cell* f);
  bool lower_better;
  const char* fmt;
};
extern const Metric kGap, kRecall, kFresh, kMatch, kKl, kWipe, kBlockKept, kBlockLost;

// A finished run back from its results.json (amskv eval --from).
bool load_results(const std::string& path, Options* o, std::vector<Cell>* cells,
                  std::vector<std::string>* data, std::vector<std::string>* fact_kinds,
                  double* minutes, size_t* rss, std::string* err);
// summary.md (returned in md_out too), results.csv, results.json and the plots in --out.
bool write_report(const Eval& ev, const std::vector<std::string>& data, std::string* md_out);

// ---------------------------------------------------------------- plots (eval_plots.cpp)

// The SVG charts of the tasks run, into --out.
bool write_plots(const Eval& ev);
// --plot-event: one compression event of an ams: policy and of its global top-k twin.
int plot_event(const Options& o, const LlamaModel& m, const std::vector<int32_t>& text,
               size_t budget);

}  // namespace eval
}  // namespace amskv
