//===- RankCheckpoint.cpp - a rank's shard of a checkpoint ----------------===//
#include "RankImpl.h"

#include "mllm/runtime/SafeTensors.h"
#include "mllm/runtime/exec/Checkpoint.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

llvm::Error exec::writeShardedCheckpoint(
    Group &world, int rank, llvm::StringRef dir, int64_t step,
    const std::function<llvm::Error(llvm::StringRef shard)> &writeShard) {
  llvm::SmallString<256> partial(dir), final(dir), shard;
  llvm::sys::path::append(partial,
                          "." + checkpointName(step, true) + ".partial");
  llvm::sys::path::append(final, checkpointName(step, true));
  auto error = [&](const llvm::Twine &m) {
    return llvm::make_error<RankError>(rank, "checkpoint: " + m.str());
  };
  // A barrier (with the group's deadline).
  auto barrier = [&]() {
    double one = 1;
    return world.allReduceSum(&one, 1);
  };
  // Rank 0 prepares the directory; everyone writes; rank 0 renames it into
  // place only when every rank reported success.
  double ok = 1;
  if (rank == 0) {
    llvm::sys::fs::remove_directories(partial);
    if (std::error_code ec = llvm::sys::fs::create_directories(partial)) {
      ok = 0;
      llvm::errs() << "rank 0: cannot create '" << partial
                   << "': " << ec.message() << "\n";
    }
  }
  if (llvm::Error e = barrier())
    return error(llvm::toString(std::move(e)));
  std::string why;
  if (writeShard) {
    shard = partial;
    llvm::sys::path::append(
        shard, llvm::formatv("rank-{0:d5}.safetensors", rank).str());
    if (llvm::Error e = writeShard(shard)) {
      why = llvm::toString(std::move(e));
      ok = 0;
    }
  }
  double all = ok;
  if (llvm::Error e = world.allReduceSum(&all, 1))
    return error(llvm::toString(std::move(e)));
  if (!why.empty())
    return error(why);
  if (all != world.size())
    return error("another rank failed to write its shard; nothing was "
                 "written for step " +
                 llvm::Twine(step));
  if (rank == 0) {
    llvm::sys::fs::remove_directories(final);
    if (std::error_code ec = llvm::sys::fs::rename(partial, final))
      why = "renaming '" + partial.str().str() + "': " + ec.message();
    // Durable before anything relies on it (--keep-last removes the older
    // checkpoints next): the shards were fsync'ed as they were written.
    else if (std::error_code ec = syncDirectory(dir))
      why = "'" + final.str().str() +
            "' is in place, but its directory could not be fsync'ed, so it "
            "may not survive a crash: " +
            ec.message();
  }
  if (llvm::Error e = barrier())
    return error(llvm::toString(std::move(e)));
  if (!why.empty())
    return error(why);
  return llvm::Error::success();
}

llvm::Error exec::writeTensorParallelCheckpoint(
    llvm::StringRef path, const Plan &plan, llvm::ArrayRef<NamedParam> params,
    const Optimizer &optimizer, const CheckpointInfo &info, Group *tp) {
  // TP shards are assembled into whole tensors (each rank's runs of a zero
  // tensor, summed over the TP group), written by TP rank 0: a checkpoint
  // does not depend on the parallel layout.
  std::vector<CheckpointTensor> tensors = checkpointTensors(params, optimizer);
  std::map<std::string, const cpu::Param<float> *> byName;
  for (const NamedParam &p : params)
    byName["model." + p.name] = p.param;
  for (const Optimizer::Slot &slot : optimizer.slots()) {
    byName["optim." + slot.name + ".exp_avg"] = slot.param;
    byName["optim." + slot.name + ".exp_avg_sq"] = slot.param;
  }
  std::vector<std::vector<float>> whole;
  whole.reserve(tensors.size());
  for (CheckpointTensor &t : tensors) {
    const cpu::Param<float> *p = byName[t.name];
    if (!p || p->shard.dim < 0 || !tp)
      continue;
    std::vector<int64_t> shape = cpu::fullShape(p->shard, p->value.shape);
    int64_t n = 1;
    for (int64_t d : shape)
      n *= d;
    whole.emplace_back(static_cast<size_t>(n), 0.0f);
    for (const cpu::ShardRun &r : cpu::shardRuns(p->shard, p->value.shape))
      std::copy_n(t.data.data() + r.local, r.length,
                  whole.back().data() + r.full);
    if (llvm::Error e = tp->allReduceSum(whole.back().data(), n))
      return llvm::createStringError(
          llvm::inconvertibleErrorCode(),
          "assembling '" + t.name +
              "' over the TP group: " + llvm::toString(std::move(e)));
    t.shape = shape;
    t.data = whole.back();
  }
  if (tp && tp->rank() != 0)
    return llvm::Error::success();
  return writeCheckpointTensors(path, plan, tensors, info);
}

llvm::Error RankRunner::save(llvm::StringRef dir) {
  Impl &s = *impl;
  setActivity("writing the checkpoint of step %lld",
              static_cast<long long>(done));
  if (s.coord.d != 0 || s.coord.c != 0 || owned.empty())
    return writeShardedCheckpoint(*s.world, s.rank, dir, done, nullptr);
  auto write = [&](llvm::StringRef shard) {
    return writeTensorParallelCheckpoint(
        shard, model.plan(), owned, optimizer,
        {done, seed, modelSignature(model), data.identity()}, s.tp.get());
  };
  return writeShardedCheckpoint(*s.world, s.rank, dir, done, write);
}

llvm::Error RankRunner::load(llvm::StringRef path) {
  auto restored = readCheckpoint(path, model.plan(), owned, optimizer,
                                 modelSignature(model));
  if (!restored)
    return llvm::make_error<RankError>(impl->rank,
                                       llvm::toString(restored.takeError()));
  if (llvm::Error e = checkSameData(*restored, data.identity(), path, seed))
    return llvm::make_error<RankError>(impl->rank,
                                       llvm::toString(std::move(e)));
  done = restored->step;
  resharded = restored->otherPlan;
  stepsAgreed = false;
  return llvm::Error::success();
}
