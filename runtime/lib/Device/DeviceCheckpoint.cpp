//===- DeviceCheckpoint.cpp - the device executor's checkpoints -----------===//
//
// A checkpoint of the device executor is the CPU backend's: the fp32
// master weights and the AdamW moments come back to the host into the CPU
// model's parameters and an exec::Optimizer, and exec/Checkpoint writes
// them; load goes the other way. A run on either backend resumes the
// other's.
//
//===----------------------------------------------------------------------===//
#include "DeviceImpl.h"

#include "mllm/runtime/exec/Checkpoint.h"

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::device;

/// The host optimizer's slot of `p`.
static exec::Optimizer::Slot *slotOf(exec::Optimizer &optimizer,
                                     const DeviceParam &p) {
  for (exec::Optimizer::Slot &s : optimizer.slots())
    if (s.param == p.host)
      return &s;
  return nullptr;
}

/// The host optimizer, made on first use: its slots hold the moments of a
/// checkpoint, as the CPU Trainer's do.
static exec::Optimizer &hostOptimizer(DeviceTrainer::Impl &s) {
  if (!s.host) {
    s.host = std::make_unique<exec::Optimizer>(s.model->plan().train);
    for (const exec::NamedParam &p : s.model->params)
      s.host->add(p.param, p.name);
  }
  return *s.host;
}

llvm::Error DeviceTrainer::save(llvm::StringRef path, uint64_t seed) {
  Impl &s = *impl;
  if (llvm::Error e = downloadParams())
    return e;
  exec::Optimizer &optimizer = hostOptimizer(s);
  for (auto &p : s.params) {
    exec::Optimizer::Slot *slot = slotOf(optimizer, *p);
    if (!slot || !p->trains)
      continue;
    slot->m.resize(static_cast<size_t>(p->n));
    slot->v.resize(static_cast<size_t>(p->n));
    for (auto [to, from] : {std::pair{slot->m.data(), p->expAvg},
                            std::pair{slot->v.data(), p->expAvgSq}})
      if (llvm::Error e =
              check(cudaStatus(cudaMemcpy(to, from, p->n * sizeof(float),
                                          cudaMemcpyDeviceToHost)),
                    "downloading the moments of '" + p->name + "'"))
        return e;
  }
  return exec::writeCheckpoint(
      path, s.model->plan(), s.model->params, optimizer,
      {s.done, seed, exec::modelSignature(*s.model), s.data->identity()});
}

llvm::Error DeviceTrainer::load(llvm::StringRef path) {
  Impl &s = *impl;
  exec::Optimizer &optimizer = hostOptimizer(s);
  auto restored =
      exec::readCheckpoint(path, s.model->plan(), s.model->params, optimizer,
                           exec::modelSignature(*s.model));
  if (!restored)
    return restored.takeError();
  if (llvm::Error e = exec::checkSameData(*restored, s.data->identity(), path))
    return e;
  for (auto &p : s.params) {
    const std::vector<float> &values = p->host->value.data;
    std::vector<bf16> rounded(values.size());
    for (size_t j = 0; j < values.size(); ++j)
      rounded[j] = __float2bfloat16(values[j]);
    exec::Optimizer::Slot *slot = slotOf(optimizer, *p);
    struct Copy {
      void *to;
      const void *from;
      size_t bytes;
    };
    std::vector<Copy> copies = {
        {p->master, values.data(), values.size() * sizeof(float)},
        {p->value, rounded.data(), rounded.size() * sizeof(bf16)}};
    if (slot && p->trains) {
      copies.push_back(
          {p->expAvg, slot->m.data(), slot->m.size() * sizeof(float)});
      copies.push_back(
          {p->expAvgSq, slot->v.data(), slot->v.size() * sizeof(float)});
    }
    // Synchronous copies: `rounded` goes when this iteration ends.
    for (const Copy &c : copies)
      if (llvm::Error e = check(cudaStatus(cudaMemcpy(c.to, c.from, c.bytes,
                                                      cudaMemcpyHostToDevice)),
                                "uploading '" + p->name + "'"))
        return e;
  }
  s.done = restored->step;
  s.startAgreed = false; // the processes compare what they loaded
  s.resharded = restored->otherPlan;
  return llvm::Error::success();
}

bool DeviceTrainer::loadedOtherPlan() const { return impl->resharded; }
