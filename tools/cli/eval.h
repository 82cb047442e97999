// amskv eval: quality, region wipe-out and cost of every policy at the same budgets on the
// real model (docs/results.md), and the task-file generator for its recall task.
#pragma once

namespace amskv {

int eval_main(int argc, char** argv);        // amskv eval ...
int recall_gen_main(int argc, char** argv);  // amskv recall-gen ...
int bench_main(int argc, char** argv);       // amskv bench ...

}  // namespace amskv
