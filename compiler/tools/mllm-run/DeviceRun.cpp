//===- DeviceRun.cpp - mllm-run --backend=cuda ----------------------------===//
#include "DeviceRun.h"
#include "Report.h"

#include "mllm/runtime/device/DeviceTrainer.h"
#include "mllm/runtime/exec/Checkpoint.h"

#include "llvm/Support/FileSystem.h"
#include "llvm/Support/Format.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/raw_ostream.h"

#include <map>

using namespace mllm;
using namespace mllm::runtime;

static int fail(const llvm::Twine &message) {
  llvm::errs() << "mllm-run: error: " << message << "\n";
  return 1;
}

int mllm::runOnDevice(exec::Model &model, exec::DataSource &data,
                      const DeviceRunOptions &options) {
  if (!options.initFile.empty()) {
    std::vector<std::string> unused, missing;
    if (llvm::Error e = exec::initFromWeights(options.initFile, model.params,
                                              unused, missing))
      return fail(llvm::toString(std::move(e)));
    reportInit(options.initFile, unused, missing, options.json);
  }
  auto made = device::DeviceTrainer::create(model, data);
  if (!made)
    return fail(llvm::toString(made.takeError()));
  device::DeviceTrainer &trainer = **made;
  const std::string &dir = options.checkpointDir;
  if (options.resume) {
    if (dir.empty())
      return fail("--resume needs --checkpoint-dir");
    std::string path = exec::newestCheckpoint(dir);
    if (path.empty())
      return fail("--resume: no checkpoint in '" + dir + "'");
    if (llvm::Error e = trainer.load(path))
      return fail(llvm::toString(std::move(e)));
    reportResume(path, trainer.stepsDone(), trainer.loadedOtherPlan(),
                 options.json);
  }
  if (!dir.empty())
    if (std::error_code ec = llvm::sys::fs::create_directories(dir))
      return fail("cannot create '" + dir + "': " + ec.message());
  auto checkpoint = [&]() -> llvm::Error {
    llvm::SmallString<256> path(dir);
    llvm::sys::path::append(path, exec::checkpointName(trainer.stepsDone(),
                                                       /*sharded=*/false));
    return trainer.save(path, options.seed);
  };
  if (options.saveInitial && !dir.empty() && trainer.stepsDone() == 0)
    if (llvm::Error e = checkpoint())
      return fail(llvm::toString(std::move(e)));

  Progress progress(model.plan(), model, options.total, /*threads=*/1,
                    options.json);
  progress.start(trainer.stepsDone());
  while (trainer.stepsDone() < options.total) {
    auto stats = trainer.step();
    if (!stats)
      return fail(llvm::toString(stats.takeError()));
    progress.step(*stats);
    bool last = trainer.stepsDone() == options.total;
    bool every = options.checkpointEvery > 0 &&
                 trainer.stepsDone() % options.checkpointEvery == 0;
    if (!dir.empty() && (last || every))
      if (llvm::Error e = checkpoint())
        return fail(llvm::toString(std::move(e)));
  }
  progress.finish();
  // The arena the steps ran in: planned and measured (equal once a step
  // ran), and what each kind of buffer takes.
  const sched::MemoryPlan &memory = trainer.memoryPlan();
  std::map<std::string, int64_t> kinds;
  for (const sched::Buffer &b : memory.buffers)
    kinds.emplace(sched::bufferKindName(b.kind), b.bytes);
  if (options.json) {
    llvm::json::Object arena{{"event", "arena"},
                             {"arena_bytes", memory.arenaBytes},
                             {"measured_bytes", trainer.measuredArenaBytes()}};
    for (const auto &[kind, bytes] : kinds)
      arena[kind] = bytes;
    llvm::outs() << llvm::json::Value(std::move(arena)) << "\n";
    return 0;
  }
  auto mib = [](int64_t bytes) { return bytes / (1024.0 * 1024.0); };
  llvm::outs() << llvm::format("device arena: %.1f MiB planned, %.1f MiB "
                               "used at the peak;",
                               mib(memory.arenaBytes),
                               mib(trainer.measuredArenaBytes()));
  for (const auto &[kind, bytes] : kinds)
    llvm::outs() << llvm::format(" %s %.1f", kind.c_str(), mib(bytes));
  llvm::outs() << " (MiB; saved and workspace: per microbatch and action)\n";
  return 0;
}
