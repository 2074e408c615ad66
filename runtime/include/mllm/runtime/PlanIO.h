//===- PlanIO.h - the plan file: one reader, one writer ---------*- C++ -*-===//
//
// The YAML form of a Plan (docs/plan-format.md, version 3), written through
// yaml-cpp's emitter and read back with yaml-cpp. Writing, reading and
// writing again gives the same bytes. The reader reports every problem as
// `FILE:LINE:COL: error: ...`: an unknown version, a missing key, a value of
// the wrong type, and an inconsistent plan (ranks outside the world, groups
// that disagree with the ranks, a peer that is not a program, a send without
// its receive or a schedule that deadlocks, a content hash that does not
// match).
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_PLANIO_H
#define MLLM_RUNTIME_PLANIO_H

#include "mllm/runtime/Plan.h"

#include "llvm/Support/Error.h"

#include <string>

namespace mllm::runtime {

/// The plan as YAML. The `hash.plan` it records is planContentHash(plan),
/// whatever plan.planHash holds.
std::string writePlan(const Plan &plan);

/// SHA-256 (hex) of the plan's YAML without its `hash` section: what ranks
/// compare to agree that they run the same plan.
std::string planContentHash(const Plan &plan);

/// Limits of what the reader accepts, so that a hostile file is an error
/// rather than a stack overflow or an allocation that never ends.
/// The job's bounds are the spec's (docs/language.md, "Bounds"; the
/// compiler's Driver checks that they equal bounds::), so that a plan the
/// compiler could not write is not read either.
struct PlanReadLimits {
  int64_t maxBytes = 256 << 20;
  int64_t maxNesting = 64;
  int64_t maxWorldSize = int64_t(1) << 24;
  int64_t maxActions = int64_t(1) << 26;
  /// A group's layer count (bounds::kMaxLayers).
  int64_t maxLayers = 4096;
  /// Any integer of a layer's config (bounds::kMaxInt).
  int64_t maxConfigInt = int64_t(1) << 31;
  /// bounds::kMaxMicrobatchSize, kMaxMicrobatches, kMaxTokensPerMicrobatch.
  int64_t maxMicrobatchSize = int64_t(1) << 16;
  int64_t maxMicrobatches = int64_t(1) << 16;
  int64_t maxTokensPerMicrobatch = int64_t(1) << 40;
};

/// Parses and checks `text`; `fileName` names it in errors.
llvm::Expected<Plan> readPlan(llvm::StringRef text, llvm::StringRef fileName,
                              const PlanReadLimits &limits = {});
/// readPlan() of a file.
llvm::Expected<Plan> readPlanFile(llvm::StringRef path,
                                  const PlanReadLimits &limits = {});

/// Whether `text` looks like a plan file (a YAML mapping with a `version`
/// key before any other), to tell it from a spec or IR.
bool looksLikePlan(llvm::StringRef text);

} // namespace mllm::runtime

#endif // MLLM_RUNTIME_PLANIO_H
