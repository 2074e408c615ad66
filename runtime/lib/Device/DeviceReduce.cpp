//===- DeviceReduce.cpp - summing gradients over data-parallel processes --===//
//
// The gradients live in one region, parameter after parameter in the order
// the layers first use them (the forward's). The backward finishes them in
// about the reverse order, so during the step's last microbatch the region
// becomes final from its end down: once the final, not yet posted part
// fills a bucket it is posted to the GradientReducer (NCCL sums it on its
// own stream while the backward goes on), and the rest at the end.
//
//===----------------------------------------------------------------------===//
#include "DeviceImpl.h"

#include <numeric>
#include <set>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::device;

llvm::Error GroupReducer::post(float *data, int64_t count,
                               cudaStream_t stream) {
  if (llvm::Error e = check(cudaStatus(cudaStreamSynchronize(stream)),
                            "the gradients to sum"))
    return e;
  return group.allReduceSum(data, count);
}

namespace {

/// The twin's device memory is host memory: the stream's work on it is
/// done once the stream is.
llvm::Error settle(cudaStream_t stream, const char *what) {
  return check(cudaStatus(cudaStreamSynchronize(stream)), what);
}

/// bf16 values as floats into `to` (resized), and back, rounded once.
void widen(const bf16 *from, int64_t n, std::vector<float> &to) {
  to.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i)
    to[i] = __bfloat162float(from[i]);
}
void narrow(const std::vector<float> &from, bf16 *to) {
  for (size_t i = 0; i < from.size(); ++i)
    to[i] = __float2bfloat16(from[i]);
}

} // namespace

llvm::Error GroupCollectives::allReduceSum(bf16 *data, int64_t count,
                                           cudaStream_t stream) {
  MLLM_TRY(settle(stream, "the values to sum over the TP group"));
  widen(data, count, staging);
  MLLM_TRY(group.allReduceSum(staging.data(), count));
  narrow(staging, data);
  return llvm::Error::success();
}

llvm::Error GroupCollectives::allReduceSum(double *data, int64_t count,
                                           cudaStream_t stream) {
  MLLM_TRY(settle(stream, "the values to sum over the TP group"));
  return group.allReduceSum(data, count);
}

llvm::Error GroupCollectives::allReduceMax(float *data, int64_t count,
                                           cudaStream_t stream) {
  MLLM_TRY(settle(stream, "the values to reduce over the TP group"));
  return group.allReduceMax(data, count);
}

llvm::Error GroupCollectives::allGather(const bf16 *local,
                                        llvm::ArrayRef<int64_t> counts,
                                        bf16 *out, cudaStream_t stream) {
  MLLM_TRY(settle(stream, "the values to gather over the CP group"));
  widen(local, counts[group.rank()], staging);
  gathered.resize(static_cast<size_t>(
      std::accumulate(counts.begin(), counts.end(), int64_t(0))));
  MLLM_TRY(group.allGather(staging.data(), counts, gathered.data()));
  narrow(gathered, out);
  return llvm::Error::success();
}

llvm::Error GroupCollectives::reduceScatterSum(const bf16 *in,
                                               llvm::ArrayRef<int64_t> counts,
                                               bf16 *local,
                                               cudaStream_t stream) {
  MLLM_TRY(settle(stream, "the values to sum over the CP group"));
  widen(in, std::accumulate(counts.begin(), counts.end(), int64_t(0)),
        gathered);
  staging.resize(static_cast<size_t>(counts[group.rank()]));
  MLLM_TRY(group.reduceScatterSum(gathered.data(), counts, staging.data()));
  narrow(staging, local);
  return llvm::Error::success();
}

