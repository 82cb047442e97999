// amskv eval, the command: its flags, the inputs and cells of a run, the run, and in --quick
// mode the checks of what must always hold. The work is in eval_cells.cpp; eval.h lists the
// other files.
#include "tools/cli/eval.h"

#include <sys/stat.h>

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tools/cli/flags.h"
#include "tools/cli/generate.h"
#include "tools/json.h"

namespace amskv {
namespace eval {
namespace {

// Budgets: fractions of the bytes the full cache needs for --ctx tokens (every policy then
// gets the same bytes), or sizes.
struct Budget {
  std::string label;
  double fraction = 0;
  size_t bytes = 0;
};

// What --quick leaves of the defaults the user did not change.
void quick_settings(bool policies_given, bool budgets_given, bool dtypes_given, Options* o) {
  if (!policies_given) o->policies = cli::quick_policies();
  if (!dtypes_given) o->dtype_names = {"f16"}, o->dtypes = {AMSKV_F16};
  if (!budgets_given) o->budgets = {"0.25", "0.5"};
  o->ctx = std::min(o->ctx, 512L);
  o->agree_tokens = std::min(o->agree_tokens, 16L);
  o->facts = std::min(o->facts, 4L);
  o->recall_tasks = 1;
  o->cost_tokens = std::min(o->cost_tokens, 16L);
  // The default AMS policy in the smaller dtypes too: their capacities are checked.
  if (!policies_given) {
    for (const char* dt : {"q8", "q4"}) o->policies.push_back(cli::default_policy() + "@" + dt);
    o->policies.push_back(cli::default_policy() + ",apart=1");  // a variant
  }
}

// The report of a finished run, without the model.
// Several runs of the same inputs (--from a.json,b.json) merge: a later run's cell replaces an
// earlier one of the same label and budget, the others join; minutes add up.
int report_from(Options& o) {
  std::vector<Cell> cells;
  std::vector<std::string> data, kinds;
  double minutes = 0;
  size_t rss = 0;
  std::string err;
  std::vector<std::string> files;
  cli::split(o.from, ',', &files);
  for (size_t i = 0; i < files.size(); ++i) {
    std::vector<Cell> more;
    std::vector<std::string> more_data, more_kinds;
    double more_min = 0;
    size_t more_rss = 0;
    if (!load_results(files[i], &o, &more, &more_data, &more_kinds, &more_min, &more_rss, &err))
      return error(kUsage, err);
    // (a run written before fact kinds were kept has none: its facts are all recall's)
    const bool kinds_match = more_kinds == kinds || more_kinds.empty() || kinds.empty();
    if (i > 0 && (more_data != data || !kinds_match))
      return error(kUsage, "--from: " + files[i] + " ran on other inputs than " + files[0]);
    for (const Cell& c : more) {
      auto same = [&](const Cell& x) {
        return x.policy == c.policy && x.budget_label == c.budget_label;
      };
      auto it = std::find_if(cells.begin(), cells.end(), same);
      if (it != cells.end())
        *it = c;
      else
        cells.push_back(c);
    }
    data = more_data;
    if (!more_kinds.empty()) kinds = more_kinds;
    minutes += more_min, rss = std::max(rss, more_rss);
  }
  static const LlamaModel none;
  Eval ev(o, none);
  ev.cells = cells;
  ev.fact_kinds = kinds;
  for (size_t i = 0; i < cells.size(); ++i)
    if (cells[i].full) ev.full_cell = (int)i;
  ev.minutes = minutes, ev.peak_rss = rss;
  mkdir(o.out.c_str(), 0755);
  std::string md;
  if (!write_report(ev, data, &md)) return error(kRuntime, "cannot write results to " + o.out);
  std::fputs(md.c_str(), stdout);
  return 0;
}

// Quick mode: the first text again on fresh sessions gives the same numbers bit for bit (the
// random policy included, with the same seed); no cell agrees with the full cache better
// than the full cache; every evicting cell evicted and kept to its budget.
bool quick_checks(Eval& ev, const std::vector<int32_t>& text, const std::string& name,
                  const std::vector<double>& trace1, std::string* err) {
  const Options& o = ev.o;
  if (!trace1.empty()) {
    Eval again(o, ev.m);
    for (const Cell& c : ev.cells) {  // the same cells with no results yet
      Cell fresh;
      fresh.policy = c.policy, fresh.budget_label = c.budget_label, fresh.fraction = c.fraction;
      fresh.dtype = c.dtype, fresh.whole = c.whole;
      fresh.budget = c.budget, fresh.full = c.full, fresh.failed = c.failed, fresh.error = c.error;
      again.cells.push_back(fresh);
    }
    again.steps_total = ev.steps_total, again.steps_done = ev.steps_done;
    std::vector<double> trace2;
    if (!run_text(again, text, name + " again", &trace2, err)) return false;
    if (trace1 != trace2) ev.checks_failed.push_back("a second run of the same text differs");
  }
  const Cell* f = full_cell(ev);
  for (const Cell& c : ev.cells) {
    const std::string at = c.policy + " at " + c.budget_label;
    if (c.failed) {
      ev.checks_failed.push_back(at + " failed: " + c.error);
      continue;
    }
    if (f && o.agree && !(c.match_rate() <= f->match_rate() && c.mean_kl() >= f->mean_kl()))
      ev.checks_failed.push_back(at + " agrees with the full cache better than the full cache");
    // (a small dtype may hold the whole input at a fraction of the reference's bytes)
    if (!c.whole && c.fraction > 0 && c.fraction < 1 && c.events == 0 && f &&
        c.capacity < f->capacity)
      ev.checks_failed.push_back(at + " never evicted");
    if (c.session_bytes > c.budget && !c.whole)
      ev.checks_failed.push_back(at + " took more bytes than its budget");
    // At equal bytes a smaller dtype holds more tokens: f32 < f16 < q8 < k8v4 < q4 = q4h.
    std::string pol, other_pol;
    amskv_dtype dt, other_dt;
    split_dtype(c.policy, c.dtype, &pol, &dt);
    for (const Cell& d : ev.cells) {
      split_dtype(d.policy, d.dtype, &other_pol, &other_dt);
      if (d.failed || c.whole || d.whole || other_pol != pol || d.budget_label != c.budget_label ||
          dtype_look(d.dtype)->rank <= dtype_look(c.dtype)->rank)
        continue;
      if (!(d.capacity > c.capacity))
        ev.checks_failed.push_back(d.policy + " holds " + std::to_string(d.capacity) +
                                   " tokens, not more than " + c.policy + "'s " +
                                   std::to_string(c.capacity) + " at " + c.budget_label);
    }
  }
  if (f && o.recall && !(f->kept_rate() == 1.0 && f->lost_rate() == 0.0))
    ev.checks_failed.push_back("the full cache does not hold every token of every fact");
  if (f && o.agree && !(f->match_rate() == 1.0 && f->mean_kl() == 0.0))
    ev.checks_failed.push_back("the full cache disagrees with itself");
  return true;
}

}  // namespace
}  // namespace eval

namespace cli {

int cmd_eval(int argc, char** argv) {
  using namespace eval;
  Options o;
  bool policies_given = false, budgets_given = false, dtypes_given = false;
  const std::vector<std::string> default_text_paths = default_texts(), fillers = default_fillers(),
                                 code_fillers = default_code_fillers();
  std::string texts_default, fillers_named;
  for (const std::string& p : default_text_paths)
    texts_default += (texts_default.empty() ? "" : " ") + p;
  for (const std::string& p : fillers) fillers_named += (fillers_named.empty() ? "" : " and ") + p;
  const std::string recall_default = "generated from " + (fillers.empty() ? "?" : fillers_named) +
                                     ", written to OUT/recall_tasks.jsonl";
  Spec spec{
      "eval",
      "[options]",
      "  Every policy at the same KV budgets on the same inputs (docs/results.md), in one\n"
      "  model pass: ppl, recall and agree, then the decode cost of each cell.\n",
      {only(
           list_flag("--task", "LIST",
                     "tasks to run: ppl, agree, and recall's family (recall, recall_q, chat, code; "
                     "docs/eval.md)",
                     &o.tasks, ','),
           "ppl recall recall_q chat code agree"),
       shown_as(list_flag("--text", "FILE", "a text for ppl and agree (repeat)", &o.texts, 0),
                texts_default.c_str()),
       shown_as(
           string_flag("--recall", "FILE", "recall tasks, JSONL (docs/eval.md)", &o.recall_file),
           recall_default.c_str()),
       policies_flag(&o.policies,
                     "a policy to evaluate (all, or all@DTYPE: every scorer as top-k and ams:, and "
                     "the AMS ablations and variants)",
                     &policies_given),
       list_flag("--budgets", "LIST",
                 "fractions of the full cache's bytes at --ctx, or sizes (4MiB)", &o.budgets, ',',
                 &budgets_given),
       long_flag("--ctx", "N", "context tokens: texts are cut to N, recall prompts built to N",
                 &o.ctx, 256, 1 << 20),
       long_flag("--agree-tokens", "N", "greedy tokens of the full cache compared after each text",
                 &o.agree_tokens, 1, 4096),
       long_flag("--facts", "N", "facts per generated recall task", &o.facts, 1, 64),
       long_flag("--recall-tasks", "N", "generated recall tasks", &o.recall_tasks, 1, 1000),
       long_flag("--cost-tokens", "N", "decode steps timed per cell after a prefill, 0 = skip",
                 &o.cost_tokens, 0, 1 << 20),
       string_flag("--out", "DIR", "results.csv, results.json, summary.md and SVG plots", &o.out),
       switch_flag("--quick", "CI mode: small run plus checks of what must always hold", &o.quick),
       string_flag("--plot-event", "FILE",
                   "instead: draw one compression event of the first --policy and of its global "
                   "top-k twin at one --budgets value on the first text",
                   &o.plot_event),
       shown_as(long_flag("--layer", "L", "the layer --plot-event draws", &o.layer, 0, 4096),
                "the middle layer"),
       string_flag("--from", "FILE[,FILE]",
                   "instead: rewrite the report and plots of a finished run from its results.json "
                   "into --out; runs of the same inputs merge, a later one's cells replacing the "
                   "same cells of an earlier one",
                   &o.from),
       seed_flag(&o.seed, "seed of the random scorer and of the generated recall tasks"),
       list_flag(
           "--kv-dtype", "LIST",
           "KV storage types (f32, f16, q8, q4, k8v4, q4h): every policy in each; the first is "
           "the reference, whose full cache budget fractions are of",
           &o.dtype_names, ',', &dtypes_given),
       threads_flag(&o.threads), model_flag(&o.model)}};
  int rc;
  if (!parse(argc, argv, spec, &rc)) return rc;
  auto has = [&](const char* task) {
    return std::find(o.tasks.begin(), o.tasks.end(), task) != o.tasks.end();
  };
  o.ppl = has("ppl"), o.agree = has("agree");
  std::vector<std::string> kinds;  // of recall's family, in report order
  for (const char* k : kRecallKinds)
    if (has(k)) kinds.push_back(k);
  o.recall = !kinds.empty();
  o.dtypes.clear();
  for (const std::string& n : o.dtype_names) {
    amskv_dtype dt;
    if (amskv_dtype_from_name(n.c_str(), &dt) != AMSKV_OK)
      return error(kUsage,
                   "--kv-dtype: unknown KV dtype '" + n + "' (f32, f16, q8, q4, k8v4, q4h)");
    o.dtypes.push_back(dt);
  }
  if (o.dtypes.empty()) return error(kUsage, "--kv-dtype: give at least one dtype");
  o.dtype = o.dtypes[0];
  o.plot_policy = policies_given ? o.policies[0] : default_policy();
  if (o.quick) quick_settings(policies_given, budgets_given, dtypes_given, &o);
  {  // --policy all[@dtype]: every scorer both ways and the AMS ablations, in place
    std::vector<std::string> expanded;
    for (const std::string& p : o.policies) {
      const bool all = p == "all" || p.rfind("all@", 0) == 0;
      for (std::string q : all ? eval_policies() : std::vector<std::string>{p}) {
        if (all && p.size() > 3) q += p.substr(3);  // "@dtype"
        if (std::find(expanded.begin(), expanded.end(), q) == expanded.end()) expanded.push_back(q);
      }
    }
    o.policies = expanded;
  }
  if (!o.from.empty()) return report_from(o);

  LlamaModel m;
  if (int e = load_model(o.model, &m)) return e;

  // Texts: the user's, or the default prose and code.
  std::vector<std::string> text_paths = o.texts;
  if (text_paths.empty()) {
    text_paths = default_text_paths;
    if (o.quick && text_paths.size() > 1) text_paths.resize(1);
  }
  if (text_paths.empty() && (o.ppl || o.agree || !o.plot_event.empty()))
    return error(kRuntime, "no default text found; give --text FILE");
  std::vector<std::vector<int32_t>> texts;
  std::vector<std::string> data;  // JSON records of the inputs
  for (const std::string& p : text_paths) {
    std::string bytes;
    if (!read_file(p, &bytes)) return error(kRuntime, "cannot read text '" + p + "'");
    std::vector<int32_t> ids;
    tokenize(m.tok, bytes, m.tok.add_bos_token, false, &ids);  // as the model was trained
    if ((long)ids.size() < o.ctx)
      return error(kUsage, "text '" + p + "' has " + std::to_string(ids.size()) +
                               " tokens, fewer than --ctx " + std::to_string(o.ctx));
    ids.resize(o.ctx);
    texts.push_back(ids);
    data.push_back(data_record("text", p, bytes));
  }

  std::vector<Budget> budgets;
  for (const std::string& b : o.budgets) {
    Budget x;
    x.label = b;
    float f;
    if (parse_float(b, 1e-4f, 1.f, &f)) {
      x.fraction = f;
      x.bytes = (size_t)(f * (double)full_cache_bytes(m, o.dtype, (int)o.ctx));
    } else if (!parse_size(b, &x.bytes)) {
      return error(kUsage, "bad budget '" + b + "': a fraction in (0, 1] or a size like 4MiB");
    }
    budgets.push_back(x);
  }

  if (!o.plot_event.empty()) {
    if (budgets.size() != 1) return error(kUsage, "--plot-event takes one value in --budgets");
    return plot_event(o, m, texts[0], budgets[0].bytes);
  }

  Eval ev(o, m);
  {
    Cell full;
    full.policy = kFull, full.budget_label = "ctx", full.full = full.whole = true;
    full.dtype = o.dtype;
    ev.cells.push_back(full);
    ev.full_cell = 0;
  }
  // Every (policy, dtype): p@dt as given, else p in each --kv-dtype. The label names the
  // dtype unless it is the reference.
  std::vector<std::pair<std::string, amskv_dtype>> runs;
  for (const std::string& p : o.policies) {
    std::string pol;
    amskv_dtype dt;
    if (!split_dtype(p, o.dtype, &pol, &dt))
      return error(kUsage, "policy '" + p + "': unknown KV dtype after '@'");
    if (p.find('@') != std::string::npos)
      runs.push_back({pol, dt});
    else
      for (amskv_dtype d : o.dtypes) runs.push_back({pol, d});
  }
  auto label = [&](const std::string& pol, amskv_dtype dt) {
    return dt == o.dtype ? pol : pol + "@" + amskv_dtype_name(dt);
  };
  for (const auto& [pol, dt] : runs)  // the full cache in another dtype: its own bytes
    if (pol == kFull && dt != o.dtype) {
      Cell c;
      c.policy = label(pol, dt), c.budget_label = "ctx", c.whole = true, c.dtype = dt;
      c.fraction =
          (double)full_cache_bytes(m, dt, (int)o.ctx) / full_cache_bytes(m, o.dtype, (int)o.ctx);
      ev.cells.push_back(c);
    }
  for (const Budget& b : budgets)
    for (const auto& [pol, dt] : runs) {
      if (pol == kFull) continue;
      Cell c;
      c.policy = label(pol, dt), c.dtype = dt;
      c.budget_label = b.label, c.fraction = b.fraction, c.budget = b.bytes;
      // Refuse bad policy strings before any work.
      const amskv_config cfg = llama_session_config(m, dt, pol.c_str(), 1);
      if (amskv_session_bytes(&cfg, (size_t)1 << 30) == 0)
        return error(kUsage, "policy '" + pol + "': " + amskv_last_error(nullptr));
      if (amskv_session_bytes(&cfg, b.bytes) == 0)
        c.failed = true, c.error = "budget too small for its state";
      ev.cells.push_back(c);
    }

  // Recall tasks: the user's file, or generated from a text on the machine.
  std::vector<RecallTask> recall;
  std::string err;
  if (o.recall) {
    if (!o.recall_file.empty()) {
      if (!load_recall(o.recall_file, &recall, &err)) return error(kUsage, err);
      data.push_back("{\"use\": \"recall\", \"path\": " + json::quote(o.recall_file) + "}");
    } else {
      // --recall-tasks of each kind; they alternate between the fillers (the first, third,
      // ... from the first one): prose, and for code the code texts.
      for (const std::string& kind : kinds) {
        const std::vector<std::string> from = kind == "code" ? code_fillers : fillers;
        const size_t n_fill = std::min(from.size(), (size_t)o.recall_tasks);
        if (n_fill == 0)
          return error(kRuntime, "no default filler text for " + kind + "; give --recall FILE");
        for (size_t f = 0; f < n_fill; ++f) {
          std::string bytes;
          if (!read_file(from[f], &bytes))
            return error(kRuntime, "cannot read filler text '" + from[f] + "'");
          const int n_tasks = (int)((o.recall_tasks - f + n_fill - 1) / n_fill);
          for (RecallTask& t :
               make_tasks(kind, m.tok, m.chat, bytes, base_name(from[f]), (int)o.ctx, (int)o.facts,
                          n_tasks, (uint64_t)o.seed + f, &err))
            recall.push_back(t);
          if (!err.empty()) return error(kUsage, "--task " + kind + ": " + err);
          data.push_back(data_record(kind + " filler", from[f], bytes));
        }
      }
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
  if (o.quick && !quick_checks(ev, texts.empty() ? std::vector<int32_t>() : texts[0],
                               text_paths.empty() ? "" : base_name(text_paths[0]), trace1, &err))
    return error(kRuntime, err);

  const double minutes = seconds_since(t_start) / 60;
  ev.minutes = minutes;
  ev.peak_rss = peak_rss_bytes();
  std::string md;
  if (!write_report(ev, data, &md)) return error(kRuntime, "cannot write results to " + o.out);
  std::fputs(md.c_str(), stdout);
  std::fprintf(stderr, "eval: results in %s (%.1f min)\n", o.out.c_str(), minutes);
  const char* what = o.quick ? "CHECK FAILED" : "WARNING";
  for (const std::string& c : ev.checks_failed)
    std::fprintf(stderr, "eval: %s: %s\n", what, c.c_str());
  if (!ev.checks_failed.empty()) return kRuntime;
  if (o.quick)
    std::fprintf(stderr,
                 "eval: quick checks passed (agreement ordering, reproducibility, budgets)\n");
  return 0;
}

}  // namespace cli
}  // namespace amskv
