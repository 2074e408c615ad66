//===- Launcher.h - whether mpirun or srun started this process -*- C++ -*-===//
//
// Header-only, so that tools built without MPI ask too: a launcher's ranks
// have a terminal of their own even where the job's output is a file.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_LAUNCHER_H
#define MLLM_RUNTIME_LAUNCHER_H

#include <cstdlib>

namespace mllm::runtime {

/// Whether a launcher (mpirun, mpiexec, srun) started this process: the
/// environment variables OpenMPI, MPICH/PMI, PMIx and SLURM set.
inline bool launchedByLauncher() {
  for (const char *var : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK",
                          "PMI_SIZE", "SLURM_PROCID"})
    if (std::getenv(var))
      return true;
  return false;
}

} // namespace mllm::runtime

#endif // MLLM_RUNTIME_LAUNCHER_H
