//===- StatisticABI.h - llvm::Statistic as LLVM has it ----------*- C++ -*-===//
//
// Included first in every C++ file (-include, top-level CMakeLists.txt) when
// our code keeps its assertions (no NDEBUG) against an LLVM/MLIR built
// without them, as Debian's are. llvm::Statistic's layout follows NDEBUG
// (LLVM_ENABLE_STATS): MLIR's Pass::Statistic, constructed in libMLIR, is a
// NoopStatistic there, while our passes would use the same object as a
// TrackingStatistic: UBSan's invalid bool load on every run, and counters
// that no report sees. Reading Statistic.h once with NDEBUG defined gives
// every file LLVM's layout; <cassert> is read again after, so assert() keeps
// our setting.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_SUPPORT_STATISTICABI_H
#define MLLM_SUPPORT_STATISTICABI_H

#ifndef NDEBUG
#define NDEBUG
#include "llvm/ADT/Statistic.h"
#undef NDEBUG
#include <cassert>
#endif

#endif // MLLM_SUPPORT_STATISTICABI_H
