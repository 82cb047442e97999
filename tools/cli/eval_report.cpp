// amskv eval's report: results.csv, results.json and summary.md (the table of every cell
// and the AMS against top-k pair table), and the same cells read back from results.json
// (amskv eval --from).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <iterator>

#include "tools/cli/eval.h"
#include "tools/json.h"

namespace amskv {
namespace eval {

const Metric kGap = {
    "NLL gap", [](const Cell& c, const Cell* f) { return f ? c.mean_nll() - f->mean_nll() : NAN; },
    true, "%+.3f"};
const Metric kRecall = {"recall", [](const Cell& c, const Cell*) { return c.recall_acc(); }, false,
                        "%.2f"};
const Metric kFresh = {"recall fresh", [](const Cell& c, const Cell*) { return c.fresh_acc(); },
                       false, "%.2f"};
const Metric kBlockKept = {"block kept", [](const Cell& c, const Cell*) { return c.kept_rate(); },
                           false, "%.3f"};
const Metric kBlockLost = {"block lost", [](const Cell& c, const Cell*) { return c.lost_rate(); },
                           true, "%.3f"};
const Metric kMatch = {"agree match", [](const Cell& c, const Cell*) { return c.match_rate(); },
                       false, "%.3f"};
const Metric kKl = {"KL", [](const Cell& c, const Cell*) { return c.mean_kl(); }, true, "%.4f"};
const Metric kWipe = {"wipe-out", [](const Cell& c, const Cell*) { return c.wipe_rate(); }, true,
                      "%.3f"};

std::string num(double v, const char* f) {
  if (std::isnan(v)) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
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

namespace {

std::string jnum(double v) {
  if (std::isnan(v) || std::isinf(v)) return "null";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

// 95% interval of mean(a - b) (b empty: of mean(a)) from 2000 bootstrap resamples of the
// paired units (NLL: blocks of kNllBlock tokens; recall: facts), a fixed seed so reports are
// reproducible. NaN when there is nothing to resample or the units do not pair.
struct Interval {
  double mean = NAN, lo = NAN, hi = NAN;
};
Interval bootstrap(const std::vector<double>& a, const std::vector<double>& b) {
  Interval r;
  const size_t n = a.size();
  if (n == 0 || (!b.empty() && b.size() != n)) return r;
  std::vector<double> d(n);
  double sum = 0;
  for (size_t i = 0; i < n; ++i) sum += d[i] = a[i] - (b.empty() ? 0 : b[i]);
  r.mean = sum / n;
  constexpr int kResamples = 2000;
  std::vector<double> means(kResamples);
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (int k = 0; k < kResamples; ++k) {
    double t = 0;
    for (size_t i = 0; i < n; ++i) {
      x += 0x9e3779b97f4a7c15ull;  // splitmix64
      uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
      t += d[(z ^ (z >> 31)) % n];
    }
    means[k] = t / n;
  }
  std::sort(means.begin(), means.end());
  r.lo = means[kResamples / 40], r.hi = means[kResamples - 1 - kResamples / 40];
  return r;
}
std::vector<double> as_doubles(const std::vector<char>& v) {
  return std::vector<double>(v.begin(), v.end());
}
std::string with_ci(const Interval& i, const char* f) {
  if (std::isnan(i.mean)) return "";
  return num(i.mean, f) + " [" + num(i.lo, f) + ", " + num(i.hi, f) + "]";
}

// The budget labels in the order of the cells, the full cache's "ctx" only when asked.
std::vector<std::string> budget_labels(const Eval& ev, bool with_full) {
  std::vector<std::string> labels;
  for (const Cell& c : ev.cells)
    if ((with_full || !c.full) &&
        std::find(labels.begin(), labels.end(), c.budget_label) == labels.end())
      labels.push_back(c.budget_label);
  return labels;
}

std::string csv(const Eval& ev) {
  std::string o =
      "policy,budget,fraction,budget_bytes,session_bytes,capacity,nll,nll_gap,nll_q1,nll_q2,"
      "nll_q3,nll_q4,recall,recall_fresh,block_kept,block_lost,agree_match,agree_first_div,agree_"
      "kl,events,wipe_rate,"
      "prefill_tps,decode_tps,error\n";
  const Cell* f = full_cell(ev);
  for (const Cell& c : ev.cells) {
    o += "\"" + c.policy + "\"," + c.budget_label + "," + num(c.fraction) + "," +
         std::to_string(c.budget) + "," + std::to_string(c.session_bytes) + "," +
         std::to_string(c.capacity) + "," + num(c.mean_nll()) + "," +
         num(f ? c.mean_nll() - f->mean_nll() : NAN) + ",";
    for (int q = 0; q < 4; ++q) o += num(c.nll_qn[q] ? c.nll_q[q] / c.nll_qn[q] : NAN) + ",";
    o += num(c.recall_acc()) + "," + num(c.fresh_acc()) + "," + num(c.kept_rate()) + "," +
         num(c.lost_rate()) + "," + num(c.match_rate()) + "," + num(c.mean_first_div(), "%.1f") +
         "," + num(c.mean_kl(), "%.5f") + "," + std::to_string(c.events) + "," +
         num(c.wipe_rate()) + "," + num(c.prefill_tps, "%.1f") + "," + num(c.decode_tps, "%.1f") +
         ",\"" + c.error + "\"\n";
  }
  return o;
}

std::string results_json(const Eval& ev, const std::vector<std::string>& data) {
  std::string o =
      "{\n  \"model\": " + json::quote(ev.o.model) + ",\n  \"ctx\": " + std::to_string(ev.o.ctx) +
      ",\n  \"agree_tokens\": " + std::to_string(ev.o.agree_tokens) +
      ",\n  \"seed\": " + std::to_string(ev.o.seed) +
      ",\n  \"threads\": " + std::to_string(ev.o.threads) + ",\n  \"kv_dtype\": \"" +
      amskv_dtype_name(ev.o.dtype) + "\",\n  \"peak_rss_bytes\": " + std::to_string(ev.peak_rss) +
      ",\n  \"minutes\": " + jnum(ev.minutes) + ",\n  \"fact_kinds\": [";
  for (size_t i = 0; i < ev.fact_kinds.size(); ++i)
    o += (i ? ", " : "") + json::quote(ev.fact_kinds[i]);
  o += "],\n  \"data\": [";
  for (size_t i = 0; i < data.size(); ++i) o += (i ? ", " : "") + data[i];
  o += "],\n  \"cells\": [\n";
  for (size_t i = 0; i < ev.cells.size(); ++i) {
    const Cell& c = ev.cells[i];
    o += "    {\"policy\": " + json::quote(c.policy) +
         ", \"budget\": " + json::quote(c.budget_label) + ", \"fraction\": " + jnum(c.fraction) +
         ", \"budget_bytes\": " + std::to_string(c.budget) +
         ", \"session_bytes\": " + std::to_string(c.session_bytes) +
         ", \"capacity\": " + std::to_string(c.capacity) +
         (c.ea_cov.empty() ? "" : ", \"ea_cov\": " + json::quote(c.ea_cov)) +
         ", \"nll\": " + jnum(c.mean_nll()) + ", \"nll_quarters\": [";
    for (int q = 0; q < 4; ++q)
      o += (q ? ", " : "") + jnum(c.nll_qn[q] ? c.nll_q[q] / c.nll_qn[q] : NAN);
    auto bits = [](const std::vector<char>& v) {
      std::string b = "\"";
      for (char x : v) b += x ? '1' : '0';
      return b + "\"";
    };
    o += "], \"recall\": " + jnum(c.recall_acc()) + ", \"recall_fresh\": " + jnum(c.fresh_acc()) +
         ", \"recall_hits\": " + bits(c.recall_hits) + ", \"fresh_hits\": " + bits(c.fresh_hits) +
         ", \"nll_blocks\": [";
    for (size_t b = 0; b < c.nll_blocks.size(); ++b) o += (b ? ", " : "") + jnum(c.nll_blocks[b]);
    o += "], \"recall_by_region\": [";
    for (size_t r = 0; r < c.region_n.size(); ++r)
      o += (r ? ", " : "") + jnum(c.region_n[r] ? (double)c.region_hit[r] / c.region_n[r] : NAN);
    o += "], \"agree_match\": " + jnum(c.match_rate()) +
         ", \"agree_first_div\": " + jnum(c.mean_first_div()) +
         ", \"agree_kl\": " + jnum(c.mean_kl()) + ", \"events\": " + std::to_string(c.events) +
         ", \"wipe_rate\": " + jnum(c.wipe_rate()) + ", \"block_kept\": " + jnum(c.kept_rate()) +
         ", \"block_lost\": " + jnum(c.lost_rate()) +
         ", \"prefill_tps\": " + jnum(c.prefill_tps < 0 ? NAN : c.prefill_tps) +
         ", \"decode_tps\": " + jnum(c.decode_tps < 0 ? NAN : c.decode_tps) +
         ", \"error\": " + json::quote(c.error) + "}" + (i + 1 < ev.cells.size() ? ",\n" : "\n");
  }
  return o + "  ]\n}\n";
}

std::string markdown(const Eval& ev) {
  const Cell* f = full_cell(ev);
  std::string o =
      "| policy | budget | capacity | NLL | gap to full [95%] | recall [95%] | recall fresh [95%] "
      "| block kept | block lost | agree match | first div | KL | wipe-out | events | decode tok/s "
      "|\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  for (const std::string& b : budget_labels(ev, true))
    for (const Cell& c : ev.cells) {
      if (c.budget_label != b) continue;
      if (c.failed) {
        o += "| " + c.policy + " | " + b + " | - | " + c.error + " ||||||||||||\n";
        continue;
      }
      o += "| " + c.policy + " | " + b + " | " + std::to_string(c.capacity) +
           (c.ea_cov.empty() ? "" : " (" + c.ea_cov + ")") + " | " + num(c.mean_nll(), "%.3f") +
           " | " +
           (f && &c != f && !c.nll_blocks.empty()
                ? with_ci(bootstrap(c.nll_blocks, f->nll_blocks), "%+.3f")
                : num(f ? c.mean_nll() - f->mean_nll() : NAN, "%+.3f")) +
           " | " + with_ci(bootstrap(as_doubles(c.recall_hits), {}), "%.2f") + " | " +
           with_ci(bootstrap(as_doubles(c.fresh_hits), {}), "%.2f") + " | " +
           num(c.kept_rate(), "%.3f") + " | " + num(c.lost_rate(), "%.3f") + " | " +
           num(c.match_rate(), "%.3f") + " | " + num(c.mean_first_div(), "%.1f") + " | " +
           num(c.mean_kl(), "%.4f") + " | " + num(c.wipe_rate(), "%.3f") + " | " +
           std::to_string(c.events) + " | " + num(c.decode_tps < 0 ? NAN : c.decode_tps, "%.1f") +
           " |\n";
    }
  return o;
}

// AMS against global top-k with the same scorer at the same budget, pair by pair, and how
// many pairs each side wins on each metric.
std::string ams_vs_topk(const Eval& ev) {
  auto find = [&](const std::string& policy, const std::string& budget) -> const Cell* {
    for (const Cell& c : ev.cells)
      if (c.policy == policy && c.budget_label == budget && !c.failed) return &c;
    return nullptr;
  };
  const Cell* f = full_cell(ev);
  const Metric* const ms[] = {&kGap, &kRecall, &kFresh, &kMatch, &kKl, &kWipe, &kBlockLost};
  constexpr int kN = (int)std::size(ms);
  // The paired units of the first three metrics: a win needs the interval of the difference
  // to exclude zero. The others have no units kept: a win is a difference at the precision
  // shown.
  auto units = [](int k, const Cell& c) {
    return k == 0   ? c.nll_blocks
           : k == 1 ? as_doubles(c.recall_hits)
           : k == 2 ? as_doubles(c.fresh_hits)
                    : std::vector<double>();
  };
  int ams[kN] = {}, topk[kN] = {}, tie[kN] = {};
  std::string o = "| scorer | budget |";
  for (const Metric* m : ms) o += std::string(" ") + m->name + " top-k / ams |";
  o += "\n|---|---|";
  for (int k = 0; k < kN; ++k) o += "---|";
  o += "\n";
  const std::vector<std::string> labels = budget_labels(ev, false);
  std::vector<std::string> suffixes = {""};  // "@q4" etc.: pairs within each dtype
  for (const Cell& c : ev.cells) {
    const size_t at = c.policy.rfind('@');
    if (at != std::string::npos &&
        std::find(suffixes.begin(), suffixes.end(), c.policy.substr(at)) == suffixes.end())
      suffixes.push_back(c.policy.substr(at));
  }
  int pairs = 0;
  for (const std::string& suf : suffixes)
    for (const std::string& s : cli::importance_scorers())
      for (const std::string& b : labels) {
        const Cell *t = find(s + suf, b), *a = find("ams:" + s + suf, b);
        if (!t || !a) continue;
        ++pairs;
        o += "| " + s + suf + " | " + b + " |";
        for (int k = 0; k < kN; ++k) {
          const Metric& m = *ms[k];
          const double x = m.get(*t, f), y = m.get(*a, f);
          std::string tx = num(x, m.fmt), ty = num(y, m.fmt);
          const Interval d = bootstrap(units(k, *a), units(k, *t));  // ams - top-k
          if (!std::isnan(d.mean) && !std::isnan(x) && !std::isnan(y)) {
            const bool ams_wins = m.lower_better ? d.hi < 0 : d.lo > 0;
            const bool topk_wins = m.lower_better ? d.lo > 0 : d.hi < 0;
            if (ams_wins)
              ams[k]++, ty = "**" + ty + "**";
            else if (topk_wins)
              topk[k]++, tx = "**" + tx + "**";
            else
              tie[k]++;
            o += " " + tx + " / " + ty + " (" + with_ci(d, k == 0 ? "%+.3f" : "%+.2f") + ") |";
            continue;
          }
          if (!std::isnan(x) && !std::isnan(y)) {
            const bool ams_wins = m.lower_better ? y < x : y > x;
            const bool topk_wins = m.lower_better ? x < y : x > y;
            if (tx == ty)
              tie[k]++;
            else if (ams_wins)
              ams[k]++, ty = "**" + ty + "**";
            else if (topk_wins)
              topk[k]++, tx = "**" + tx + "**";
          }
          o += " " + tx + " / " + ty + " |";
        }
        o += "\n";
      }
  o += "\nPairs won (bold above): for " + std::string(kGap.name) + ", " + kRecall.name + " and " +
       kFresh.name +
       " when the 95% bootstrap interval of the difference ams - top-k (in brackets; units: blocks "
       "of " +
       std::to_string(kNllBlock) +
       " tokens, facts) excludes zero, for the others when they "
       "differ at the precision shown; of " +
       std::to_string(pairs) + ":";
  for (int k = 0; k < kN; ++k)
    o += std::string(" ") + ms[k]->name + " AMS " + std::to_string(ams[k]) + ", top-k " +
         std::to_string(topk[k]) + ", tie " + std::to_string(tie[k]) + ";";
  o.back() = '.';
  return o + "\n";
}

// Recall's family kind by kind (when a run has more than plain recall): each cell's accuracy
// on the facts of that kind, fresh with its 95% interval over the facts, and chained.
std::string by_kind(const Eval& ev) {
  std::vector<std::string> kinds;
  for (const std::string& k : ev.fact_kinds)
    if (std::find(kinds.begin(), kinds.end(), k) == kinds.end()) kinds.push_back(k);
  if (kinds.empty() || (kinds.size() == 1 && kinds[0] == "recall")) return "";
  std::string o =
      "\n## Recall's tasks kind by kind\n\nFresh (each question alone on a copy of the "
      "prompt's cache) with its 95% interval over the facts, then chained.\n\n"
      "| policy | budget |";
  for (const std::string& k : kinds) o += " " + k + " fresh | " + k + " chained |";
  o += "\n|---|---|";
  for (size_t k = 0; k < kinds.size(); ++k) o += "---|---|";
  o += "\n";
  for (const std::string& b : budget_labels(ev, true))
    for (const Cell& c : ev.cells) {
      if (c.budget_label != b || c.failed) continue;
      o += "| " + c.policy + " | " + b + " |";
      for (const std::string& k : kinds) {
        std::vector<double> fresh, chained;
        for (size_t i = 0; i < ev.fact_kinds.size(); ++i) {
          if (ev.fact_kinds[i] != k) continue;
          if (i < c.fresh_hits.size()) fresh.push_back(c.fresh_hits[i]);
          if (i < c.recall_hits.size()) chained.push_back(c.recall_hits[i]);
        }
        o += " " + with_ci(bootstrap(fresh, {}), "%.2f") + " | " +
             num(bootstrap(chained, {}).mean, "%.2f") + " |";
      }
      o += "\n";
    }
  return o;
}

// Pairs of cells (v, its base) in the same budget as a table of the differences v - base with
// their 95% paired intervals, bold when the interval excludes zero. base_of gives v's base
// policy label, or "" for none.
template <typename BaseOf>
std::string pair_table(const Eval& ev, const std::string& title, const char* col, BaseOf base_of) {
  std::string o;
  for (const Cell& v : ev.cells) {
    const std::string base_label = v.failed ? std::string() : base_of(v);
    const Cell* base = nullptr;
    for (const Cell& c : ev.cells)
      if (!base_label.empty() && c.policy == base_label && c.budget_label == v.budget_label &&
          !c.failed)
        base = &c;
    if (!base) continue;
    if (o.empty())
      o = "\n## " + title + "\n\nDifferences " + col +
          " - base with 95% paired bootstrap intervals (NLL over blocks of " +
          std::to_string(kNllBlock) + " tokens, recall over facts); bold: the interval excludes " +
          "zero.\n\n| " + col +
          " | base | budget | NLL gap | recall fresh | recall | block lost "
          "|\n|---|---|---|---|---|---|---|\n";
    auto cell = [](const Interval& d, const char* f) {
      const std::string s = with_ci(d, f);
      return s.empty() || !(d.lo > 0 || d.hi < 0) ? s : "**" + s + "**";
    };
    o += "| " + v.policy + " | " + base->policy + " | " + v.budget_label + " | " +
         cell(bootstrap(v.nll_blocks, base->nll_blocks), "%+.3f") + " | " +
         cell(bootstrap(as_doubles(v.fresh_hits), as_doubles(base->fresh_hits)), "%+.2f") + " | " +
         cell(bootstrap(as_doubles(v.recall_hits), as_doubles(base->recall_hits)), "%+.2f") +
         " | " + num(v.lost_rate() - base->lost_rate(), "%+.3f") + " |\n";
  }
  return o;
}

// Each policy with options ("ams:tova,apart=1", an ablation or variant) against the same
// policy without them, in the same dtype and budget.
std::string variants(const Eval& ev) {
  return pair_table(ev, "Variants against their base policy, same dtype and budget", "variant",
                    [&](const Cell& v) {
                      std::string pol;
                      amskv_dtype dt;
                      split_dtype(v.policy, ev.o.dtype, &pol, &dt);
                      const size_t comma = pol.find(',');
                      if (comma == std::string::npos) return std::string();
                      return pol.substr(0, comma) + v.policy.substr(pol.size());  // + "@q4"
                    });
}

// Each scorer without options against the reference scorer under the same kind (top-k or
// ams:), dtype and budget: "ams:keydiff@k8v4" against "ams:tova@k8v4".
std::string against_reference(const Eval& ev) {
  const std::string ref = cli::reference_scorer();
  return pair_table(ev, "Scorers against " + ref + ", same kind, dtype and budget", "scorer",
                    [&](const Cell& v) {
                      std::string pol;
                      amskv_dtype dt;
                      split_dtype(v.policy, ev.o.dtype, &pol, &dt);
                      const bool ams = pol.rfind("ams:", 0) == 0;
                      const std::string name = ams ? pol.substr(4) : pol;
                      bool scorer = false;
                      for (const amskv_scorer_info* s : cli::scorers()) scorer |= s->name == name;
                      if (pol.find(',') != std::string::npos || name == ref || !scorer ||
                          (!ams && cli::is_policy_kind(name)))
                        return std::string();
                      return (ams ? "ams:" : "") + ref + v.policy.substr(pol.size());
                    });
}

}  // namespace

// A finished run back from its results.json (amskv eval --from): the cells with their
// means, the run's settings and data records; for re-rendering the report and plots.
bool load_results(const std::string& path, Options* o, std::vector<Cell>* cells,
                  std::vector<std::string>* data, std::vector<std::string>* fact_kinds,
                  double* minutes, size_t* rss, std::string* err) {
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
  if (const json::Value* d = v.get("kv_dtype"); d && d->kind == json::Value::kString)
    amskv_dtype_from_name(d->str.c_str(), &o->dtype);
  *minutes = number(v.get("minutes"));
  *rss = (size_t)std::max(0.0, number(v.get("peak_rss_bytes")));
  if (const json::Value* d = v.get("data"); d && d->kind == json::Value::kArray)
    for (const json::Value& x : d->arr) data->push_back(json::dump(x));
  if (const json::Value* k = v.get("fact_kinds"); k && k->kind == json::Value::kArray)
    for (const json::Value& x : k->arr)
      fact_kinds->push_back(x.kind == json::Value::kString ? x.str : "recall");
  o->ppl = o->recall = o->agree = false;
  for (const json::Value& x : cs->arr) {
    Cell c;
    const json::Value *p = x.get("policy"), *b = x.get("budget"), *e = x.get("error");
    if (!p || p->kind != json::Value::kString || !b || b->kind != json::Value::kString)
      return *err = path + ": a cell without policy or budget", false;
    c.policy = p->str, c.budget_label = b->str;
    c.full = c.policy == cli::kFull && c.budget_label == "ctx";
    std::string pol;
    split_dtype(c.policy, o->dtype, &pol, &c.dtype);
    c.whole = pol == cli::kFull && c.budget_label == "ctx";
    float f;
    if (cli::parse_float(c.budget_label, 1e-4f, 1.f, &f)) c.fraction = f;
    c.budget = (size_t)std::max(0.0, number(x.get("budget_bytes")));
    c.session_bytes = (size_t)std::max(0.0, number(x.get("session_bytes")));
    if (const double fr = number(x.get("fraction")); fr > 0) c.fraction = fr;
    c.capacity = (int)std::max(0.0, number(x.get("capacity")));
    if (const json::Value* cov = x.get("ea_cov"); cov && cov->kind == json::Value::kString)
      c.ea_cov = cov->str;
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
    for (auto [key, hits] :
         {std::pair{"recall_hits", &c.recall_hits}, {"fresh_hits", &c.fresh_hits}})
      if (const json::Value* h = x.get(key); h && h->kind == json::Value::kString)
        for (char ch : h->str) hits->push_back(ch == '1');
    if (const json::Value* nb = x.get("nll_blocks"); nb && nb->kind == json::Value::kArray)
      for (const json::Value& y : nb->arr) c.nll_blocks.push_back(number(&y));
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
    if (put("block_kept", &c.block_kept, &c.block_n)) put("block_lost", &c.block_lost, &unused);
    c.events = (uint64_t)std::max(0.0, number(x.get("events")));
    const double pt = number(x.get("prefill_tps")), dt = number(x.get("decode_tps"));
    c.prefill_tps = std::isnan(pt) ? -1 : pt;
    c.decode_tps = std::isnan(dt) ? -1 : dt;
    cells->push_back(c);
  }
  // Runs written before "fraction" was kept: a whole-input cell's is its session bytes over
  // the full cache's (both hold the same tokens).
  const Cell* full = nullptr;
  for (const Cell& c : *cells)
    if (c.full) full = &c;
  for (Cell& c : *cells)
    if (c.whole && !c.full && c.fraction == 0 && full && full->session_bytes)
      c.fraction = (double)c.session_bytes / full->session_bytes;
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
  md += "\n" + markdown(ev) + by_kind(ev) +
        "\n## AMS against global top-k, same scorer and budget\n\n" + ams_vs_topk(ev) +
        against_reference(ev) + variants(ev);
  bool ok = write_file(ev.o.out + "/summary.md", md) &&
            write_file(ev.o.out + "/results.csv", csv(ev)) &&
            write_file(ev.o.out + "/results.json", results_json(ev, data));
  ok &= write_plots(ev);
  return ok;
}

}  // namespace eval
}  // namespace amskv
