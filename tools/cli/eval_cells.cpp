// amskv eval's cells in lockstep: each step is one token for every (policy, budget) cell
// through llama_decode_many, so the weights are read once per step for all of them, and each
// cell's session evicts on its own. Tasks:
//   ppl     teacher-forced decode over each text: mean NLL per token, by position quarter
//   agree   after each text, the full cache's greedy continuation is fed to every cell:
//           argmax match rate, tokens to the first divergence, mean KL(full || policy)
//   recall  a long prompt with facts placed in different regions, then completion-style
//           questions answered greedily by each cell: exact match per fact and per region
//   cost    per cell, alone: prefill the context, then time decode steps (tokens/s)
// Every cell also reports its compression events and region wipe-out rate (amskv_stats).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <memory>

#include "tools/cli/eval.h"

namespace amskv {
namespace eval {

bool split_dtype(const std::string& label, amskv_dtype ref, std::string* policy,
                 amskv_dtype* dtype) {
  const size_t at = label.rfind('@');
  *policy = label.substr(0, at);
  *dtype = ref;
  return at == std::string::npos ||
         amskv_dtype_from_name(label.substr(at + 1).c_str(), dtype) == AMSKV_OK;
}

std::string Eval::session_policy(const Cell& c) const {
  std::string pol;
  amskv_dtype dt;
  split_dtype(c.policy, c.dtype, &pol, &dt);
  const std::string name = pol.substr(0, pol.find(','));
  for (const amskv_scorer_info* s : cli::topk_scorers())
    if (name == s->name && pol.find("seed=") == std::string::npos)
      return pol + ",seed=" + std::to_string(o.seed);
  return pol;
}

void Eval::progress(const std::string& what, long done, long total, double tps) {
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

namespace {

// Per-cell contexts for one stream: fresh sessions, max_batch 1 (the work context lends the
// activations for the whole batch).
struct Stream {
  std::vector<std::unique_ptr<LlamaContext>> ctx;
  std::vector<LlamaContext*> seqs;
  std::vector<int> cell;  // seqs[i] belongs to cells[cell[i]]
  LlamaContext work;
  std::vector<float> logits;  // [n][n_vocab]
};

// `tokens`: what the whole-input cells must hold.
bool open_stream(Eval& ev, Stream* s, int tokens, std::string* err) {
  for (size_t c = 0; c < ev.cells.size(); ++c) {
    Cell& cell = ev.cells[c];
    if (cell.failed) continue;
    auto ctx = std::make_unique<LlamaContext>();
    LlamaParams p;
    p.kv_budget = cell.whole ? cli::full_cache_bytes(ev.m, cell.dtype, tokens) : cell.budget;
    p.kv_dtype = cell.dtype;
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
    if (!cell.whole || cell.capacity == 0) cell.capacity = st.capacity_tokens;
    if (st.ea_cov) cell.ea_cov = st.ea_cov;
    cell.session_bytes = std::max(cell.session_bytes, st.bytes_used);
    s->seqs.push_back(ctx.get());
    s->cell.push_back((int)c);
    s->ctx.push_back(std::move(ctx));
  }
  if (s->seqs.empty()) return *err = "no policy could be evaluated", false;
  LlamaParams wp;
  wp.kv_budget = cli::full_cache_bytes(ev.m, ev.o.dtype, 128);
  wp.kv_dtype = ev.o.dtype;
  wp.policy = cli::kFull;
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
      held = held && amskv_layer_tokens(s.seqs[i]->kv, l) <=
                         (ev.m.layers[l].local ? st.local_capacity_tokens : st.capacity_tokens);
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

}  // namespace

// ppl and agree on one text: teacher-forced text tokens, then the full cache's greedy
// continuation fed to every cell. Records per-step NLL into `trace` (for the
// reproducibility check) when it is not null.
bool run_text(Eval& ev, const std::vector<int32_t>& text, const std::string& name,
              std::vector<double>* trace, std::string* err) {
  const int T = (int)text.size(), A = ev.o.agree ? (int)ev.o.agree_tokens : 0;
  const int V = ev.m.hp.n_vocab;
  Stream s;
  if (!open_stream(ev, &s, T + A + 8, err)) return false;
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
        const int in_block = i % kNllBlock;  // a running mean: a text's last block may be short
        if (in_block == 0) cell.nll_blocks.push_back(0);
        cell.nll_blocks.back() += (nll - cell.nll_blocks.back()) / (in_block + 1);
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

bool run_recall(Eval& ev, const RecallTask& task, std::string* err) {
  const Tokenizer& tok = ev.m.tok;
  const int V = ev.m.hp.n_vocab;
  std::vector<int32_t> prompt;
  const bool bos = tok.add_bos_token && tok.bos_id >= 0;  // as the model was trained
  tokenize(tok, recall_prompt(task), bos, task.special, &prompt);
  struct Q {
    std::vector<int32_t> ids;
    int gen;
  };
  std::vector<Q> qs;
  long total = (long)prompt.size();
  for (const Fact& f : task.facts) {
    Q q;
    tokenize(tok, task.qsep + f.question, false, task.special, &q.ids);
    ev.fact_kinds.push_back(task.kind);
    std::vector<int32_t> a;
    tokenize(tok, " " + f.answer, false, false, &a);
    q.gen = (int)a.size() + 1;
    total += (long)q.ids.size() + q.gen;
    qs.push_back(q);
  }
  const long steps = 2 * total - (long)prompt.size();  // the questions twice
  Stream s;
  if (!open_stream(ev, &s, (int)total + 8, err)) return false;
  const int n = (int)s.seqs.size();
  for (int c = 0; c < n; ++c) {
    Cell& cell = ev.cells[s.cell[c]];
    cell.region_n.resize(std::max(cell.region_n.size(), task.pieces.size()), 0);
    cell.region_hit.resize(cell.region_n.size(), 0);
  }
  std::vector<int32_t> tok_in(n);
  long done = 0;
  const auto t0 = std::chrono::steady_clock::now();
  // One lockstep step of tok_in on the contexts of `st`.
  auto step = [&](Stream& st) {
    if (!llama_decode_many(st.work, st.seqs.data(), tok_in.data(), n, st.logits.data()))
      return *err = st.work.error, false;
    ++done;
    ev.progress("recall " + task.id + " (" + std::to_string(n) + " cells)", done, steps,
                (double)done * n / cli::seconds_since(t0));
    return true;
  };
  for (int32_t t : prompt) {
    std::fill(tok_in.begin(), tok_in.end(), t);
    if (!step(s)) return false;
  }
  // Block survival: which of each fact's tokens every (global layer, KV head) still holds.
  {
    const std::string text = recall_prompt(task);
    std::vector<long> end(prompt.size());  // byte end of each token in the prompt
    long at = 0;
    for (size_t i = 0; i < prompt.size(); ++i)
      end[i] = at +=
          bos && i == 0 ? 0 : (long)detokenize_token(tok, prompt[i], task.special).size();
    std::vector<std::pair<int, int>> spans;  // token [first, last] of each fact
    for (const Fact& f : task.facts) {
      const size_t b0 = text.find(f.text);
      if (b0 == std::string::npos || f.text.empty()) continue;
      const long b1 = (long)(b0 + f.text.size());
      int first = -1, last = -1;
      for (size_t i = 0; i < prompt.size(); ++i)
        if ((i ? end[i - 1] : 0) < b1 && end[i] > (long)b0)
          last = (int)i, first = first < 0 ? (int)i : first;
      if (first >= 0) spans.push_back({first, last});
    }
    std::vector<int32_t> held;
    for (int c = 0; c < n; ++c) {
      Cell& cell = ev.cells[s.cell[c]];
      for (int l = 0; l < ev.m.hp.n_layer; ++l) {
        if (ev.m.layers[l].local) continue;
        for (int h = 0; h < ev.m.hp.n_head_kv; ++h) {
          held.resize(std::max(0, amskv_layer_tokens(s.seqs[c]->kv, l)));
          amskv_layer_positions(s.seqs[c]->kv, l, h, held.data(), (int)held.size());
          for (const auto& [first, last] : spans) {
            const auto lo = std::lower_bound(held.begin(), held.end(), first);
            const auto hi = std::upper_bound(held.begin(), held.end(), last);
            const long kept = hi - lo;
            cell.block_n++;
            cell.block_kept += kept == last - first + 1;
            cell.block_lost += kept == 0;
          }
        }
      }
    }
  }
  // One question and its greedy answer on the contexts of `st`; scores each cell's answer.
  std::vector<std::vector<int32_t>> gen(n);
  auto ask = [&](Stream& st, size_t k, bool fresh) {
    for (int32_t t : qs[k].ids) {
      std::fill(tok_in.begin(), tok_in.end(), t);
      if (!step(st)) return false;
    }
    for (auto& g : gen) g.clear();
    for (int j = 0; j < qs[k].gen; ++j) {
      for (int c = 0; c < n; ++c) {
        tok_in[c] = argmax(st.logits.data() + (size_t)c * V, V);
        gen[c].push_back(tok_in[c]);
      }
      if (j + 1 < qs[k].gen && !step(st)) return false;
    }
    done += 1;  // the last answer token is not fed
    const Fact& f = task.facts[k];
    for (int c = 0; c < n; ++c) {
      Cell& cell = ev.cells[s.cell[c]];
      const bool hit = answer_matches(detokenize(tok, gen[c]), f.answer);
      if (fresh) {
        cell.fresh_hits.push_back(hit);
        continue;
      }
      cell.recall_hits.push_back(hit);
      cell.recall_n++, cell.recall_hit += hit;
      cell.region_n[f.piece]++, cell.region_hit[f.piece] += hit;
    }
    return true;
  };
  // Fresh: each question alone on a copy of the post-prompt cache. Then chained: all of them
  // in turn on the cache itself, each after the answers before it.
  Stream br;
  if (!open_stream(ev, &br, (int)total + 8, err)) return false;
  if (br.seqs.size() != s.seqs.size()) return *err = "recall: a copy could not be made", false;
  for (size_t k = 0; k < qs.size(); ++k) {
    for (int c = 0; c < n; ++c)
      if (!llama_context_copy(br.seqs[c], *s.seqs[c], err)) return false;
    if (!ask(br, k, true)) return false;
  }
  for (size_t k = 0; k < qs.size(); ++k)
    if (!ask(s, k, false)) return false;
  close_stream(ev, s);
  return true;
}

// Each cell alone: prefill the first ctx - cost tokens of the text, then time `cost`
// teacher-forced decode steps.
void run_cost(Eval& ev, const std::vector<int32_t>& text) {
  const int cost = (int)ev.o.cost_tokens, pre = (int)text.size() - cost;
  if (cost <= 0 || pre < 1) return;
  for (size_t c = 0; c < ev.cells.size(); ++c) {
    Cell& cell = ev.cells[c];
    if (cell.failed) continue;
    LlamaContext ctx;
    LlamaParams p;
    p.kv_budget =
        cell.whole ? cli::full_cache_bytes(ev.m, cell.dtype, (int)text.size() + 8) : cell.budget;
    p.kv_dtype = cell.dtype;
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

}  // namespace eval
}  // namespace amskv
