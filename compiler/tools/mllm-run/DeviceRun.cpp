//===- DeviceRun.cpp - mllm-run --backend=cuda ----------------------------===//
#include "DeviceRun.h"
#include "Report.h"

#include "mllm/runtime/device/DeviceTrainer.h"

#include "llvm/Support/raw_ostream.h"

using namespace mllm;
using namespace mllm::runtime;

int mllm::runOnDevice(exec::Model &model, exec::DataSource &data, int64_t total,
                      bool json) {
  auto trainer = device::DeviceTrainer::create(model, data);
  if (!trainer) {
    llvm::errs() << "mllm-run: error: " << llvm::toString(trainer.takeError())
                 << "\n";
    return 1;
  }
  Progress progress(model.plan(), model, total, /*threads=*/1, json);
  progress.start(0);
  while ((*trainer)->stepsDone() < total) {
    auto stats = (*trainer)->step();
    if (!stats) {
      llvm::errs() << "mllm-run: error: " << llvm::toString(stats.takeError())
                   << "\n";
      return 1;
    }
    progress.step(*stats);
  }
  progress.finish();
  if (!json)
    llvm::outs() << "device memory: "
                 << (*trainer)->deviceBytes() / (1024 * 1024)
                 << " MiB (weights, gradients, optimizer state, one "
                    "microbatch's activations)\n";
  return 0;
}
