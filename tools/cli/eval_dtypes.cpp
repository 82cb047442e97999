// What amskv eval knows of each KV dtype: one row per amskv_dtype, in enum order.
#include "tools/cli/eval.h"

namespace amskv {
namespace eval {

namespace {
const DtypeLook kLooks[] = {
    {0, "1 3"},       // f32
    {1, ""},          // f16
    {2, "6 3"},       // q8
    {4, "10 3 2 3"},  // q4
    {3, "2 2"},       // k8v4
    {4, "4 2 1 2"},   // q4h: q4's bytes
};
constexpr int kLookCount = (int)(sizeof kLooks / sizeof *kLooks);
}  // namespace

const DtypeLook* dtype_look(amskv_dtype dtype) {
  return dtype >= 0 && dtype < kLookCount ? &kLooks[dtype] : nullptr;
}

}  // namespace eval
}  // namespace amskv
