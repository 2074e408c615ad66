//===- MLIRGen.h - resolved job to the mllm dialect -------------*- C++ -*-===//
#ifndef MLLM_MLIRGEN_MLIRGEN_H
#define MLLM_MLIRGEN_MLIRGEN_H

#include "mllm/Sema/Spec.h"
#include "mllm/Support/Diagnostics.h"

#include "mlir/IR/BuiltinOps.h"
#include "mlir/IR/OwningOpRef.h"

namespace mllm {

/// Emits the job as a builtin.module of mllm ops whose locations point into
/// the spec. Returns null (after reporting) if the result fails to verify,
/// which is a compiler bug, not a user error.
mlir::OwningOpRef<mlir::ModuleOp> mlirGen(const spec::Job &job,
                                          Diagnostics &diags);

} // namespace mllm

#endif // MLLM_MLIRGEN_MLIRGEN_H