void DeviceTrainer::Impl::planBuckets() {
  finalFrom.clear();
  if (parallel.processes == 1 || gradFloats == 0)
    return;
  // The layers in the backward's order (backward()): the LLM's from the
  // head down, then the encoders last to first, each from its projector
  // down.
  std::vector<const DeviceLayer *> order;
  for (size_t i = layers.size(); i-- > 0;)
    order.push_back(&layers[i]);
  for (size_t k = encoders.size(); k-- > 0;)
    for (size_t i = encoders[k].layers.size(); i-- > 0;)
      order.push_back(&encoders[k].layers[i]);
  // A parameter is final after the last layer of that order using it (a
  // tied weight: the embedding, after the head).
  std::map<const DeviceParam *, size_t> last;
  for (size_t k = 0; k < order.size(); ++k)
    for (const auto &[name, p] : order[k]->params)
      if (p->trains)
        last[p] = k;
  auto offset = [&](const DeviceParam *p) { return p->grad - gradRegion; };
  std::set<const DeviceParam *> open;
  for (const auto &[p, k] : last)
    open.insert(p);
  int64_t frontier = gradFloats;
  std::map<const DeviceLayer *, int64_t> plan;
  for (size_t k = 0; k < order.size(); ++k) {
    int64_t lo = frontier;
    std::vector<const DeviceParam *> finals;
    for (const auto &[name, p] : order[k]->params)
      if (p->trains && last[p] == k) {
        finals.push_back(p);
        lo = std::min(lo, offset(p));
      }
    if (finals.empty())
      continue;
    for (const DeviceParam *p : finals) {
      if (offset(p) >= frontier)
        return; // Not from the end down: one sum at the end.
      open.erase(p);
    }
    for (const DeviceParam *p : open)
      if (offset(p) >= lo)
        return;
    plan[order[k]] = lo;
    frontier = lo;
  }
  finalFrom = std::move(plan);
}

llvm::Error DeviceTrainer::Impl::gradientsDone(const DeviceLayer &l) {
  if (!lastMicrobatch || finalFrom.empty())
    return llvm::Error::success();
  auto it = finalFrom.find(&l);
  if (it == finalFrom.end() ||
      (postedFrom - it->second) * static_cast<int64_t>(sizeof(float)) <
          parallel.bucketBytes)
    return llvm::Error::success();
  if (llvm::Error e = parallel.gradients->post(
          gradRegion + it->second, postedFrom - it->second, stream)) {
    drainSums();
    return llvm::createStringError(
        llvm::inconvertibleErrorCode(),
        "summing the gradients over the data-parallel processes: " +
            llvm::toString(std::move(e)));
  }
  postedFrom = it->second;
  ++bucketsPosted;
  return llvm::Error::success();
}

void DeviceTrainer::Impl::drainSums() {
  if (parallel.gradients)
    llvm::consumeError(parallel.gradients->finish());
}

static llvm::Error failed(const char *what, llvm::Error e) {
  return llvm::createStringError(
      llvm::inconvertibleErrorCode(),
      llvm::Twine("summing the ") + what +
          " over the data-parallel processes: " + llvm::toString(std::move(e)));
}

llvm::Error DeviceTrainer::Impl::reduceOverProcesses(double &loss) {
  if (parallel.processes == 1)
    return llvm::Error::success();
  MLLM_TRY(finishGradientSums());
  exec::setActivity("summing the loss over the data-parallel processes");
  if (llvm::Error e = parallel.host->allReduceSum(&loss, 1))
    return failed("loss", std::move(e));
  return llvm::Error::success();
}

llvm::Error DeviceTrainer::Impl::finishGradientSums() {
  if (parallel.processes == 1)
    return llvm::Error::success();
  exec::setActivity("summing the gradients over the data-parallel processes");
  if (postedFrom > 0) {
    if (llvm::Error e =
            parallel.gradients->post(gradRegion, postedFrom, stream)) {
      drainSums();
      return failed("gradients", std::move(e));
    }
    postedFrom = 0;
    ++bucketsPosted;
  }
  // The optimizer is queued on the trainer's stream only after this host
  // wait: the sums ran on the reducer's stream, ordered after it on the
  // GPU by nothing else.
  if (llvm::Error e = parallel.gradients->finish())
    return failed("gradients", std::move(e));
  return llvm::Error::success();
}
