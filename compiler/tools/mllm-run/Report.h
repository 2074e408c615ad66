//===- Report.h - what mllm-run prints --------------------------*- C++ -*-===//
//
// One line per step (step/total, loss, tokens/s, ms/step, ETA), a progress
// bar when standard output is a terminal, or one JSON object per line with
// --json; at the end, the measured peak memory next to the plan's estimate.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_TOOLS_MLLMRUN_REPORT_H
#define MLLM_TOOLS_MLLMRUN_REPORT_H

#include "mllm/runtime/exec/Trainer.h"

#include <string>
#include <vector>

namespace mllm {

class Progress {
public:
  Progress(const runtime::Plan &plan, const runtime::exec::Model &model,
           int64_t total, int threads, bool json);
  /// The header, before the first step (`from`: steps already done).
  void start(int64_t from);
  void step(const runtime::exec::StepStats &stats);
  /// The summary: steps, time, peak memory vs the plan's estimate.
  void finish();

private:
  const runtime::Plan &plan;
  const runtime::exec::Model &model;
  int64_t total, from = 0, ran = 0;
  int threads;
  bool json, tty;
  double seconds = 0;
  double lastLoss = 0;
};

void reportInit(const std::string &file, const std::vector<std::string> &unused,
                const std::vector<std::string> &missing, bool json);
void reportResume(const std::string &file, int64_t step, bool json);

} // namespace mllm

#endif // MLLM_TOOLS_MLLMRUN_REPORT_H
