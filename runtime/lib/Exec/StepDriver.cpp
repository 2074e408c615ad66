//===- StepDriver.cpp - running a program's actions in order --------------===//
#include "mllm/runtime/exec/StepDriver.h"

using namespace mllm::runtime::exec;

ProgramRunner::~ProgramRunner() = default;
StepDriver::~StepDriver() = default;

static StepDriverFactory &factoryStorage() {
  static StepDriverFactory factory;
  return factory;
}

void mllm::runtime::exec::setStepDriverFactory(StepDriverFactory factory) {
  factoryStorage() = std::move(factory);
}

llvm::Expected<std::unique_ptr<StepDriver>>
mllm::runtime::exec::makeStepDriver(const ProgramRunner &runner) {
  if (const StepDriverFactory &factory = factoryStorage())
    return factory(runner);
  return nullptr;
}
