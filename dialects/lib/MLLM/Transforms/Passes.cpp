//===- Passes.cpp - Registration of the mllm passes -----------------------===//

#include "mllm/Dialect/MLLM/Transforms/Passes.h"

void mllm::registerAllMllmPasses() { registerMLLMPasses(); }
