//===- DeviceRun.h - mllm-run --backend=cuda -------------------*- C++ -*-===//
#ifndef MLLM_TOOLS_MLLM_RUN_DEVICERUN_H
#define MLLM_TOOLS_MLLM_RUN_DEVICERUN_H

#include "mllm/runtime/exec/Data.h"
#include "mllm/runtime/exec/Model.h"

#include <cstdint>
#include <string>

namespace mllm {

struct DeviceRunOptions {
  int64_t total = 0; ///< Train until this many steps are done.
  bool json = false;
  uint64_t seed = 0;
  /// As mllm-run's flags of the same names.
  std::string checkpointDir, initFile;
  int64_t checkpointEvery = 0;
  bool saveInitial = false, resume = false;
};

/// Trains `model` on one GPU (device::DeviceTrainer), reporting and writing
/// checkpoints as the CPU run does. Returns the exit status.
int runOnDevice(runtime::exec::Model &model, runtime::exec::DataSource &data,
                const DeviceRunOptions &options);

} // namespace mllm

#endif // MLLM_TOOLS_MLLM_RUN_DEVICERUN_H
