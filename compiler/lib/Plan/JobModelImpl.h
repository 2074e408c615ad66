//===- JobModelImpl.h - the job model's parts, internal ---------*- C++ -*-===//
//
// Internal to MLLMPlan: buildJobModel (JobModel.cpp) reads the job and the
// frozen analysis; buildParts (JobParts.cpp) prices every part.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_LIB_PLAN_JOBMODELIMPL_H
#define MLLM_LIB_PLAN_JOBMODELIMPL_H

#include "mllm/Plan/JobModel.h"

#include <vector>

namespace mllm::detail {

/// Every encoder's PartInfo, in model order, then the LLM's, with their
/// partition units priced on `job.device`.
std::vector<PartInfo>
buildParts(mlir::ModuleOp module, JobModel &job,
           const llvm::DenseMap<mlir::Operation *, GroupGrads> &grads,
           const JobModelOptions &options);

} // namespace mllm::detail

#endif // MLLM_LIB_PLAN_JOBMODELIMPL_H
