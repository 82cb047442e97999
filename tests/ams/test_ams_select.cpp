// Tests of AMS selection (docs/ams.md steps 2 to 8) and global top-k: hand-built cases per step
// with the expected values worked out in comments, then seeded random cases checked against
// a plain, slow restatement of the spec and against the properties the spec promises.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "ams/ams_select.h"
#include "amskv/amskv.h"
#include "arch/error.h"

namespace amskv {
namespace {

using Ints = std::vector<int32_t>;

Ints segment_mass(const std::vector<float>& mass, float s, int min_len, int max_len) {
  Ints starts(mass.size());
  const int n = ams_segment_mass(mass.data(), int(mass.size()), s, min_len, max_len, starts.data(),
                                 int(starts.size()));
  EXPECT_GE(n, 1);
  starts.resize(std::max(n, 0));
  return starts;
}

Ints segment_fixed(int n, int seg_len, int min_len, int max_len) {
  Ints starts(n);
  const int count = ams_segment_fixed(n, seg_len, min_len, max_len, starts.data(), n);
  starts.resize(std::max(count, 0));
  return starts;
}

Ints quotas(const Ints& lengths, const std::vector<float>& masses, int t_keep, int min_keep,
            int use_mass = 1) {
  Ints starts(lengths.size());
  int n = 0;
  for (size_t i = 0; i < lengths.size(); ++i) {
    starts[i] = n;
    n += lengths[i];
  }
  Ints budget(lengths.size());
  ams_quotas(starts.data(), masses.data(), int(lengths.size()), n, t_keep, min_keep, use_mass,
             budget.data());
  return budget;
}

amskv_ams_params small_params() {
  amskv_ams_params p = amskv_ams_params_default();
  p.segment_mass = 0.25f;
  p.min_seg_len = 1;
  p.max_seg_len = 100;
  p.min_keep_per_segment = 1;
  p.n_sink = 1;
  p.always_keep_last = 2;
  p.use_credit = 0;
  return p;
}

// ---- Step 4: segmentation ------------------------------------------------------------------

TEST(AmsSegmentMass, LeftSearchsortedCuts) {
  // mass 1/8 each: cum = .125 .25 .375 .5 .625 .75 .875 1 (exact in float).
  // Targets .25 .5 .75 (1.0 is not below 1). Left searchsorted = first i with cum[i] >= t:
  // .25 -> 1, .5 -> 3, .75 -> 5. Segments [0,1) [1,3) [3,5) [5,8).
  EXPECT_EQ(segment_mass(std::vector<float>(8, 0.125f), 0.25f, 1, 100), (Ints{0, 1, 3, 5}));
}

TEST(AmsSegmentMass, DuplicateCutsDroppedAndClampedToOne) {
  // mass .5 then eight of 1/16: cum = .5 .5625 .625 .6875 .75 .8125 .875 .9375 1.
  // Targets k/8: .125 .25 .375 .5 all cut at 0 (one cut after removing duplicates),
  // .625 -> 2, .75 -> 4, .875 -> 6. Cuts {0,2,4,6}, 0 clamps to 1:
  // [0,1) [1,2) [2,4) [4,6) [6,9).
  std::vector<float> mass = {0.5f};
  mass.resize(9, 0.0625f);
  EXPECT_EQ(segment_mass(mass, 0.125f, 1, 100), (Ints{0, 1, 2, 4, 6}));
}

TEST(AmsSegmentMass, TargetsPastTheEndClampToLastPosition) {
  // Mass summing to .5: cum = .125 .25 .375 .5; targets .3 .6 .9.
  // .3 -> 2; .6 and .9 are never reached: searchsorted gives 4, clamped to 3 (one cut).
  // Segments [0,2) [2,3) [3,4).
  EXPECT_EQ(segment_mass(std::vector<float>(4, 0.125f), 0.3f, 1, 100), (Ints{0, 2, 3}));
}

TEST(AmsSegmentMass, FloatStepDoesNotAddATargetAtOne) {
  // 0.02f * 50 = 0.99999998 rounds to 1.0f as a float; the reference (double 0.02) has 49
  // targets, the last 0.98. Uniform mass over 100 tokens: cum[i] = (i+1)/100, so the targets
  // .02k cut at 2k-1 for k = 1..49 (float rounding of cum may move a cut by at most one);
  // no extra cut at 99 that would leave a 1-token tail.
  const Ints starts = segment_mass(std::vector<float>(100, 0.01f), 0.02f, 1, 1000);
  ASSERT_EQ(starts.size(), 50u);
  EXPECT_LE(98 - starts.back(), 2);
  EXPECT_GE(100 - starts.back(), 2);
}

TEST(AmsSegmentMass, SplitLongThenMergeShortForward) {
  // mass .5 then eight of 1/16; target .5 only -> cut 0 -> clamp 1: [0,1) [1,9).
  // max 3 splits [1,9) from its start: [1,4) [4,7) [7,9).
  std::vector<float> mass = {0.5f};
  mass.resize(9, 0.0625f);
  EXPECT_EQ(segment_mass(mass, 0.5f, 1, 3), (Ints{0, 1, 4, 7}));
  // Then min 2: [0,1) is short and absorbs [1,4) -> [0,4) (longer than max: merging comes
  // after splitting); [4,7) and [7,9) are long enough.
  EXPECT_EQ(segment_mass(mass, 0.5f, 2, 3), (Ints{0, 4, 7}));
  // min 3: [7,9) is short but last: it stays.
  EXPECT_EQ(segment_mass(mass, 0.5f, 3, 3), (Ints{0, 4, 7}));
}

TEST(AmsSegmentMass, SingleToken) {
  EXPECT_EQ(segment_mass({1.0f}, 0.02f, 32, 1024), (Ints{0}));
}

TEST(AmsSegmentMass, ReportsTooFewSlots) {
  std::vector<float> mass(8, 0.125f);
  int32_t starts[3];
  EXPECT_EQ(ams_segment_mass(mass.data(), 8, 0.25f, 1, 100, starts, 3), -1);
}

TEST(AmsSegmentFixed, LengthsAndGuards) {
  EXPECT_EQ(segment_fixed(10, 4, 1, 100), (Ints{0, 4, 8}));  // [0,4) [4,8) [8,10)
  EXPECT_EQ(segment_fixed(10, 10, 1, 4), (Ints{0, 4, 8}));   // split by max 4
  // seg_len 2, min 3, n 9: [0,2)+[2,4) -> [0,4); [4,6)+[6,8) -> [4,8); [8,9) last stays.
  EXPECT_EQ(segment_fixed(9, 2, 3, 100), (Ints{0, 4, 8}));
  EXPECT_EQ(segment_fixed(5, std::numeric_limits<int>::max(), 1, 1 << 30), (Ints{0}));
}

TEST(AmsSegmentValley, CutsAtStrictLocalMinimaOfSmoothedMass) {
  // mass 5 4 3 2 1 2 3 4 5; 5-wide sums with zero padding: 12 14 15 12 11 12 15 14 12.
  // Interior strict minima: only i = 4 (11 < 12, 12). The edges are not candidates.
  const std::vector<float> mass = {5, 4, 3, 2, 1, 2, 3, 4, 5};
  int32_t starts[9];
  ASSERT_EQ(ams_segment_valley(mass.data(), 9, 1, 100, starts, 9), 2);
  EXPECT_EQ(starts[1], 4);
  // A plateau at the bottom (two equal smoothed values) is not a strict minimum.
  const std::vector<float> flat = {4, 4, 4, 4, 4, 0, 4, 4, 4, 4, 4};  // sums ... 16 16 ...
  ASSERT_EQ(ams_segment_valley(flat.data(), 11, 1, 100, starts, 11), 1);
}

// ---- Step 5: quotas --------------------------------------------------------------------------

TEST(AmsQuotas, RoundsHalfToEvenThenWalksUp) {
  // minima 2 2, R = 5, add = round(2.5) = 2 each (half to even) -> 4 4 = 8 < 9;
  // up walk gives segment 0 one: 5 4. (Half up would give 3 3 -> 10 -> walk down: 4 5.)
  EXPECT_EQ(quotas({20, 20}, {0.5f, 0.5f}, 9, 2), (Ints{5, 4}));
}

TEST(AmsQuotas, WalksDownSkippingSegmentsAtTheirMinimum) {
  // minima 2 2 2, R = 3, add = 0, round(1.5) = 2, 2 -> 2 4 4 = 10 > 9;
  // down walk: segment 0 is at its minimum, segment 1 gives one: 2 3 4.
  EXPECT_EQ(quotas({10, 10, 10}, {0.0f, 0.5f, 0.5f}, 9, 2), (Ints{2, 3, 4}));
}

TEST(AmsQuotas, CapsAtLengthAndWalksUpAroundFullSegments) {
  // minima 2 2, R = 6, add = round(4.5) = 4, round(1.5) = 2 -> min(3, 6) = 3, 4 -> 7 < 10;
  // segment 0 is full, so segment 1 gets all three: 3 7.
  EXPECT_EQ(quotas({3, 20}, {0.75f, 0.25f}, 10, 2), (Ints{3, 7}));
}

TEST(AmsQuotas, MinimaAlreadyReachTarget) {
  // minima min(4, L) = 4 4 1 4 = 13 >= 8: trim one from each segment above 1, in order:
  // pass 1: 3 3 1 3 (10); pass 2: 2 (9), 2 (8), stop -> 2 2 1 3.
  EXPECT_EQ(quotas({10, 10, 1, 10}, {0.25f, 0.25f, 0.25f, 0.25f}, 8, 4), (Ints{2, 2, 1, 3}));
  // Everything at 1 and still above t_keep: nothing more to take (step 8 trims).
  EXPECT_EQ(quotas({5, 5, 5}, {0.3f, 0.3f, 0.4f}, 2, 1), (Ints{1, 1, 1}));
}

TEST(AmsQuotas, EqualShareWithoutMass) {
  // minima 2 2 2, R = 4, add = round(4/3) = 1 -> 3 3 3 = 9 < 10 -> walk up: 4 3 3.
  EXPECT_EQ(quotas({10, 10, 10}, {0.9f, 0.05f, 0.05f}, 10, 2, 0), (Ints{4, 3, 3}));
}

TEST(AmsQuotas, ZeroMinimumSharesAllByMass) {
  // min_keep 0: R = 6, add = 3 1.5->2 1.5->2 = 7 > 6 -> walk down: 2 2 2.
  EXPECT_EQ(quotas({10, 10, 10}, {0.5f, 0.25f, 0.25f}, 6, 0), (Ints{2, 2, 2}));
}

// ---- Steps 6 to 8 -------------------------------------------------------------------------------

TEST(AmsPick, TopBudgetPerSegmentTiesToLowerPosition) {
  const float scores[8] = {1, 3, 3, 2, 5, 5, 5, 0};
  const int32_t starts[2] = {0, 4};
  const int32_t budget[2] = {2, 2};
  int32_t picked[8];
  // Segment [0,4): 3@1, 3@2. Segment [4,8): three 5s, lower positions 4 and 5 win.
  ASSERT_EQ(ams_pick_in_segments(scores, 8, starts, budget, 2, picked), 4);
  std::sort(picked, picked + 4);
  EXPECT_EQ(Ints(picked, picked + 4), (Ints{1, 2, 4, 5}));
}

TEST(AmsMustKeep, LastFirstThenSinks) {
  // last = min(32, t_keep), sink = min(4, t_keep - last).
  EXPECT_EQ(ams_must_keep(10, 4, 32).n_last_kept, 10);
  EXPECT_EQ(ams_must_keep(10, 4, 32).n_sink_kept, 0);
  EXPECT_EQ(ams_must_keep(34, 4, 32).n_sink_kept, 2);
  EXPECT_EQ(ams_must_keep(40, 4, 32).n_sink_kept, 4);
  EXPECT_EQ(ams_must_keep(40, 4, 32).count(), 36);
}

TEST(AmsFinalSet, CrowdedCandidatesKeepTheBestScores) {
  // n 10, keep 5, sink 1 {0}, last 2 {8,9}: need 2. Picks 3 4 5 6 (none must-keep).
  // Scores of the picks: 3:.1 4:.9 5:.5 6:.9 -> 4 and 6 (tie at .9 irrelevant: both kept).
  const float scores[10] = {0, 0, 0, 0.1f, 0.9f, 0.5f, 0.9f, 0, 0, 0};
  int32_t picked[10] = {3, 4, 5, 6};
  uint8_t flags[10];
  int32_t kept[5];
  ams_final_set(scores, 10, 5, MustKeep{1, 2}, picked, 4, flags, kept);
  EXPECT_EQ(Ints(kept, kept + 5), (Ints{0, 4, 6, 8, 9}));
}

TEST(AmsFinalSet, FallbackFillsFromTheWholeRow) {
  // must {0,8,9}, picks {8, 2}: 8 is must-keep, so one candidate (2) for need 2. Fill with
  // the best free position of the row: scores make 5 the best (3 and 7 tie lower).
  const float scores[10] = {9, 0, 0, 1, 0, 4, 0, 1, 9, 9};
  int32_t picked[10] = {8, 2};
  uint8_t flags[10];
  int32_t kept[5];
  ams_final_set(scores, 10, 5, MustKeep{1, 2}, picked, 2, flags, kept);
  EXPECT_EQ(Ints(kept, kept + 5), (Ints{0, 2, 5, 8, 9}));
}

TEST(AmsFinalSet, FallbackTiesGoToLowerPosition) {
  const float scores[6] = {0, 1, 1, 1, 0, 0};
  int32_t picked[6] = {};
  uint8_t flags[6];
  int32_t kept[2];
  ams_final_set(scores, 6, 2, MustKeep{0, 0}, picked, 0, flags, kept);
  EXPECT_EQ(Ints(kept, kept + 2), (Ints{1, 2}));
}

// ---- Steps 2 and 3: mass and credit ----------------------------------------------------------

TEST(AmsMass, ReluEpsNormalize) {
  // relu + 1e-12: 1 3 1e-12 1e-12 -> / 4 -> .25 .75 2.5e-13 2.5e-13. The final renormalize
  // adds 1e-12 once more: the zeros end at 1.25e-12, the others do not move in float.
  const float win[4] = {1, 3, 0, -2};
  float mass[4];
  ams_mass(win, 4, nullptr, 0.8f, 0.7f, mass);
  EXPECT_FLOAT_EQ(mass[0], 0.25f);
  EXPECT_FLOAT_EQ(mass[1], 0.75f);
  EXPECT_GT(mass[2], 0.0f);
  EXPECT_NEAR(mass[3], 1.25e-12f, 1e-17f);
}

TEST(AmsMass, CreditEmaAndMix) {
  // mass_cur = .25 each. credit = .8 * (1 0 0 0) + .2 * .25 = .85 .05 .05 .05 (sum 1).
  // mass = .7 * .25 + .3 * credit = .43 .19 .19 .19 (sum 1).
  const float win[4] = {1, 1, 1, 1};
  float credit[4] = {1, 0, 0, 0};
  float mass[4];
  ams_mass(win, 4, credit, 0.8f, 0.7f, mass);
  EXPECT_NEAR(credit[0], 0.85f, 1e-6f);
  EXPECT_NEAR(credit[1], 0.05f, 1e-6f);
  EXPECT_NEAR(mass[0], 0.43f, 1e-6f);
  EXPECT_NEAR(mass[3], 0.19f, 1e-6f);
}

// ---- The whole event ---------------------------------------------------------------------------

TEST(AmsSelect, HandBuiltEvent) {
  // 16 tokens, uniform window -> mass 1/16 each (exact). cum[i] = (i+1)/16, so targets
  // .25 .5 .75 cut at 3 7 11 (left searchsorted: the token reaching the target starts the
  // next segment): [0,3) [3,7) [7,11) [11,16), masses 3/16 4/16 4/16 5/16.
  // keep 8: minima 1 each, R 4, add round(.75) round(1) round(1) round(1.25) = 1 1 1 1:
  // budgets 2 2 2 2. Picks: [0,3) scores 9 1 8 -> {0,2}; [3,7) 0 5 6 0 -> {4,5};
  // [7,11) 0 0 0 7 -> {10,7} (zeros tie: lowest position 7); [11,16) 3 0 0 1 2 -> {11,15}.
  // Must-keep {0} and {14,15}. Candidates {2,4,5,7,10,11} (scores 8 5 6 0 7 3), need 5:
  // 7 drops. Kept: 0 2 4 5 10 11 14 15.
  const amskv_ams_params p = small_params();
  const std::vector<float> win(16, 1.0f);
  const float sel[16] = {9, 1, 8, 0, 5, 6, 0, 0, 0, 0, 7, 3, 0, 0, 1, 2};
  int32_t kept[8];
  int32_t starts[8], quota[8];
  AmsTrace trace;
  trace.seg_start = starts;
  trace.seg_quota = quota;
  trace.capacity = 8;
  std::vector<unsigned char> ws(ams_workspace_bytes(16));
  ASSERT_EQ(ams_select(p, win.data(), sel, nullptr, 16, 8, kept, ws.data(), ws.size(), &trace),
            AMSKV_OK);
  EXPECT_EQ(Ints(kept, kept + 8), (Ints{0, 2, 4, 5, 10, 11, 14, 15}));
  ASSERT_EQ(trace.n_segs, 4);
  EXPECT_EQ(Ints(starts, starts + 4), (Ints{0, 3, 7, 11}));
  EXPECT_EQ(Ints(quota, quota + 4), (Ints{2, 2, 2, 2}));
  EXPECT_EQ(trace.n_wiped, 0);
}

TEST(AmsSelect, MustKeepCrowdsOutASegment) {
  // Same segments, keep 4 with sink 1 and last 2: budgets 1 1 1 1 (minima fill t_keep).
  // Picks: 0, 5, 10, 11. Must {0,14,15}: candidates {5,10,11}, need 1 -> 10 (score 7).
  // Segment [3,7) keeps nothing: wiped out.
  const amskv_ams_params p = small_params();
  const std::vector<float> win(16, 1.0f);
  const float sel[16] = {9, 1, 8, 0, 5, 6, 0, 0, 0, 0, 7, 3, 0, 0, 1, 2};
  int32_t kept[4];
  AmsTrace trace;
  std::vector<unsigned char> ws(ams_workspace_bytes(16));
  ASSERT_EQ(ams_select(p, win.data(), sel, nullptr, 16, 4, kept, ws.data(), ws.size(), &trace),
            AMSKV_OK);
  EXPECT_EQ(Ints(kept, kept + 4), (Ints{0, 10, 14, 15}));
  EXPECT_EQ(trace.n_segs, 4);
  EXPECT_EQ(trace.n_wiped, 1);
}

TEST(AmsSelect, CreditFollowsKeptTokens) {
  // Credit after the EMA is .8 c + .2 * mass_cur; the kept tokens' values come back in order.
  amskv_ams_params p = small_params();
  p.use_credit = 1;
  const float win[8] = {1, 2, 3, 4, 4, 3, 2, 1};
  const float sel[8] = {0, 5, 1, 4, 2, 3, 0, 0};
  float credit[8] = {0.1f, 0.2f, 0.3f, 0.0f, 0.1f, 0.2f, 0.0f, 0.0f};
  float updated[8];
  std::copy(credit, credit + 8, updated);
  float mass[8];
  ams_mass(win, 8, updated, p.credit_decay, p.mix_beta, mass);
  int32_t kept[5];
  ASSERT_EQ(amskv_ams_select(&p, win, sel, credit, 8, 5, kept), AMSKV_OK);
  for (int j = 0; j < 5; ++j) EXPECT_EQ(credit[j], updated[kept[j]]) << j;
  EXPECT_EQ(credit[5], updated[5]);  // the tail beyond n_keep holds the updated row
}

TEST(AmsSelect, DefaultParams) {
  const amskv_ams_params p = amskv_ams_params_default();
  EXPECT_FLOAT_EQ(p.segment_mass, 0.02f);
  EXPECT_EQ(p.min_seg_len, 32);
  EXPECT_EQ(p.max_seg_len, 1024);
  EXPECT_EQ(p.min_keep_per_segment, 8);
  EXPECT_EQ(p.n_sink, 4);
  EXPECT_EQ(p.always_keep_last, 32);
  EXPECT_EQ(p.use_credit, 1);
  EXPECT_FLOAT_EQ(p.credit_decay, 0.8f);
  EXPECT_FLOAT_EQ(p.mix_beta, 0.7f);
  EXPECT_EQ(p.use_mass, 1);
  EXPECT_EQ(p.segmenter, AMSKV_SEG_MASS);
  EXPECT_EQ(p.fixed_seg_len, 128);
  EXPECT_EQ(amskv_ams_workspace_bytes(0), 0u);
  EXPECT_EQ(amskv_ams_workspace_bytes(100), ams_workspace_bytes(100));
}

TEST(TopK, MustKeepThenBestTiesToLowerPosition) {
  // n 10, keep 5, sink 1 {0}, last 2 {8,9}; best of the rest: 7 (9), then 3 and 5 tie at 4:
  // 3 wins. Kept 0 3 7 8 9.
  const float scores[10] = {0, 1, 0, 4, 0, 4, 2, 9, 0, 0};
  int32_t kept[5];
  std::vector<unsigned char> ws(topk_workspace_bytes(10));
  topk_select(scores, 10, 5, 1, 2, kept, ws.data());
  EXPECT_EQ(Ints(kept, kept + 5), (Ints{0, 3, 7, 8, 9}));
}

// ---- Errors
// ---------------------------------------------------------------------------------------

struct ErrorCase {
  const char* name;
  amskv_status expected;
};

// Runs the workspace variant with one thing broken and checks credit and kept stay as they
// were.
class AmsErrors : public ::testing::Test {
 protected:
  static constexpr int kN = 64;
  amskv_ams_params p = amskv_ams_params_default();
  std::vector<float> win = std::vector<float>(kN, 1.0f);
  std::vector<float> sel = std::vector<float>(kN, 0.5f);
  std::vector<float> credit = std::vector<float>(kN, 0.25f);
  std::vector<int32_t> kept = std::vector<int32_t>(kN, -7);
  std::vector<unsigned char> ws = std::vector<unsigned char>(ams_workspace_bytes(kN));
  int n_tokens = kN;
  int n_keep = 16;

