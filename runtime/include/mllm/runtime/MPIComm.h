//===- MPIComm.h - the communication interface over MPI ---------*- C++ -*-===//
//
// Comm (Comm.h) on MPI-3's C API, for the CPU backend: plain point-to-point
// and non-blocking collectives that any MPI-3 library provides (OpenMPI,
// MPICH), launched by mpirun, mpiexec or SLURM's srun. Every operation is
// non-blocking underneath and waited by polling against a deadline, so a
// peer that never answers is an error naming it, not a hang.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_MPICOMM_H
#define MLLM_RUNTIME_MPICOMM_H

#include "mllm/runtime/Comm.h"
#include "mllm/runtime/Launcher.h"

#include <chrono>

namespace mllm::runtime {

/// Initialises MPI and returns the world; `timeout` bounds every wait.
/// MPI is finalised when the returned object is destroyed.
llvm::Expected<std::unique_ptr<Comm>>
initMPI(int *argc, char ***argv, std::chrono::milliseconds timeout);

/// Ends the whole job now with `code` (MPI_Abort): the launcher stops every
/// other rank. For a rank that failed, after it printed why.
[[noreturn]] void abortMPI(int code);

} // namespace mllm::runtime

#endif // MLLM_RUNTIME_MPICOMM_H
