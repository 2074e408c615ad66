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

exec::Optimizer &
DeviceTrainer::Impl::hostOptimizer(llvm::ArrayRef<exec::NamedParam> of) {
  if (!host) {
    host = std::make_unique<exec::Optimizer>(model->plan().train);
    for (const exec::NamedParam &p : of)
      host->add(p.param, p.name);
  }
  return *host;
}

llvm::Error DeviceTrainer::Impl::toHost(exec::Optimizer &optimizer) {
  MLLM_TRY(downloadParams());
  for (auto &p : params) {
    exec::Optimizer::Slot *slot = slotOf(optimizer, *p);
    if (!slot || !p->trains)
      continue;
    slot->m.resize(static_cast<size_t>(p->n));
    slot->v.resize(static_cast<size_t>(p->n));
    for (auto [to, from] : {std::pair{slot->m.data(), p->expAvg},
                            std::pair{slot->v.data(), p->expAvgSq}})
      MLLM_TRY(check(cudaStatus(cudaMemcpy(to, from, p->n * sizeof(float),
                                           cudaMemcpyDeviceToHost)),
                     "downloading the moments of '" + p->name + "'"));
  }
  return llvm::Error::success();
}

llvm::Error DeviceTrainer::Impl::fromHost(exec::Optimizer *optimizer) {
  for (auto &p : params) {
    const std::vector<float> &values = p->host->value.data;
    std::vector<bf16> rounded(values.size());
    for (size_t j = 0; j < values.size(); ++j)
      rounded[j] = __float2bfloat16(values[j]);
    exec::Optimizer::Slot *slot = optimizer ? slotOf(*optimizer, *p) : nullptr;
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
      MLLM_TRY(check(
          cudaStatus(cudaMemcpy(c.to, c.from, c.bytes, cudaMemcpyHostToDevice)),
          "uploading '" + p->name + "'"));
  }
  // The processes compare what they start from again.
  startAgreed = false;
  return llvm::Error::success();
}

llvm::Error DeviceTrainer::Impl::load(llvm::StringRef path,
                                      llvm::ArrayRef<exec::NamedParam> of) {
  exec::Optimizer &optimizer = hostOptimizer(of);
  auto restored = exec::readCheckpoint(path, model->plan(), of, optimizer,
                                       exec::modelSignature(*model));
  if (!restored)
    return restored.takeError();
  MLLM_TRY(exec::checkSameData(*restored, data->identity(), path));
  MLLM_TRY(fromHost(&optimizer));
  done = restored->step;
  resharded = restored->otherPlan;
  return llvm::Error::success();
}

llvm::Error DeviceTrainer::save(llvm::StringRef path, uint64_t seed) {
  Impl &s = *impl;
  exec::setActivity("writing the checkpoint of step %lld",
                    static_cast<long long>(s.done));
  exec::Optimizer &optimizer = s.hostOptimizer(s.model->params);
  MLLM_TRY(s.toHost(optimizer));
  return exec::writeCheckpoint(
      path, s.model->plan(), s.model->params, optimizer,
      {s.done, seed, exec::modelSignature(*s.model), s.data->identity()});
}

llvm::Error DeviceTrainer::load(llvm::StringRef path) {
  return impl->load(path, impl->model->params);
}

bool DeviceTrainer::loadedOtherPlan() const { return impl->resharded; }