  amskv_status run(const amskv_ams_params* params, const float* w, const float* s, float* c,
                   int32_t* k, void* scratch, size_t bytes) {
    return amskv_ams_select_ws(params, w, s, c, n_tokens, n_keep, k, scratch, bytes);
  }
  amskv_status run() {
    return run(&p, win.data(), sel.data(), credit.data(), kept.data(), ws.data(), ws.size());
  }
  void expect_untouched() {
    for (float c : credit) ASSERT_EQ(c, 0.25f);
    for (int32_t k : kept) ASSERT_EQ(k, -7);
    EXPECT_GT(std::strlen(thread_error()), 0u);
  }
};

TEST_F(AmsErrors, BaselineSucceeds) {
  EXPECT_EQ(run(), AMSKV_OK);
}

TEST_F(AmsErrors, NullPointers) {
  float* c = credit.data();
  int32_t* k = kept.data();
  void* w = ws.data();
  EXPECT_EQ(run(nullptr, win.data(), sel.data(), c, k, w, ws.size()), AMSKV_E_NULL);
  EXPECT_EQ(run(&p, nullptr, sel.data(), c, k, w, ws.size()), AMSKV_E_NULL);
  EXPECT_EQ(run(&p, win.data(), nullptr, c, k, w, ws.size()), AMSKV_E_NULL);
  EXPECT_EQ(run(&p, win.data(), sel.data(), nullptr, k, w, ws.size()), AMSKV_E_NULL);
  EXPECT_EQ(run(&p, win.data(), sel.data(), c, nullptr, w, ws.size()), AMSKV_E_NULL);
  EXPECT_EQ(run(&p, win.data(), sel.data(), c, k, nullptr, ws.size()), AMSKV_E_NULL);
  EXPECT_EQ(amskv_ams_select(nullptr, win.data(), sel.data(), c, kN, 16, k), AMSKV_E_NULL);
  EXPECT_EQ(amskv_ams_select(&p, win.data(), nullptr, c, kN, 16, k), AMSKV_E_NULL);
  expect_untouched();
}

TEST_F(AmsErrors, CreditMayBeNullWithoutCredit) {
  p.use_credit = 0;
  EXPECT_EQ(run(&p, win.data(), sel.data(), nullptr, kept.data(), ws.data(), ws.size()), AMSKV_OK);
}

TEST_F(AmsErrors, BadCounts) {
  for (int bad_keep : {0, -1, kN + 1}) {
    n_keep = bad_keep;
    EXPECT_EQ(run(), AMSKV_E_INVALID) << bad_keep;
  }
  n_keep = 1;
  n_tokens = 0;
  EXPECT_EQ(run(), AMSKV_E_INVALID);
  n_tokens = -5;
  EXPECT_EQ(run(), AMSKV_E_INVALID);
  expect_untouched();
}

TEST_F(AmsErrors, BadParams) {
  const amskv_ams_params good = p;
  const float nan = std::numeric_limits<float>::quiet_NaN();
  auto expect_invalid = [&](const char* what) {
    EXPECT_EQ(run(), AMSKV_E_INVALID) << what;
    p = good;
  };
  p.segment_mass = 0.0f, expect_invalid("segment_mass 0");
  p.segment_mass = -0.1f, expect_invalid("segment_mass < 0");
  p.segment_mass = 1.0f, expect_invalid("segment_mass 1");
  p.segment_mass = nan, expect_invalid("segment_mass NaN");
  p.min_seg_len = 0, expect_invalid("min_seg_len 0");
  p.max_seg_len = 31, expect_invalid("max < min");
  p.min_keep_per_segment = -1, expect_invalid("min_keep < 0");
  p.n_sink = -1, expect_invalid("n_sink < 0");
  p.always_keep_last = -1, expect_invalid("keep_last < 0");
  const int bad_segmenter = 7;  // what a C caller could store; memcpy keeps the test defined
  std::memcpy(&p.segmenter, &bad_segmenter, sizeof(bad_segmenter));
  expect_invalid("segmenter");
  p.segmenter = AMSKV_SEG_FIXED, p.fixed_seg_len = 0, expect_invalid("fixed_seg_len 0");
  p.credit_decay = 1.0f, expect_invalid("decay 1");
  p.credit_decay = nan, expect_invalid("decay NaN");
  p.mix_beta = 1.5f, expect_invalid("beta > 1");
  expect_untouched();
  // Options that are off are not checked.
  p.segmenter = AMSKV_SEG_FIXED, p.segment_mass = 0.0f;
  EXPECT_EQ(run(), AMSKV_OK);
}

TEST_F(AmsErrors, NonFiniteInputs) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  const float inf = std::numeric_limits<float>::infinity();
  win[3] = nan;
  EXPECT_EQ(run(), AMSKV_E_NONFINITE);
  win[3] = inf;
  EXPECT_EQ(run(), AMSKV_E_NONFINITE);
  win[3] = 1.0f;
  sel[9] = nan;
  EXPECT_EQ(run(), AMSKV_E_NONFINITE);
  sel[9] = 0.5f;
  credit[5] = nan;
  EXPECT_EQ(run(), AMSKV_E_NONFINITE);
  credit[5] = 0.25f;
  expect_untouched();
  credit[5] = -1.0f;
  EXPECT_EQ(run(), AMSKV_E_INVALID);
  credit[5] = 0.25f;
  expect_untouched();
}

TEST_F(AmsErrors, InfiniteSelectionScoresStillRank) {
  p.always_keep_last = 2;  // else the last 32 >= n_keep positions fill the whole set
  sel[10] = std::numeric_limits<float>::infinity();
  sel[11] = -std::numeric_limits<float>::infinity();
  ASSERT_EQ(run(), AMSKV_OK);
  EXPECT_TRUE(std::binary_search(kept.begin(), kept.begin() + n_keep, 10));
}

TEST_F(AmsErrors, WorkspaceTooSmall) {
  EXPECT_EQ(run(&p, win.data(), sel.data(), credit.data(), kept.data(), ws.data(), ws.size() - 1),
            AMSKV_E_WORKSPACE);
  expect_untouched();
  std::vector<float> big(AMSKV_AMS_STACK_TOKENS + 1, 1.0f);
  std::vector<float> big_credit(big.size(), 0.25f);
  EXPECT_EQ(amskv_ams_select(&p, big.data(), big.data(), big_credit.data(), int(big.size()), 16,
                             kept.data()),
            AMSKV_E_WORKSPACE);
  for (float c : big_credit) ASSERT_EQ(c, 0.25f);
  expect_untouched();
}

// ---- Random cases against a plain restatement of the spec -------------------------------------

struct Reference {
  Ints seg_start, seg_len, budget, kept;
};

bool higher(const float* s, int a, int b) {
  return s[a] > s[b] || (s[a] == s[b] && a < b);
}

// Steps 4 to 8 straight from docs/ams.md, with vectors and full sorts; mass from ams_mass.
Reference reference_select(const amskv_ams_params& p, const std::vector<float>& mass,
                           const float* sel, int n_keep) {
  const int n = int(mass.size());
  std::vector<std::pair<int, int>> raw;  // [start, end)
  if (p.segmenter == AMSKV_SEG_MASS) {
    std::vector<float> cum(n);
    double acc = 0;
    for (int i = 0; i < n; ++i) cum[i] = float(acc += mass[i]);
    Ints cuts;
    for (int k = 1; double(k) * p.segment_mass < 1.0 - 1e-6; ++k) {
      const float target = float(double(k) * double(p.segment_mass));
      cuts.push_back(int(std::lower_bound(cum.begin(), cum.end(), target) - cum.begin()));
    }
    cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
    for (int32_t& c : cuts) c = std::max(1, std::min(c, n - 1));
    int prev = 0;
    for (int c : cuts) {
      if (c > prev) raw.push_back({prev, c}), prev = c;
    }
    if (n > prev) raw.push_back({prev, n});
  } else if (p.segmenter == AMSKV_SEG_FIXED) {
    for (int a = 0; a < n; a += p.fixed_seg_len)
      raw.push_back({a, std::min(n, a + p.fixed_seg_len)});
  } else {
    std::vector<float> sm(n);
    for (int i = 0; i < n; ++i) {
      float s = 0;
      for (int j = i - 2; j <= i + 2; ++j) s += (j >= 0 && j < n) ? mass[j] : 0.0f;
      sm[i] = s / 5.0f;
    }
    int prev = 0;
    for (int i = 1; i + 1 < n; ++i) {
      if (sm[i] < sm[i - 1] && sm[i] < sm[i + 1]) raw.push_back({prev, i}), prev = i;
    }
    raw.push_back({prev, n});
  }
  std::vector<std::pair<int, int>> split;
  for (auto [a, b] : raw) {
    for (; b - a > p.max_seg_len; a += p.max_seg_len) split.push_back({a, a + p.max_seg_len});
    split.push_back({a, b});
  }
  Reference r;
  for (size_t i = 0; i < split.size(); ++i) {
    auto [a, b] = split[i];
    while (b - a < p.min_seg_len && i + 1 < split.size()) b = split[++i].second;
    r.seg_start.push_back(a);
    r.seg_len.push_back(b - a);
  }
  const int segs = int(r.seg_start.size());
  std::vector<float> seg_mass(segs);
  for (int s = 0; s < segs; ++s) {
    double acc = 0;
    for (int i = 0; i < r.seg_len[s]; ++i) acc += mass[r.seg_start[s] + i];
    seg_mass[s] = float(acc);
  }
  r.budget.resize(segs);
  Ints mins(segs);
  int total = 0;
  for (int s = 0; s < segs; ++s)
    total += mins[s] = r.budget[s] = std::min(p.min_keep_per_segment, r.seg_len[s]);
  if (total >= n_keep) {
    for (bool changed = true; total > n_keep && changed;) {
      changed = false;
      for (int s = 0; s < segs && total > n_keep; ++s) {
        if (r.budget[s] > 1) --r.budget[s], --total, changed = true;
      }
    }
  } else {
    const int rem = n_keep - total;
    double msum = 0;
    for (float m : seg_mass) msum += m;
    total = 0;
    for (int s = 0; s < segs; ++s) {
      const double add = p.use_mass
                             ? std::nearbyint(float(rem) * seg_mass[s] / (float(msum) + 1e-12f))
                             : std::nearbyint(double(rem) / segs);
      total += r.budget[s] = int(std::min<double>(r.seg_len[s], mins[s] + add));
    }
    for (bool changed = true; total > n_keep && changed;) {
      changed = false;
      for (int s = 0; s < segs && total > n_keep; ++s) {
        if (r.budget[s] > mins[s]) --r.budget[s], --total, changed = true;
      }
    }
    for (bool changed = true; total < n_keep && changed;) {
      changed = false;
      for (int s = 0; s < segs && total < n_keep; ++s) {
        if (r.budget[s] < r.seg_len[s]) ++r.budget[s], ++total, changed = true;
      }
    }
  }
  auto by_score = [&](int a, int b) { return higher(sel, a, b); };
  Ints picks;
  for (int s = 0; s < segs; ++s) {
    Ints idx(r.seg_len[s]);
    std::iota(idx.begin(), idx.end(), r.seg_start[s]);
    std::sort(idx.begin(), idx.end(), by_score);
    picks.insert(picks.end(), idx.begin(), idx.begin() + r.budget[s]);
  }
  const int last = std::min(p.always_keep_last, n_keep);
  const int sink = std::min(p.n_sink, n_keep - last);
  auto is_must = [&](int i) { return i < sink || i >= n - last; };
  Ints cand;
  for (int i : picks) {
    if (!is_must(i)) cand.push_back(i);
  }
  const int need = n_keep - sink - last;
  if (int(cand.size()) < need) {
    Ints rest;
    for (int i = 0; i < n; ++i) {
      if (!is_must(i) && std::find(cand.begin(), cand.end(), i) == cand.end()) rest.push_back(i);
    }
    std::sort(rest.begin(), rest.end(), by_score);
    cand.insert(cand.end(), rest.begin(), rest.begin() + (need - int(cand.size())));
  }
  std::sort(cand.begin(), cand.end(), by_score);
  cand.resize(need);
  for (int i = 0; i < n; ++i) {
    if (is_must(i)) cand.push_back(i);
  }
  std::sort(cand.begin(), cand.end());
  r.kept = cand;
  return r;
}

struct RandomCase {
  amskv_ams_params p;
  std::vector<float> win, sel, credit;
  int n = 0, n_keep = 0;
};

RandomCase make_case(std::mt19937& rng, int max_n) {
  auto uniform = [&](int lo, int hi) { return std::uniform_int_distribution<int>(lo, hi)(rng); };
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  RandomCase c;
  c.n = uniform(1, max_n);
  c.n_keep = uniform(1, c.n);
  amskv_ams_params& p = c.p;
  p = amskv_ams_params_default();
  p.segment_mass = std::vector<float>{0.005f, 0.02f, 0.05f, 0.1f, 0.3f, 0.7f}[uniform(0, 5)];
  p.min_seg_len = uniform(1, 40);
  p.max_seg_len = p.min_seg_len + uniform(0, 150);
  p.min_keep_per_segment = uniform(0, 10);
  p.n_sink = uniform(0, 8);
  p.always_keep_last = uniform(0, 40);
  p.use_credit = uniform(0, 1);
  p.credit_decay = unit(rng) * 0.99f;
  p.mix_beta = unit(rng);
  p.use_mass = uniform(0, 3) != 0;
  p.segmenter = static_cast<amskv_segmenter>(uniform(0, 2));
  p.fixed_seg_len = uniform(1, 64);
  // Window scores: smooth, spiky, negative or all equal; selection scores with many ties.
  const int kind = uniform(0, 3);
  c.win.resize(c.n);
  c.sel.resize(c.n);
  c.credit.resize(c.n);
  for (int i = 0; i < c.n; ++i) {
    float w = unit(rng);
    if (kind == 1) w = unit(rng) < 0.05f ? 50.0f * unit(rng) : 0.01f * w;
    if (kind == 2) w = w - 0.5f;
    if (kind == 3) w = 1.0f;
    c.win[i] = w;
    c.sel[i] = float(uniform(0, 20)) / 4.0f;
    c.credit[i] = unit(rng) < 0.3f ? 0.0f : 0.01f * unit(rng);
  }
  return c;
}

TEST(AmsRandom, MatchesReferenceAndKeepsPromises) {
  std::mt19937 rng(20240611);
  const int kCases = 4000;
  for (int t = 0; t < kCases; ++t) {
    RandomCase c = make_case(rng, t % 10 == 0 ? 2000 : 300);
    SCOPED_TRACE(testing::Message() << "case " << t << " n " << c.n << " keep " << c.n_keep
                                    << " segmenter " << c.p.segmenter);
    const int n = c.n, n_keep = c.n_keep;
    float* credit_in = c.p.use_credit ? c.credit.data() : nullptr;

    // Expected credit after the EMA, and the mass the segmenters see.
    std::vector<float> updated = c.credit, mass(n);
    ams_mass(c.win.data(), n, credit_in ? updated.data() : nullptr, c.p.credit_decay, c.p.mix_beta,
             mass.data());
    const Reference ref = reference_select(c.p, mass, c.sel.data(), n_keep);

    std::vector<float> credit = c.credit;
    Ints kept(n_keep), starts(n), lens(n), quota(n);
    AmsTrace trace;
    trace.seg_start = starts.data();
    trace.seg_len = lens.data();
    trace.seg_quota = quota.data();
    trace.capacity = n;
    std::vector<unsigned char> ws(ams_workspace_bytes(n) + 3);
    // Misaligned workspace start: the selector aligns it itself.
    ASSERT_EQ(ams_select(c.p, c.win.data(), c.sel.data(), credit_in ? credit.data() : nullptr, n,
                         n_keep, kept.data(), ws.data() + 3, ws.size() - 3, &trace),
              AMSKV_OK);
    const int segs = trace.n_segs;
    starts.resize(segs);
    lens.resize(segs);
    quota.resize(segs);
    ASSERT_EQ(starts, ref.seg_start);
    ASSERT_EQ(lens, ref.seg_len);
    ASSERT_EQ(quota, ref.budget);
    ASSERT_EQ(kept, ref.kept);

    // Segments tile [0, n); all but the last reach min_seg_len; merges add at most one
    // short run to pieces no longer than max_seg_len.
    ASSERT_EQ(starts[0], 0);
    ASSERT_EQ(std::accumulate(lens.begin(), lens.end(), 0), n);
    for (int s = 0; s < segs; ++s) {
      if (s + 1 < segs) {
        ASSERT_GE(lens[s], c.p.min_seg_len);
        ASSERT_EQ(starts[s] + lens[s], starts[s + 1]);
      }
      ASSERT_LE(lens[s], c.p.max_seg_len + c.p.min_seg_len - 1);
    }
    // Exactly n_keep unique ascending positions, must-keep included.
    for (int j = 0; j < n_keep; ++j) {
      ASSERT_TRUE(kept[j] >= 0 && kept[j] < n);
      if (j > 0) {
        ASSERT_LT(kept[j - 1], kept[j]);
      }
    }
    const MustKeep must = ams_must_keep(n_keep, c.p.n_sink, c.p.always_keep_last);
    for (int i = 0; i < must.n_sink_kept; ++i) ASSERT_EQ(kept[i], i);
    for (int i = 0; i < must.n_last_kept; ++i) ASSERT_EQ(kept[n_keep - 1 - i], n - 1 - i);

    // Quotas: when the minima fit, budgets lie in [min, L] and sum to n_keep. Each segment
    // then keeps its budget except for the picks must-keep positions crowd out.
    int sum_min = 0;
    for (int s = 0; s < segs; ++s) sum_min += std::min(c.p.min_keep_per_segment, lens[s]);
    Ints kept_in(segs, 0);
    for (int s = 0, j = 0; s < segs; ++s) {
      for (; j < n_keep && kept[j] < starts[s] + lens[s]; ++j) ++kept_in[s];
    }
    if (sum_min < n_keep) {
      ASSERT_EQ(std::accumulate(quota.begin(), quota.end(), 0), n_keep);
      for (int s = 0; s < segs; ++s) {
        const int min_s = std::min(c.p.min_keep_per_segment, lens[s]);
        ASSERT_GE(quota[s], min_s);
        ASSERT_LE(quota[s], lens[s]);
        ASSERT_GE(kept_in[s], quota[s] - must.count());
        if (must.count() == 0) {
          ASSERT_EQ(kept_in[s], quota[s]);
        }
      }
    }
    int wiped = 0;
    for (int s = 0; s < segs; ++s) wiped += kept_in[s] == 0;
    ASSERT_EQ(trace.n_wiped, wiped);
    ASSERT_EQ(ams_count_wiped(starts.data(), segs, n, kept.data(), n_keep), wiped);

    // Credit comes back gathered in kept order.
    if (credit_in) {
      for (int j = 0; j < n_keep; ++j) ASSERT_EQ(credit[j], updated[kept[j]]);
    }

    // The C variants agree with each other and repeat exactly.
    if (n <= AMSKV_AMS_STACK_TOKENS) {
      for (int rep = 0; rep < 2; ++rep) {
        std::vector<float> credit2 = c.credit;
        Ints kept2(n_keep, -1);
        ASSERT_EQ(amskv_ams_select(&c.p, c.win.data(), c.sel.data(),
                                   credit_in ? credit2.data() : nullptr, n, n_keep, kept2.data()),
                  AMSKV_OK);
        ASSERT_EQ(kept2, kept);
        ASSERT_EQ(credit2, credit);
      }
    }
  }
}

TEST(AmsRandom, DefaultParamsAtFullStackSize) {
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> unit(0.0f, 1.0f);
  const amskv_ams_params p = amskv_ams_params_default();
  for (int n : {AMSKV_AMS_STACK_TOKENS, 5000}) {
    std::vector<float> win(n), sel(n), credit(n, 0.0f);
    for (int i = 0; i < n; ++i) win[i] = unit(rng) < 0.02f ? 1.0f : 0.001f * unit(rng);
    for (int i = 0; i < n; ++i) sel[i] = unit(rng);
    const int n_keep = n / 4;
    Ints kept(n_keep);
    std::vector<unsigned char> ws(amskv_ams_workspace_bytes(n));
    std::vector<float> credit_ws = credit;
    ASSERT_EQ(amskv_ams_select_ws(&p, win.data(), sel.data(), credit_ws.data(), n, n_keep,
                                  kept.data(), ws.data(), ws.size()),
              AMSKV_OK);
    EXPECT_TRUE(std::is_sorted(kept.begin(), kept.end()));
    EXPECT_EQ(kept.back(), n - 1);
    if (n <= AMSKV_AMS_STACK_TOKENS) {
      Ints kept2(n_keep);
      ASSERT_EQ(
          amskv_ams_select(&p, win.data(), sel.data(), credit.data(), n, n_keep, kept2.data()),
          AMSKV_OK);
      EXPECT_EQ(kept2, kept);
      EXPECT_EQ(credit, credit_ws);
    }
  }
}

TEST(TopKRandom, MatchesSortedReference) {
  std::mt19937 rng(99);
  for (int t = 0; t < 3000; ++t) {
    const int n = std::uniform_int_distribution<int>(1, 400)(rng);
    const int n_keep = std::uniform_int_distribution<int>(1, n)(rng);
    const int sink = std::uniform_int_distribution<int>(0, 6)(rng);
    const int last = std::uniform_int_distribution<int>(0, 40)(rng);
    std::vector<float> scores(n);
    for (float& s : scores) s = float(std::uniform_int_distribution<int>(0, 30)(rng));
    Ints kept(n_keep);
    std::vector<unsigned char> ws(topk_workspace_bytes(n));
    topk_select(scores.data(), n, n_keep, sink, last, kept.data(), ws.data());
    // Reference: must-keep, then a full sort of the rest by (score desc, position asc).
    const MustKeep must = ams_must_keep(n_keep, sink, last);
    Ints expect, rest;
    for (int i = 0; i < n; ++i) {
      const bool is_must = i < must.n_sink_kept || i >= n - must.n_last_kept;
      (is_must ? expect : rest).push_back(i);
    }
    std::sort(rest.begin(), rest.end(), [&](int a, int b) { return higher(scores.data(), a, b); });
    expect.insert(expect.end(), rest.begin(), rest.begin() + (n_keep - must.count()));
    std::sort(expect.begin(), expect.end());
    ASSERT_EQ(kept, expect) << "case " << t;
  }
}

TEST(TopKRandom, SharedPicksMatchTheSortedReference) {
  std::mt19937 rng(123);
  for (int t = 0; t < 3000; ++t) {
    const int n = std::uniform_int_distribution<int>(1, 400)(rng);
    const int n_keep = std::uniform_int_distribution<int>(1, n)(rng);
    const int sink = std::uniform_int_distribution<int>(0, 6)(rng);
    const int last = std::uniform_int_distribution<int>(0, 40)(rng);
    const int n_first = std::uniform_int_distribution<int>(0, n_keep + 3)(rng);
    std::vector<float> first(n), scores(n);
    for (float& s : first) s = float(std::uniform_int_distribution<int>(0, 30)(rng));
    for (float& s : scores) s = float(std::uniform_int_distribution<int>(0, 30)(rng));
    Ints kept(n_keep);
    std::vector<unsigned char> ws(topk_workspace_bytes(n));
    topk_select_shared(first.data(), n_first, scores.data(), n, n_keep, sink, last, kept.data(),
                       ws.data());
    // Reference: must-keep, then the n_first best of `first`, then the best of `scores`.
    const MustKeep must = ams_must_keep(n_keep, sink, last);
    Ints expect, rest;
    for (int i = 0; i < n; ++i) {
      const bool is_must = i < must.n_sink_kept || i >= n - must.n_last_kept;
      (is_must ? expect : rest).push_back(i);
    }
    std::sort(rest.begin(), rest.end(), [&](int a, int b) { return higher(first.data(), a, b); });
    const size_t n_top = std::min<size_t>(n_first, n_keep - must.count());
    expect.insert(expect.end(), rest.begin(), rest.begin() + n_top);
    rest.erase(rest.begin(), rest.begin() + n_top);
    std::sort(rest.begin(), rest.end(), [&](int a, int b) { return higher(scores.data(), a, b); });
    expect.insert(expect.end(), rest.begin(), rest.begin() + (n_keep - must.count() - n_top));
    std::sort(expect.begin(), expect.end());
    ASSERT_EQ(kept, expect) << "case " << t;
  }
}

}  // namespace
}  // namespace amskv
