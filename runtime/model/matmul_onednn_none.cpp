// Builds without oneDNN (AMSKV_ONEDNN off, or no oneDNN found, as on armhf): no plan, and
// every product runs on the project's own kernels.
#include <string>

#include "runtime/model/matmul.h"

namespace amskv {

bool onednn_available(std::string* why) {
  if (why) *why = "onednn: this build has no oneDNN (AMSKV_ONEDNN)";
  return false;
}
OnednnPlan* onednn_plan_create(const Matrix* const*, int, int, int, std::string* err) {
  onednn_available(err);
  return nullptr;
}
void onednn_plan_destroy(OnednnPlan*) {}
size_t onednn_plan_bytes(const OnednnPlan*) {
  return 0;
}
int onednn_plan_batch(const OnednnPlan*) {
  return 0;
}
bool onednn_matmul(OnednnPlan*, const MatmulOut*, int, const float*, int, int) {
  return false;
}

}  // namespace amskv
