// Flag tables: each subcommand lists its flags once (name, value, help, where the value goes)
// and that list both parses argv and prints the subcommand's --help, with the defaults taken
// from the targets before parsing. The flags several subcommands share are made here.
#pragma once

#include <cstddef>
#include <string>
#include <vector>

#include "amskv/amskv.h"

namespace amskv {
namespace cli {

enum class FlagKind { kString, kLong, kFloat, kSize, kSwitch, kDtype, kList };

struct Flag {
  const char* name;   // "--kv-budget", "-n"
  const char* value;  // what it takes, for --help ("SIZE"); "" for a switch
  std::string help;   // what it does
  FlagKind kind;
  void* target;         // std::string, long, float, size_t, bool, amskv_dtype or vector of strings
  long lo = 0, hi = 0;  // kLong: accepted range
  float flo = 0, fhi = 0;               // kFloat: accepted range
  char sep = 0;                         // kList: split at sep, replacing; 0: each use adds one
  const char* choices = nullptr;        // kList: the accepted words, space-separated
  bool* given = nullptr;                // set when the flag is on the command line
  const char* shown_default = nullptr;  // --help shows this instead of the target's value
};

Flag string_flag(const char* name, const char* value, std::string help, std::string* t,
                 bool* given = nullptr);
Flag long_flag(const char* name, const char* value, std::string help, long* t, long lo, long hi);
Flag float_flag(const char* name, const char* value, std::string help, float* t, float lo,
                float hi);
Flag size_flag(const char* name, const char* value, std::string help, size_t* t);
Flag switch_flag(const char* name, std::string help, bool* t);
Flag dtype_flag(const char* name, std::string help, amskv_dtype* t);
// The first use replaces the default: with sep, by the items of the value; without, by the
// value, and later uses add theirs.
Flag list_flag(const char* name, const char* value, std::string help, std::vector<std::string>* t,
               char sep, bool* given = nullptr);

// The same flag with --help showing `what` as its default (for defaults made later).
Flag shown_as(Flag f, const char* what);
// The same list flag taking only these words (space-separated).
Flag only(Flag f, const char* words);

// Shared flags, bound to the caller's target (whose value is the default --help shows).
Flag model_flag(std::string* t);
Flag threads_flag(long* t, std::string help = "threads");
Flag kv_budget_flag(size_t* t);
Flag onednn_flag(bool* t);
Flag kv_dtype_flag(amskv_dtype* t);
Flag policy_flag(std::string* t, std::string help = "eviction policy");
Flag policies_flag(std::vector<std::string>* t, std::string help, bool* given);  // repeatable
Flag seed_flag(long* t, std::string help = "seed");

struct Spec {
  const char* name;   // the subcommand
  const char* usage;  // what follows "amskv NAME" in --help
  const char* about;  // what it does, lines ending in '\n'
  std::vector<Flag> flags;
  std::vector<std::string>* positional = nullptr;  // bare arguments; nullptr: none taken
};

// Parses argv[0..argc) into the targets. false when the caller is done: *rc is 0 after
// --help (printed on stdout), kUsage after a mistake (one line on stderr).
bool parse(int argc, char** argv, const Spec& spec, int* rc);

// The --help text of a spec, with the current target values as defaults.
std::string help(const Spec& spec);

// "bad value 'v' for FLAG: expected WANT" on stderr; returns kUsage.
int bad_value(const std::string& flag, const std::string& v, const std::string& want);

// "a, b or c".
std::string join_or(const std::vector<std::string>& words);

// The library's KV dtypes by name, in enum order.
std::vector<std::string> dtype_names();

}  // namespace cli
}  // namespace amskv
