//===- Checkpoint.h - training state in safetensors files -------*- C++ -*-===//
//
// A checkpoint is one safetensors file (the one-process run) or a directory
// of shards, one per rank that owns parameters (a parallel run); tensors
// are named the same way in both (`model.NAME`, `optim.NAME.exp_avg`,
// `optim.NAME.exp_avg_sq`), so either kind restores either run of the same
// plan. docs/checkpoints.md documents the format.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_EXEC_CHECKPOINT_H
#define MLLM_RUNTIME_EXEC_CHECKPOINT_H

#include "mllm/runtime/exec/Model.h"
#include "mllm/runtime/exec/Optimizer.h"

#include "llvm/Support/Error.h"

#include <optional>

namespace mllm::runtime::exec {

/// What a checkpoint holds besides tensors.
struct CheckpointInfo {
  int64_t step = 0;
  uint64_t seed = 0;
  /// modelSignature() of the model it holds.
  std::string modelSignature;
  /// DataSource::identity() of the batches trained on.
  std::string data;
};

/// What a checkpoint must match to restore a run under another plan: every
/// parameter's name, shape and whether it trains, and the optimizer
/// (SHA-256, hex). Plans that differ only in parallelism, schedule or data
/// layout have the same signature.
std::string modelSignature(const Model &model);
/// Every layer group of the plan, a line each: `part.group kind xN` and its
/// config (heads, head_dim, position, activation, ...): what parameter
/// shapes do not show. Written as a checkpoint's `layers` metadata, so that
/// one written for a model that differs only there is refused on --resume.
std::string layersDescription(const Plan &plan);

/// One tensor of a checkpoint (the caller keeps `data` alive).
struct CheckpointTensor {
  std::string name;
  std::vector<int64_t> shape;
  llvm::ArrayRef<float> data;
};

/// The tensors that hold `params` and the optimizer's moments (names as
/// above; a TP shard under its own shape: the caller assembles full tensors
/// of shards, RankRunner::save).
std::vector<CheckpointTensor>
checkpointTensors(llvm::ArrayRef<NamedParam> params,
                  const Optimizer &optimizer);

/// Writes `tensors` with the metadata of `plan` and `info` to `path`
/// atomically (a temporary file renamed into place).
llvm::Error writeCheckpointTensors(llvm::StringRef path, const Plan &plan,
                                   llvm::ArrayRef<CheckpointTensor> tensors,
                                   const CheckpointInfo &info);

/// Writes `params` and the optimizer's moments to `path` atomically.
llvm::Error writeCheckpoint(llvm::StringRef path, const Plan &plan,
                            llvm::ArrayRef<NamedParam> params,
                            const Optimizer &optimizer,
                            const CheckpointInfo &info);

/// What readCheckpoint() restored.
struct Restored {
  int64_t step = 0;
  /// Written under another plan of the same model (another parallel
  /// layout, schedule or data layout): re-sharded by name.
  bool otherPlan = false;
  /// The identity of its data ("" when the checkpoint does not say).
  std::string data;
  /// The seed it was trained with, when it says.
  std::optional<uint64_t> seed;
};

/// Refuses to continue `restored` on other data than it was trained on
/// (`data`: this run's DataSource::identity()). `seed`, this run's where
/// the caller knows it, keeps the hint about the seed to a seed that
/// differs.
llvm::Error checkSameData(const Restored &restored, llvm::StringRef data,
                          llvm::StringRef path,
                          std::optional<uint64_t> seed = std::nullopt);

/// Restores `params` and the optimizer's moments from the checkpoint at
/// `path` (a file, or a directory of shards; tensors are whole, a TP shard
/// reads its part of them) written for the same model
/// (`signature`, modelSignature()) under this plan or another; refuses
/// another model's, saying what differs.
llvm::Expected<Restored> readCheckpoint(llvm::StringRef path, const Plan &plan,
                                        llvm::ArrayRef<NamedParam> params,
                                        Optimizer &optimizer,
                                        llvm::StringRef signature);

/// Initialises parameters from released weights: every tensor of `path`
/// (a safetensors file, or a directory of them such as a parallel
/// checkpoint's shards) whose name is a parameter's (with or without the
/// `model.` prefix) is loaded; a shape mismatch is an error. `unused` receives
/// the file's tensors that match no parameter, `missing` the parameters the
/// file does not have.
llvm::Error initFromWeights(llvm::StringRef path,
                            llvm::ArrayRef<NamedParam> params,
                            std::vector<std::string> &unused,
                            std::vector<std::string> &missing);
/// What initFromWeights reports for `params`, from the files' headers
/// alone: a parallel run's report for the whole model (every rank lists
/// every parameter's name, and loads only its own share).
llvm::Error weightsCoverage(llvm::StringRef path,
                            llvm::ArrayRef<NamedParam> params,
                            std::vector<std::string> &unused,
                            std::vector<std::string> &missing);

/// The name of the checkpoint after `step` steps: `step-%08d.safetensors`
/// (a file) or `step-%08d` (a directory of shards).
std::string checkpointName(int64_t step, bool sharded);
/// The newest checkpoint in `dir` (by the step in its name), or "".
/// Unfinished ones (`.step-*.partial`) are ignored.
std::string newestCheckpoint(llvm::StringRef dir);
/// Creates `dir` if needed and takes an exclusive lock on `dir/.lock` for
/// the rest of the process (flock: the kernel drops it when the process
/// ends, however it ends). Another run on the same directory would
/// overwrite its checkpoints step by step, and its start would remove the
/// files this one is writing. One process of a job calls it; the error
/// says when the directory cannot be written, or which process holds it.
llvm::Error lockCheckpointDir(llvm::StringRef dir);
/// The seed the run that wrote the checkpoint at `path` (a file, or a
/// directory of shards) trained with; std::nullopt when it does not say.
std::optional<uint64_t> checkpointSeed(llvm::StringRef path);
/// Where the checkpoint at `path` was trained under other settings than
/// `plan`'s that shape training but not the parameters (learning rate,
/// weight decay, replicas, batch and sequence sizes: its `training`
/// metadata), each that differs, "lr 0.003 -> 0.0005, microbatches 2 -> 4";
/// std::nullopt when they agree or it does not say (older checkpoints).
std::optional<std::string> checkpointSettingsDiffer(llvm::StringRef path,
                                                    const Plan &plan);
/// Where the checkpoint at `path` was written for other layers than
/// `plan`'s (heads, positions, ...: its `layers` metadata), the first group
/// both have whose layers differ, "'A' there, 'B' in this run's plan";
/// std::nullopt when they agree or it does not say (released weights,
/// older checkpoints). Groups only one side has are not compared.
std::optional<std::string> checkpointLayersDiffer(llvm::StringRef path,
                                                  const Plan &plan);
/// Removes what checkpoints killed mid-write left in `dir` (a parallel
/// one's `.step-N.partial/`, a file's `step-N.safetensors.tmp-XXXXXXXX`)
/// and returns their names. Only one process of a job may call it, before
/// its first checkpoint.
std::vector<std::string> removeCheckpointLeftovers(llvm::StringRef dir);
/// --keep-last: removes the checkpoints of `dir` (files and directories of
/// shards named as checkpointName() makes them) but the `keep` newest by
/// step and `written`, the one just written, whatever its step. Returns the
/// names removed; `failure` says why the first that could not be, if any
/// (a warning: the run goes on).
std::vector<std::string> removeOlderCheckpoints(llvm::StringRef dir,
                                                int64_t keep,
                                                llvm::StringRef written,
                                                std::string &failure);

} // namespace mllm::runtime::exec

#endif // MLLM_RUNTIME_EXEC_CHECKPOINT_H
