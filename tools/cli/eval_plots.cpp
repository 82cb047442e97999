// amskv eval's figures: quality against budget per policy (SVG line charts) and the picture
// of one compression event of an ams: policy next to its global top-k twin (--plot-event).
#include <algorithm>
#include <cmath>
#include <cstdio>

#include "tools/cli/eval.h"
#include "tools/svg.h"

namespace amskv {
namespace eval {
namespace {

// Quality against budget fraction: one line per policy; ams: solid, top-k dashed, the same
// colour per scorer; the full cache as a flat reference line.
std::string plot(const Eval& ev, const std::string& title, const std::string& y_label,
                 const Metric& metric) {
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
        s.y.push_back(metric.get(c, f));
        lo = std::min(lo, c.fraction), hi = std::max(hi, c.fraction);
      }
    series.push_back(s);
  }
  if (f && !f->failed) {
    svg::Series s;
    s.name = cli::kFull;
    s.color = "#000000";
    s.x = {lo, hi};
    s.y = {metric.get(*f, f), metric.get(*f, f)};
    series.insert(series.begin(), s);
  }
  return svg::line_chart(title, "KV budget (fraction of the full cache's bytes)", y_label, series);
}

// The frontier a user picks from: quality against the bytes spent (fraction of the reference
// dtype's full cache), one line per (policy, dtype). A colour per policy, a dash pattern per
// dtype; each line ends at its dtype's full cache (full@dtype), the bytes from which that
// dtype holds the whole input and nothing is evicted.
std::string frontier(const Eval& ev, const std::string& title, const std::string& y_label,
                     const Metric& metric) {
  const Cell* f = full_cell(ev);
  std::vector<std::string> labels, policies;
  for (const Cell& c : ev.cells)
    if (!c.whole && c.fraction > 0 &&
        std::find(labels.begin(), labels.end(), c.policy) == labels.end())
      labels.push_back(c.policy);
  std::vector<svg::Series> series;
  for (const std::string& label : labels) {
    std::string pol;
    amskv_dtype dt;
    split_dtype(label, ev.o.dtype, &pol, &dt);
    auto it = std::find(policies.begin(), policies.end(), pol);
    if (it == policies.end()) policies.push_back(pol), it = policies.end() - 1;
    svg::Series s;
    s.name = label;
    s.color = svg::palette((int)(it - policies.begin()));
    s.dash = dtype_look(dt)->dash;
    const Cell* whole = nullptr;
    for (const Cell& c : ev.cells) {
      if (c.whole && c.dtype == dt && !c.failed) whole = &c;
      if (c.policy == label && c.fraction > 0 && !c.failed) {
        s.x.push_back(c.fraction);
        s.y.push_back(metric.get(c, f));
      }
    }
    if (whole)
      s.x.push_back(whole->whole && whole->full ? 1.0 : whole->fraction),
          s.y.push_back(metric.get(*whole, f));
    series.push_back(s);
  }
  return svg::line_chart(
      title,
      "KV bytes (fraction of the " + std::string(amskv_dtype_name(ev.o.dtype)) + " full cache)",
      y_label, series);
}

}  // namespace

bool write_plots(const Eval& ev) {
  struct Chart {
    bool on;
    const char* file;
    const char* title;
    const char* y_label;
    const Metric& metric;
  };
  const Chart charts[] = {
      {ev.o.ppl, "ppl_gap.svg", "NLL gap to the full cache (lower is better)", "mean NLL - full",
       kGap},
      {ev.o.recall, "recall.svg", "Region recall, exact match (higher is better)", "accuracy",
       kRecall},
      {ev.o.recall, "recall_fresh.svg",
       "Recall, each question alone on a copy of the prompt's cache", "accuracy", kFresh},
      {ev.o.agree, "agree_match.svg", "Greedy agreement with the full cache", "argmax match rate",
       kMatch},
      {ev.o.agree, "agree_kl.svg", "KL(full || policy) on the full cache's path", "mean KL (nats)",
       kKl},
      {true, "wipe_out.svg", "Region wipe-out rate (lower is better)", "wiped regions / regions",
       kWipe},
      {ev.o.recall, "block_lost.svg",
       "Facts of which a (layer, KV head) holds no token (lower is better)",
       "share of (fact, layer, KV head)", kBlockLost}};
  bool ok = true;
  for (const Chart& c : charts)
    if (c.on) ok &= write_file(ev.o.out + "/" + c.file, plot(ev, c.title, c.y_label, c.metric));
  if (ev.o.ppl)
    ok &= write_file(ev.o.out + "/frontier_gap.svg",
                     frontier(ev, "Quality per byte: NLL gap to the full cache (lower is better)",
                              "mean NLL - full", kGap));
  if (ev.o.recall)
    ok &=
        write_file(ev.o.out + "/frontier_recall.svg",
                   frontier(ev, "Quality per byte: recall, each question fresh (higher is better)",
                            "accuracy", kFresh));
  return ok;
}

namespace {

struct Captured {
  int layer = 0, seen = 0;
  svg::EventPanel panel;
  // Over every event of every layer and KV head: regions (AMS's own for ams:, else step 4 on
  // the mass) and the share of the mass on the last kWindow positions (the recent window).
  double head_events = 0, regions = 0, window_mass = 0, sink_mass = 0;
};
constexpr int kWindow = 32, kSinks = 4;  // the policies' defaults

void capture(const amskv_event_info* e, void* user) {
  Captured* cap = (Captured*)user;
  if (e->mass) {
    cap->head_events++;
    cap->regions += e->n_ams_segments > 0 ? e->n_ams_segments : e->n_segments;
    for (int j = std::max(0, e->n_tokens - kWindow); j < e->n_tokens; ++j)
      cap->window_mass += e->mass[j];
    for (int j = 0; j < std::min(kSinks, e->n_tokens); ++j) cap->sink_mass += e->mass[j];
  }
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

}  // namespace

int plot_event(const Options& o, const LlamaModel& m, const std::vector<int32_t>& text,
               size_t budget) {
  const std::string& ams = o.plot_policy;
  if (ams.rfind("ams:", 0) != 0) return error(kUsage, "--plot-event wants an ams: policy");
  std::string twin = ams.substr(4);
  twin = twin.substr(0, twin.find(','));  // the scorer alone, as global top-k
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
  for (int i = 0; i < 2; ++i)
    if (caps[i].head_events > 0)
      std::fprintf(stderr,
                   "eval: %s: %.1f regions per event and KV head; of the mass %.1f%% on the last "
                   "%d positions, %.1f%% on the first %d (every layer)\n",
                   pols[i].c_str(), caps[i].regions / caps[i].head_events,
                   100 * caps[i].window_mass / caps[i].head_events, kWindow,
                   100 * caps[i].sink_mass / caps[i].head_events, kSinks);
  return 0;
}

}  // namespace eval
}  // namespace amskv
