// amskv stress: the budget stress test, to run on the target device.
//
// Worker threads each run one random session after another: random geometry (sometimes
// with sliding-window layers), KV dtype, RoPE, policy and options, budget from the
// policy's minimum upwards, then a random mix of
// prefill chunks and decode steps with random q/k/v over every layer, with bad calls mixed
// in. After every call it checks the invariants:
//   - memory: bytes used within the budget, for the session's whole life
//   - tokens held per layer within capacity (a local layer: its ring and its window), and
//     after an event exactly the target
//   - no heap allocation inside any call after creation (plain builds)
//   - outputs finite
//   - positions: tokens_seen grows by exactly what was attended
//   - every event keeps a strictly ascending set of the right size, and AMS quotas sum to it
//   - a rejected call (bad layer, stale position, NaN) changes nothing
// Each session has its own seed; a failure prints the command that replays it alone.
#include <atomic>
#include <chrono>
#include <climits>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "amskv/amskv.h"
#include "tools/alloc_count.h"
#include "tools/cli/common.h"
#include "tools/cli/flags.h"
#include "tools/cli/policies.h"

namespace amskv {
namespace cli {
namespace {

uint64_t splitmix(uint64_t* s) {
  uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

struct Totals {
  std::atomic<long> sessions{0}, steps{0}, tokens{0}, events{0}, checks{0}, failures{0};
  std::atomic<long> rejected{0}, refused_budgets{0};
  std::mutex print;
  std::vector<uint64_t> failed_seeds;
};

// What the observer sees of the events of one call.
struct EventCheck {
  int target = 0;
  long events = 0;
  std::string problem;
};

void on_event(const amskv_event_info* e, void* user) {
  EventCheck* c = (EventCheck*)user;
  c->events++;
  if (!c->problem.empty()) return;
  const int want = e->n_tokens < c->target ? e->n_tokens : c->target;
  if (e->n_keep != want)
    c->problem = "event kept " + std::to_string(e->n_keep) + " of " + std::to_string(e->n_tokens) +
                 " tokens, target " + std::to_string(want);
  for (int i = 0; i < e->n_keep && c->problem.empty(); ++i)
    if (e->kept[i] < 0 || e->kept[i] >= e->n_tokens || (i > 0 && e->kept[i] <= e->kept[i - 1]))
      c->problem = "event kept set not strictly ascending within the held tokens";
  for (int i = 1; i < e->n_tokens && c->problem.empty(); ++i)
    if (e->positions[i] <= e->positions[i - 1])
      c->problem = "held positions not strictly increasing";
  if (e->n_ams_segments > 0 && c->problem.empty()) {
    long quota = 0, len = 0;
    for (int s = 0; s < e->n_ams_segments; ++s)
      quota += e->ams_seg_quota[s], len += e->ams_seg_len[s];
    if (quota != e->n_keep)
      c->problem =
          "AMS quotas sum to " + std::to_string(quota) + ", kept " + std::to_string(e->n_keep);
    if (len > e->n_tokens) c->problem = "AMS segments cover more tokens than are held";
  }
}

// Full, streaming, or any scorer of the library as global top-k or AMS, with random options.
std::string random_policy(std::mt19937_64& r) {
  static const std::vector<const amskv_scorer_info*> kScorers = topk_scorers();
  auto pick = [&](int n) { return (int)(r() % (uint64_t)n); };
  const int kind = pick(10);
  if (kind == 0) return kFull;
  std::string p;
  const amskv_scorer_info* scorer = nullptr;
  if (kind == 1) {
    p = kStreaming;
  } else {
    scorer = kScorers[pick((int)kScorers.size())];
    p = scorer->name;
    if (kind >= 5) p = "ams:" + p;
  }
  if (pick(2)) p += ",n_sink=" + std::to_string(pick(9));
  if (pick(2)) p += ",keep_last=" + std::to_string(1 + pick(48));
  if (pick(3) == 0) p += ",window=" + std::to_string(1 + pick(64));
  if (p.rfind("ams:", 0) == 0) {
    if (pick(2)) p += ",segment_mass=" + std::to_string(0.005 + 0.1 * (r() % 1000) / 1000.0);
    if (pick(2)) p += ",min_keep=" + std::to_string(pick(12));
    if (pick(3) == 0) p += ",credit=0";
    if (pick(3) == 0) p += ",mass=0";
    if (pick(4) == 0) p += std::string(",segmenter=") + (pick(2) ? "fixed" : "valley");
    if (pick(3) == 0) p += ",min_seg_len=" + std::to_string(1 + pick(48));
  }
  // Scorers of expected future queries model them with a full or a diagonal covariance.
  if (scorer && std::string(scorer->evidence) == "queries" && pick(2)) p += ",cov=diag";
  if (scorer && p.rfind("ams:", 0) != 0 && pick(4) == 0) p += ",chunk=" + std::to_string(pick(17));
  return p;
}

struct Session {
  amskv_config cfg;
  std::string policy;
  size_t budget = 0;
  int32_t windows[4] = {0, 0, 0, 0};  // cfg.layer_window when set
  amskv_session* s = nullptr;
  std::vector<unsigned char> own;  // the caller's block for create_in, when used
  ~Session() { amskv_session_destroy(s); }
};

// One random session, start to end. Returns "" or the first broken invariant.
std::string run_session(uint64_t seed, long max_steps, Totals& tot,
                        std::chrono::steady_clock::time_point deadline) {
  std::mt19937_64 r(seed);
  auto pick = [&](int n) { return (int)(r() % (uint64_t)n); };
  Session ss;
  amskv_config& cfg = ss.cfg;
  cfg = amskv_config_default();
  cfg.n_layers = 1 + pick(4);
  cfg.n_kv_heads = 1 + pick(4);
  cfg.n_q_heads = cfg.n_kv_heads * (1 + pick(4));
  static const int kDims[] = {32, 40, 64, 72, 96, 128, 256};
  cfg.head_dim = kDims[pick(7)];
  cfg.kv_dtype = (amskv_dtype)pick(amskv_dtype_count());
  if (cfg.kv_dtype >= AMSKV_Q4) cfg.head_dim = (cfg.head_dim + 31) / 32 * 32;  // its blocks
  if (cfg.kv_dtype == AMSKV_Q4H) cfg.head_dim = 32 << pick(4);                 // its rotation
  cfg.rope_style = (amskv_rope_style)pick(3);
  cfg.rope_theta = pick(2) ? 10000.f : 500000.f;
  ss.policy = random_policy(r);
  cfg.policy = ss.policy.c_str();
  cfg.n_threads = 1 + pick(2);
  cfg.interval = pick(2) ? 0 : 1 + pick(96);
  // Sometimes sliding-window layers (0 and 2): windows up to 600 tokens, which some budgets
  // hold and others shorten.
  if (cfg.n_layers > 1 && pick(3) == 0) {
    ss.windows[0] = 1 + pick(600);
    if (cfg.n_layers > 2) ss.windows[2] = 1 + pick(600);
    cfg.layer_window = ss.windows;
  }
  // Budget: the policy's minimum capacity (found by doubling) times 1..4, sometimes the
  // exact minimum byte count.
  int cap = 8;
  while (cap < (1 << 16) && amskv_session_bytes(&cfg, amskv_budget_for_capacity(&cfg, cap)) == 0)
    cap *= 2;
  if (cap >= (1 << 16)) return "no budget works for policy " + ss.policy;
  cap = cap * (1 + pick(4)) / (pick(2) ? 1 : 2) + pick(64);
  ss.budget = amskv_budget_for_capacity(&cfg, cap);
  if (pick(8) == 0) ss.budget -= 1;  // just below: either refused or a token fewer
  amskv_status st;
  if (pick(4) == 0) {
    const size_t bytes = amskv_session_bytes(&cfg, ss.budget);
    if (bytes == 0) {
      tot.refused_budgets++;
      return "";
    }
    ss.budget = bytes;  // the caller's block is the budget
    ss.own.resize(bytes + 64);
    void* mem = ss.own.data() + (64 - (uintptr_t)ss.own.data() % 64) % 64;
    st = amskv_session_create_in(&cfg, mem, bytes, &ss.s);
  } else {
    st = amskv_session_create(&cfg, ss.budget, &ss.s);
  }
  // Too small, for the policy or for a fixed interval (the config itself was accepted at a
  // larger budget above): refused, as it should be.
  if (st == AMSKV_E_BUDGET || (st == AMSKV_E_INVALID && cfg.interval)) {
    tot.refused_budgets++;
    return "";
  }
  if (st != AMSKV_OK) return std::string("create failed: ") + amskv_last_error(nullptr);
  tot.sessions++;
  amskv_stats s0;
  amskv_get_stats(ss.s, &s0);
  EventCheck ev;
  ev.target = s0.target_tokens;
  if (pick(2)) amskv_set_event_observer(ss.s, on_event, &ev);

  const int L = cfg.n_layers, qd = cfg.n_q_heads * cfg.head_dim, kd = cfg.n_kv_heads * cfg.head_dim;
  const bool full = ss.policy == kFull;
  const int max_chunk = 1 + pick(64);
  const long n_tokens =
      full ? s0.capacity_tokens : (long)s0.capacity_tokens * (1 + pick(4)) + pick(200);
  std::vector<float> q((size_t)max_chunk * qd), k((size_t)max_chunk * kd),
      v((size_t)max_chunk * kd);
  std::vector<float> out((size_t)max_chunk * qd);
  std::normal_distribution<float> nd(0.f, 1.f);
  const float scale = pick(4) == 0 ? 30.f : 1.f;
  int32_t pos = pick(2) ? 0 : pick(100000);
  uint64_t seen = 0;
  long steps = 0;
  for (long done = 0; done < n_tokens && steps < max_steps; ++steps) {
    if (std::chrono::steady_clock::now() > deadline) break;
    const int n = pick(3) == 0 ? 1 + pick(max_chunk) : 1;
    const int take = (int)std::min<long>(n, n_tokens - done);
    for (auto* x : {&q, &k, &v})
      for (size_t i = 0; i < x->size(); ++i) (*x)[i] = nd(r) * scale;
    // Sometimes a bad call first: it must be refused and change nothing.
    if (pick(16) == 0) {
      amskv_stats before, after;
      amskv_get_stats(ss.s, &before);
      const int held = amskv_layer_tokens(ss.s, 0);
      amskv_status bad;
      const int what = pick(3);
      if (what == 0) {
        bad = amskv_attend(ss.s, L + pick(3), pos, q.data(), k.data(), v.data(), out.data());
      } else if (what == 1 && seen > 0) {
        bad = amskv_attend(ss.s, 0, pos - 1, q.data(), k.data(), v.data(), out.data());
      } else {
        const float keep = k[0];
        k[0] = NAN;
        bad = amskv_prefill(ss.s, 0, pos, take, q.data(), k.data(), v.data(), out.data());
        k[0] = keep;
      }
      amskv_get_stats(ss.s, &after);
      tot.checks++;
      if (bad == AMSKV_OK) return "a bad call was accepted";
      if (after.tokens_seen != before.tokens_seen || after.events != before.events ||
          amskv_layer_tokens(ss.s, 0) != held)
        return "a rejected call changed the session";
      tot.rejected++;
    }
    alloc_count_begin();
    ev.problem.clear();
    for (int l = 0; l < L; ++l) {
      st = take == 1 ? amskv_attend(ss.s, l, pos, q.data(), k.data(), v.data(), out.data())
                     : amskv_prefill(ss.s, l, pos, take, q.data(), k.data(), v.data(), out.data());
      if (st != AMSKV_OK) break;
    }
    for (int t = 0; t < take && st == AMSKV_OK; ++t)  // the surprisal scorer's evidence
      st = amskv_set_surprisal(ss.s, pos + t, (float)pick(1000) / 100.f);
    const long allocs = alloc_count_end();
    if (st != AMSKV_OK)
      return std::string("call failed: ") + amskv_status_string(st) + ": " + amskv_last_error(ss.s);
    pos += take;
    done += take;
    seen += (uint64_t)take * L;
    tot.tokens += take;
    // The invariants.
    amskv_stats now;
    amskv_get_stats(ss.s, &now);
    tot.checks += 6;
    if (allocs != 0) return std::to_string(allocs) + " heap allocations inside a call";
    if (now.bytes_used > ss.budget)
      return "bytes used " + std::to_string(now.bytes_used) + " above the budget " +
             std::to_string(ss.budget);
    if (now.budget_bytes != ss.budget) return "the session reports another budget";
    if (now.tokens_seen != seen) return "tokens_seen does not match the tokens attended";
    for (int l = 0; l < L; ++l) {
      const int w = ss.windows[l], held = amskv_layer_tokens(ss.s, l);
      const int room = !w ? now.capacity_tokens : std::min(w, now.local_capacity_tokens);
      if (held > room || held < 1)
        return "layer " + std::to_string(l) + " holds " + std::to_string(held) +
               " tokens, capacity " + std::to_string(room);
    }
    for (int i = 0; i < take * qd; ++i)
      if (!std::isfinite(out[i])) return "non-finite attention output";
    if (!ev.problem.empty()) return ev.problem;
    if (full && now.events != 0) return "the full policy evicted";
  }
  amskv_stats end;
  amskv_get_stats(ss.s, &end);
  tot.steps += steps;
  tot.events += (long)end.events;
  if (!full && n_tokens > end.capacity_tokens && steps > 0 && seen == (uint64_t)n_tokens * L &&
      end.events == 0)
    return "over capacity without any event";
  return "";
}

}  // namespace

int cmd_stress(int argc, char** argv) {
  long seconds = 10, steps = 0, threads = 2, seed = 1;
  std::string session;
  bool has_replay = false;
  Spec spec{
      "stress",
      "[options]",
      "  Random sessions on several threads, checking the budget invariants at every call\n"
      "  (memory within budget, tokens within capacity, no heap allocation, finite outputs,\n"
      "  consistent positions, event sizes, rejected calls change nothing). Exit status 0\n"
      "  when every check held, 1 on any failure.\n",
      {long_flag("--seconds", "N", "run time", &seconds, 0, 1000000000L),
       long_flag("--steps", "N", "stop after N calls in total, 0 = no limit", &steps, 0, LONG_MAX),
       threads_flag(&threads, "worker threads, each with its own sessions"),
       seed_flag(&seed, "master seed; every session has its own seed, derived from it"),
       string_flag("--session", "X", "replay the one session with seed X (printed on a failure)",
                   &session, &has_replay)}};
  int rc;
  if (!parse(argc, argv, spec, &rc)) return rc;
  char* end;
  const uint64_t replay = std::strtoull(session.c_str(), &end, 0);
  if (has_replay && (session.empty() || *end))
    return bad_value("--session", session, "a seed like 0x0123456789abcdef");
  // The allocation check must be able to fail: a malloc here is seen.
  if (alloc_count_available()) {
    void* (*volatile do_malloc)(size_t) = std::malloc;
    alloc_count_begin();
    void* p = do_malloc(64);
    const long seen = alloc_count_end();
    std::free(p);
    if (seen < 1) return error(kRuntime, "stress: the allocation counter does not count");
  }
  Totals tot;
  const auto t0 = std::chrono::steady_clock::now();
  const auto deadline = t0 + std::chrono::seconds(seconds);
  const long step_cap = steps > 0 ? steps : LONG_MAX;
  auto report = [&](uint64_t s, const std::string& why) {
    std::lock_guard<std::mutex> lock(tot.print);
    tot.failures++;
    tot.failed_seeds.push_back(s);
    std::fprintf(
        stderr,
        "stress: FAILED: session 0x%016llx: %s\n  replay: amskv stress --session 0x%016llx\n",
        (unsigned long long)s, why.c_str(), (unsigned long long)s);
  };
  if (has_replay) {
    const std::string why =
        run_session(replay, step_cap, tot, std::chrono::steady_clock::time_point::max());
    if (!why.empty()) report(replay, why);
  } else {
    std::vector<std::thread> pool;
    for (long t = 0; t < threads; ++t)
      pool.emplace_back([&, t]() {
        uint64_t state = (uint64_t)seed * 0x100000001B3ull + (uint64_t)t;
        while (std::chrono::steady_clock::now() < deadline && tot.steps.load() < step_cap &&
               tot.failures.load() < 10) {
          const uint64_t s = splitmix(&state);
          const std::string why = run_session(s, step_cap - tot.steps.load(), tot, deadline);
          if (!why.empty()) report(s, why);
        }
      });
    for (auto& th : pool) th.join();
  }
  std::printf(
      "stress: %.0f s, %ld threads, %ld sessions (%ld budgets refused as too small), %ld calls, "
      "%ld tokens, %ld events, %ld invariant checks, %ld bad calls rejected cleanly, "
      "allocation check %s; %ld failures\n",
      seconds_since(t0), has_replay ? 1L : threads, tot.sessions.load(), tot.refused_budgets.load(),
      tot.steps.load(), tot.tokens.load(), tot.events.load(), tot.checks.load(),
      tot.rejected.load(), alloc_count_available() ? "on" : "off (sanitizer build)",
      tot.failures.load());
  return tot.failures.load() ? 1 : 0;
}

}  // namespace cli
}  // namespace amskv
