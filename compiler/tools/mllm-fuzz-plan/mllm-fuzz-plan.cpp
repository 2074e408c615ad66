//===- mllm-fuzz-plan.cpp - libFuzzer target for the plan reader ----------===//
//
// Feeds arbitrary bytes to the plan file reader (runtime::readPlan, docs/
// plan-format.md) as mllm-sim and the runtime read a plan, and writes back
// what it accepts. Any crash, sanitizer report, hang or runaway allocation
// is a bug: a plan file must only ever be accepted or refused with a
// located error.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/PlanIO.h"

#include <cstddef>
#include <cstdint>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  llvm::StringRef text(reinterpret_cast<const char *>(data), size);
  llvm::Expected<mllm::runtime::Plan> plan =
      mllm::runtime::readPlan(text, "fuzz.yaml");
  if (!plan) {
    llvm::consumeError(plan.takeError());
    return 0;
  }
  (void)mllm::runtime::writePlan(*plan);
  return 0;
}
