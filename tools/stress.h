// amskv stress: the budget stress test users run on their target (tools/stress.cpp).
#pragma once

namespace amskv {

int stress_main(int argc, char** argv);

}  // namespace amskv
