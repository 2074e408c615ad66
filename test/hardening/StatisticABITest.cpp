//===- StatisticABITest.cpp - llvm::Statistic as libMLIR has it -----------===//
//
// Our code keeps its assertions (no NDEBUG) while Debian's LLVM/MLIR are
// built without them. llvm::Statistic's layout follows NDEBUG, and MLIR's
// Pass::Statistic objects are constructed in libMLIR: unless our files see
// the same layout (compiler/include/mllm/Support/StatisticABI.h), every pass
// with a statistic reads an uninitialised bool (UBSan) and
// --mlir-pass-statistics reports nothing it counted (issue 15). This file is
// compiled with the project's flags; it fails when the layouts differ.
//
//===----------------------------------------------------------------------===//
#include "mlir/Pass/Pass.h"

#include <cstdio>
#include <type_traits>

int main() {
  constexpr bool noop = std::is_same_v<llvm::Statistic, llvm::NoopStatistic>;
  if (noop == static_cast<bool>(MLLM_EXPECT_NOOP_STATISTIC))
    return 0;
  std::fprintf(stderr,
               "llvm::Statistic is a %s here but a %s in the installed "
               "LLVM/MLIR: the pass statistics' layout differs\n",
               noop ? "NoopStatistic" : "TrackingStatistic",
               noop ? "TrackingStatistic" : "NoopStatistic");
  return 1;
}
