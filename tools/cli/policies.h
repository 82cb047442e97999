// Policy strings the CLI makes, all derived from the library's scorer table
// (amskv_scorer_count / amskv_scorer_at), so a scorer added there shows up in every default
// list, help text and test here without a change.
#pragma once

#include <string>
#include <vector>

#include "amskv/amskv.h"

namespace amskv {
namespace cli {

// The policy kinds that are not scorers: the whole cache, and sinks plus recency. A bare
// scorer name equal to a kind is that kind, not global top-k.
extern const char* const kFull;
extern const char* const kStreaming;
bool is_policy_kind(const std::string& name);

std::vector<const amskv_scorer_info*> scorers();  // table order
std::string reference_scorer();                   // the table's first: the project's reference
std::string default_policy();                     // "ams:" + the reference scorer

// Scorers that global top-k can name (every scorer that is not a policy kind).
std::vector<const amskv_scorer_info*> topk_scorers();
// Scorers that estimate importance (baseline 0), in table order.
std::vector<std::string> importance_scorers();

// amskv eval --policy all: full; the baselines; each importance scorer as top-k and as ams:;
// the AMS ablations on the reference scorer.
std::vector<std::string> eval_policies();
// amskv eval's default, run in each default dtype: full, streaming, the reference scorer as
// top-k and as ams:, and AMS with its mass from the tokens before the window only.
std::vector<std::string> frontier_policies();
// amskv eval --quick: full, the baselines, and the first attention scorer and the first key
// scorer, each as top-k and as ams:.
std::vector<std::string> quick_policies();

// For --help: the policy grammar with the scorer names of this build.
std::string policy_help();

}  // namespace cli
}  // namespace amskv
