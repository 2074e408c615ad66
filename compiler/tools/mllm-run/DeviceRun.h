//===- DeviceRun.h - mllm-run --backend=cuda -------------------*- C++ -*-===//
#ifndef MLLM_TOOLS_MLLM_RUN_DEVICERUN_H
#define MLLM_TOOLS_MLLM_RUN_DEVICERUN_H

#include "mllm/runtime/exec/Data.h"
#include "mllm/runtime/exec/Model.h"

#include <cstdint>

namespace mllm {

/// Trains `model` for `total` steps on one GPU (device::DeviceTrainer),
/// reporting as the CPU run does. Returns the exit status.
int runOnDevice(runtime::exec::Model &model, runtime::exec::DataSource &data,
                int64_t total, bool json);

} // namespace mllm

#endif // MLLM_TOOLS_MLLM_RUN_DEVICERUN_H
