#include "tools/cli/policies.h"

namespace amskv {
namespace cli {

const char* const kFull = "full";
const char* const kStreaming = "streaming";

bool is_policy_kind(const std::string& name) {
  return name == kFull || name == kStreaming;
}

std::vector<const amskv_scorer_info*> scorers() {
  std::vector<const amskv_scorer_info*> out;
  for (int i = 0; i < amskv_scorer_count(); ++i) out.push_back(amskv_scorer_at(i));
  return out;
}

std::string reference_scorer() {
  return amskv_scorer_at(0)->name;
}

std::string default_policy() {
  return "ams:" + reference_scorer();
}

std::vector<const amskv_scorer_info*> topk_scorers() {
  std::vector<const amskv_scorer_info*> out;
  for (const amskv_scorer_info* s : scorers())
    if (!is_policy_kind(s->name)) out.push_back(s);
  return out;
}

std::vector<std::string> importance_scorers() {
  std::vector<std::string> out;
  for (const amskv_scorer_info* s : scorers())
    if (!s->baseline) out.push_back(s->name);
  return out;
}

namespace {

// full, then each baseline scorer by its name (a top-k policy, or the kind of that name).
std::vector<std::string> full_and_baselines() {
  std::vector<std::string> out = {kFull};
  for (const amskv_scorer_info* s : scorers())
    if (s->baseline) out.push_back(s->name);
  return out;
}

void add_both(const std::string& scorer, std::vector<std::string>* out) {
  out->push_back(scorer);
  out->push_back("ams:" + scorer);
}

}  // namespace

std::vector<std::string> eval_policies() {
  std::vector<std::string> out = full_and_baselines();
  for (const std::string& s : importance_scorers()) add_both(s, &out);
  // No EMA credit, no guaranteed quota, no mass-proportional share, fixed-length regions.
  for (const char* off : {",credit=0", ",min_keep=0", ",mass=0", ",segmenter=fixed", ",apart=1"})
    out.push_back(default_policy() + off);
  out.push_back(reference_scorer() + ",chunk=16");  // top-k keeping whole chunks
  return out;
}

std::vector<std::string> frontier_policies() {
  std::vector<std::string> out = {kFull, kStreaming};
  add_both(reference_scorer(), &out);
  out.push_back(default_policy() + ",apart=1");
  return out;
}

std::vector<std::string> quick_policies() {
  std::vector<std::string> out = full_and_baselines();
  for (const std::string evidence : {"attention", "keys", "surprisal"})
    for (const amskv_scorer_info* s : scorers())
      if (!s->baseline && s->evidence == evidence) {
        add_both(s->name, &out);
        break;
      }
  return out;
}

std::string policy_help() {
  std::string names;
  for (const amskv_scorer_info* s : scorers())
    names += std::string(names.empty() ? "" : ", ") + s->name;
  return std::string(kFull) + ", " + kStreaming +
         ", <scorer> (global top-k) or ams:<scorer>, then ,key=value options (docs/guide.md); "
         "scorers: " +
         names;
}

}  // namespace cli
}  // namespace amskv
