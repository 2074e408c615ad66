//===- DeviceRun.h - mllm-run --backend=cuda -------------------*- C++ -*-===//
#ifndef MLLM_TOOLS_MLLM_RUN_DEVICERUN_H
#define MLLM_TOOLS_MLLM_RUN_DEVICERUN_H

#include "mllm/runtime/Comm.h"
#include "mllm/runtime/exec/Data.h"
#include "mllm/runtime/exec/Model.h"
#include "mllm/runtime/exec/RankRunner.h"

#include <chrono>
#include <cstdint>
#include <string>

namespace mllm {

struct DeviceRunOptions {
  int64_t total = 0; ///< Train until this many steps are done.
  bool json = false;
  uint64_t seed = 0;
  /// As mllm-run's flags of the same names.
  std::string checkpointDir, initFile;
  int64_t checkpointEvery = 0;
  int64_t keepLast = 0; ///< --keep-last (0: keep every checkpoint)
  bool saveInitial = false, resume = false;
  /// --eval (a held-out manifest), --eval-every, --strict.
  std::string evalFile;
  int64_t evalEvery = 0;
  /// --generate (a prompt manifest; under mpirun every rank runs its
  /// share, with whole replicas a sample per process), --max-tokens.
  std::string generateFile;
  int64_t maxTokens = 0;
  /// Generation keeps the earlier tokens' keys (not --no-kv-cache).
  bool keyCache = true;
  bool strictData = false;
  /// --tokenizer: a SentencePiece model (empty: byte-level).
  std::string tokenizer;
  /// --trace FILE (pipeline stages): the last step's actions on every rank.
  std::string traceFile;
  /// --data: the manifest the ranks read (their late decode failures are
  /// reported while their runner holds the data set).
  std::string dataFile;
  /// Bounds NCCL's initialisation and every collective (--timeout).
  std::chrono::milliseconds timeout{std::chrono::seconds(120)};
  /// --attention-kernel=registers: the register-tile attention kernels
  /// (kernels::cuda::AttentionKernel::Registers) instead of the staged ones.
  bool registerAttention = false;
};

/// How --eval and --generate read their manifests (the seed, --strict).
inline runtime::data::DataOptions
heldOutOptions(const DeviceRunOptions &options) {
  runtime::data::DataOptions o;
  o.seed = options.seed;
  o.strict = options.strictData;
  o.tokenizer.sentencePieceModel = options.tokenizer;
  return o;
}

/// Trains `model` on one GPU (device::DeviceTrainer), reporting and writing
/// checkpoints as the CPU run does. With `world` (mpirun, one process per
/// data-parallel replica): on one GPU per process, the gradients summed
/// over NCCL; rank 0 reports and writes the checkpoints. Returns the exit
/// status.
int runOnDevice(runtime::exec::Model &model, runtime::exec::DataSource &data,
                const DeviceRunOptions &options,
                runtime::Comm *world = nullptr);

/// Trains this rank's stage of `plan` on its GPU (device::DeviceRankRunner)
/// under mpirun with the plan's world size: messages, the replicas' and
/// the tied head's sums over NCCL bootstrapped from `world`; rank 0
/// reports. A failing rank aborts the job. Returns the exit status.
int runPipelineOnDevice(const runtime::Plan &plan,
                        const DeviceRunOptions &options, runtime::Comm &world,
                        const runtime::exec::RankRunner::DataFactory &makeData);

} // namespace mllm

#endif // MLLM_TOOLS_MLLM_RUN_DEVICERUN_H
