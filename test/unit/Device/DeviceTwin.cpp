//===- DeviceTwin.cpp - the device executor on the CUDA host twin ---------===//
//
// mllm-device-twin PLAN [--steps N] [--save FILE] [--checkpoint FILE]
// [--resume FILE]: trains PLAN's model, to N steps in all, with
// device::DeviceTrainer linked against the host twin of the CUDA libraries
// (kernels/lib/cudahost), on the CPU, from the same seed and synthetic data
// as `mllm-run PLAN`, and prints one JSON line per step in mllm-run --json's
// form, then the arena it trained in (DeviceTrainer::memoryPlan); --save
// writes the trained weights as a checkpoint's "model.*"
// tensors, --checkpoint a checkpoint (DeviceTrainer::save), --resume starts
// from one. test/runtime/compare_runs.py compares runs. Test tool:
// it checks the executor's logic where no GPU is; the kernels' own numerics
// are the GPU tests'.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/PlanIO.h"
#include "mllm/runtime/SafeTensors.h"
#include "mllm/runtime/device/DeviceTrainer.h"
#include "mllm/runtime/exec/Data.h"

#include "llvm/Support/CommandLine.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

using namespace mllm;
using namespace mllm::runtime;

static llvm::cl::opt<std::string> planFile(llvm::cl::Positional,
                                           llvm::cl::desc("<plan.yaml>"),
                                           llvm::cl::Required);
static llvm::cl::opt<int64_t> steps("steps", llvm::cl::desc("Steps to train"),
                                    llvm::cl::init(3));
static llvm::cl::opt<std::string>
    saveFile("save", llvm::cl::desc("Write the trained weights here"));
static llvm::cl::opt<std::string>
    checkpointFile("checkpoint",
                   llvm::cl::desc("Write a checkpoint here after training"));
static llvm::cl::opt<std::string>
    resumeFile("resume", llvm::cl::desc("Start from this checkpoint"));

static int fail(const llvm::Twine &message) {
  llvm::errs() << "mllm-device-twin: " << message << "\n";
  return 1;
}

int main(int argc, char **argv) {
  llvm::cl::ParseCommandLineOptions(argc, argv, "mllm-device-twin\n");
  auto plan = readPlanFile(planFile);
  if (!plan)
    return fail(llvm::toString(plan.takeError()));
  uint64_t seed = plan->train.seed;
  auto model = exec::Model::build(*plan, seed);
  if (!model)
    return fail(llvm::toString(model.takeError()));
  exec::SyntheticData data(**model, seed);
  auto trainer = device::DeviceTrainer::create(**model, data);
  if (!trainer)
    return fail(llvm::toString(trainer.takeError()));
  if (!resumeFile.empty())
    if (llvm::Error e = (*trainer)->load(resumeFile))
      return fail(llvm::toString(std::move(e)));
  while ((*trainer)->stepsDone() < steps) {
    auto stats = (*trainer)->step();
    if (!stats)
      return fail(llvm::toString(stats.takeError()));
    llvm::outs() << llvm::json::Value(
                        llvm::json::Object{{"event", "step"},
                                           {"step", stats->step},
                                           {"loss", stats->loss},
                                           {"tokens", stats->tokens}})
                 << "\n";
  }
  // The arena: its planned size, the highest byte the steps used, and one
  // buffer of each kind (saved and workspace buffers repeat per microbatch
  // and action).
  const sched::MemoryPlan &memory = (*trainer)->memoryPlan();
  llvm::json::Object arena{{"event", "arena"},
                           {"arena_bytes", memory.arenaBytes},
                           {"measured_bytes", (*trainer)->measuredArenaBytes()},
                           {"unshared_bytes", memory.unsharedBytes()}};
  for (const sched::Buffer &b : memory.buffers)
    if (!arena.get(sched::bufferKindName(b.kind)))
      arena[sched::bufferKindName(b.kind)] = b.bytes;
  llvm::outs() << llvm::json::Value(std::move(arena)) << "\n";
  if (!checkpointFile.empty())
    if (llvm::Error e = (*trainer)->save(checkpointFile, seed))
      return fail(llvm::toString(std::move(e)));
  if (saveFile.empty())
    return 0;
  if (llvm::Error e = (*trainer)->downloadParams())
    return fail(llvm::toString(std::move(e)));
  SafeTensorsWriter writer;
  for (const exec::NamedParam &p : (*model)->params)
    writer.add("model." + p.name, p.param->value.shape, p.param->value.data);
  if (llvm::Error e = writer.write(saveFile))
    return fail(llvm::toString(std::move(e)));
  return 0;
}
