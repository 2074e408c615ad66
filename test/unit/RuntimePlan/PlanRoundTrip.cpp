//===- PlanRoundTrip.cpp - read a plan file and write it again ------------===//
//
// A test tool: reads a plan with the runtime's reader (checking it) and
// writes it back with the writer, ignoring the recorded content hash with
// --ignore-hash, so lit can compare the bytes and check the reader's
// errors.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/PlanIO.h"

#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/raw_ostream.h"

#include <cstring>

int main(int argc, char **argv) {
  bool ignoreHash = false;
  const char *path = nullptr;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--ignore-hash") == 0)
      ignoreHash = true;
    else
      path = argv[i];
  }
  if (!path) {
    llvm::errs() << "usage: mllm-plan-roundtrip [--ignore-hash] PLAN.yaml\n";
    return 2;
  }
  auto buffer = llvm::MemoryBuffer::getFileOrSTDIN(path);
  if (!buffer) {
    llvm::errs() << path << ": " << buffer.getError().message() << "\n";
    return 1;
  }
  std::string text = (*buffer)->getBuffer().str();
  if (ignoreHash) {
    // Drop the hash line so an edited plan is read.
    size_t at = text.find("\nhash:");
    if (at != std::string::npos)
      text.erase(at + 1, text.find('\n', at + 1) - at);
  }
  auto plan = mllm::runtime::readPlan(text, path);
  if (!plan) {
    llvm::errs() << llvm::toString(plan.takeError()) << "\n";
    return 1;
  }
  llvm::outs() << mllm::runtime::writePlan(*plan);
  return 0;
}
