//===- NCCLGroup.cpp - Collectives of a group over NCCL -------------------===//
//
// Every collective is enqueued on the group's own stream and completes with
// an event; the Comm-interface calls wait for it with the deadline, the
// *Async calls hand it to the caller. Variable-sized all-gathers and
// reduce-scatters (the CP split sizes) become one NCCL group of broadcasts
// or reduces, one per rank's block; equal sizes use the fused collectives.
//
//===----------------------------------------------------------------------===//

#include "NCCLState.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FormatVariadic.h"

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::cuda;
using namespace mllm::runtime::cuda::detail;

namespace {

class GroupImpl final : public NCCLGroup {
public:
  GroupImpl(std::shared_ptr<NCCLState> state, ncclComm_t comm,
            std::vector<int> ranks, int me, Stream stream)
      : state(std::move(state)), comm(comm), ranks(std::move(ranks)), me(me),
        ownStream(std::move(stream)) {}

  int size() const override { return static_cast<int>(ranks.size()); }
  int rank() const override { return me; }
  cudaStream_t stream() const override { return ownStream.get(); }

  llvm::Error allReduceSum(float *data, int64_t count) override {
    return finish(allReduce(data, count, ncclFloat, ncclSum, "sum", 4));
  }
  llvm::Error allReduceSum(double *data, int64_t count) override {
    return finish(allReduce(data, count, ncclDouble, ncclSum, "sum", 8));
  }
  llvm::Error allReduceMax(float *data, int64_t count) override {
    return finish(allReduce(data, count, ncclFloat, ncclMax, "max", 4));
  }
  llvm::Expected<std::unique_ptr<NCCLRequest>>
  allReduceSumAsync(float *data, int64_t count) override {
    return allReduce(data, count, ncclFloat, ncclSum, "sum", 4);
  }
  llvm::Expected<std::unique_ptr<NCCLRequest>>
  allReduceSumAsync(__nv_bfloat16 *data, int64_t count) override {
    return allReduce(data, count, ncclBfloat16, ncclSum, "bf16 sum", 2);
  }
  llvm::Expected<std::unique_ptr<NCCLRequest>>
  allReduceSumAsync(double *data, int64_t count) override {
    return allReduce(data, count, ncclDouble, ncclSum, "sum", 8);
  }
  llvm::Expected<std::unique_ptr<NCCLRequest>>
  allReduceMaxAsync(float *data, int64_t count) override {
    return allReduce(data, count, ncclFloat, ncclMax, "max", 4);
  }

  llvm::Error allGatherBytes(const void *local, int64_t bytes,
                             void *out) override {
    std::string what = describe("the all-gather");
    if (llvm::Error e = check(local, bytes, out, bytes * size(), what))
      return e;
    return finish(launch(what, [&] {
      return ncclAllGather(local, out, static_cast<size_t>(bytes), ncclUint8,
                           comm, stream());
    }));
  }

  llvm::Error allGather(const float *local, llvm::ArrayRef<int64_t> counts,
                        float *out) override {
    return finish(allGatherAsync(local, counts, out));
  }
  llvm::Expected<std::unique_ptr<NCCLRequest>>
  allGatherAsync(const float *local, llvm::ArrayRef<int64_t> counts,
                 float *out) override {
    return gather(local, counts, out, ncclFloat);
  }
  llvm::Expected<std::unique_ptr<NCCLRequest>>
  allGatherAsync(const __nv_bfloat16 *local, llvm::ArrayRef<int64_t> counts,
                 __nv_bfloat16 *out) override {
    return gather(local, counts, out, ncclBfloat16);
  }

  llvm::Error reduceScatterSum(const float *in, llvm::ArrayRef<int64_t> counts,
                               float *local) override {
    return finish(reduceScatterSumAsync(in, counts, local));
  }
  llvm::Expected<std::unique_ptr<NCCLRequest>>
  reduceScatterSumAsync(const float *in, llvm::ArrayRef<int64_t> counts,
                        float *local) override {
    return scatter(in, counts, local, ncclFloat);
  }
  llvm::Expected<std::unique_ptr<NCCLRequest>>
  reduceScatterSumAsync(const __nv_bfloat16 *in, llvm::ArrayRef<int64_t> counts,
                        __nv_bfloat16 *local) override {
    return scatter(in, counts, local, ncclBfloat16);
  }

private:
  std::string describe(const char *op) const {
    return std::string(op) + " over ranks [" +
           llvm::join(
               llvm::map_range(ranks, [](int r) { return std::to_string(r); }),
               ", ") +
           "]";
  }

  /// Every rank's block of `counts` elements into `out`, in rank order.
  template <typename T>
  llvm::Expected<std::unique_ptr<NCCLRequest>>
  gather(const T *local, llvm::ArrayRef<int64_t> counts, T *out,
         ncclDataType_t type) {
    std::string what = describe("the all-gather");
    std::vector<int64_t> offsets;
    if (llvm::Error e = layout(counts, offsets, what))
      return std::move(e);
    const int64_t bytes = sizeof(T), total = offsets.back();
    if (llvm::Error e =
            check(local, counts[me] * bytes, out, total * bytes, what))
      return std::move(e);
    bool equal = llvm::all_equal(counts);
    return launch(what, [&] {
      if (equal)
        return ncclAllGather(local, out, static_cast<size_t>(counts[0]), type,
                             comm, stream());
      ncclResult_t rc = ncclGroupStart();
      for (int r = 0; r < size() && rc == ncclSuccess; ++r)
        if (counts[r] > 0)
          rc = ncclBroadcast(local, out + offsets[r],
                             static_cast<size_t>(counts[r]), type, r, comm,
                             stream());
      ncclResult_t end = ncclGroupEnd();
      return rc == ncclSuccess ? end : rc;
    });
  }

  /// The sum over the ranks of `in`, each rank's block into its `local`.
  template <typename T>
  llvm::Expected<std::unique_ptr<NCCLRequest>>
  scatter(const T *in, llvm::ArrayRef<int64_t> counts, T *local,
          ncclDataType_t type) {
    std::string what = describe("the reduce-scatter");
    std::vector<int64_t> offsets;
    if (llvm::Error e = layout(counts, offsets, what))
      return std::move(e);
    const int64_t bytes = sizeof(T);
    if (llvm::Error e =
            check(in, offsets.back() * bytes, local, counts[me] * bytes, what))
      return std::move(e);
    bool equal = llvm::all_equal(counts);
    return launch(what, [&] {
      if (equal)
        return ncclReduceScatter(in, local, static_cast<size_t>(counts[0]),
                                 type, ncclSum, comm, stream());
      ncclResult_t rc = ncclGroupStart();
      for (int r = 0; r < size() && rc == ncclSuccess; ++r)
        if (counts[r] > 0) // the receive buffer matters on the root only
          rc =
              ncclReduce(in + offsets[r], local, static_cast<size_t>(counts[r]),
                         type, ncclSum, r, comm, stream());
      ncclResult_t end = ncclGroupEnd();
      return rc == ncclSuccess ? end : rc;
    });
  }

  llvm::Error layout(llvm::ArrayRef<int64_t> counts,
                     std::vector<int64_t> &offsets, const std::string &what) {
    if (counts.size() != ranks.size())
      return fail(llvm::formatv("{0}: {1} counts for {2} ranks", what,
                                counts.size(), ranks.size()));
    offsets.assign(1, 0);
    for (int64_t c : counts) {
      if (c < 0)
        return fail(what + ": a negative count");
      offsets.push_back(offsets.back() + c);
    }
    return llvm::Error::success();
  }

  llvm::Error check(const void *in, int64_t inBytes, const void *out,
                    int64_t outBytes, const std::string &what) {
    if (llvm::Error e = state->checkAlive())
      return e;
    if (llvm::Error e = requireDevice(in, inBytes, what.c_str()))
      return e;
    return requireDevice(out, outBytes, what.c_str());
  }

  llvm::Expected<std::unique_ptr<NCCLRequest>>
  allReduce(void *data, int64_t count, ncclDataType_t type, ncclRedOp_t op,
            const char *name, int64_t elementBytes) {
    std::string what =
        describe((std::string("the all-reduce (") + name + ")").c_str());
    if (llvm::Error e = check(data, count * elementBytes, data, 0, what))
      return std::move(e);
    return launch(what, [&] {
      return ncclAllReduce(data, data, static_cast<size_t>(count), type, op,
                           comm, stream());
    });
  }

  /// Enqueues `call` on the group's stream and records its event.
  template <typename Call>
  llvm::Expected<std::unique_ptr<NCCLRequest>> launch(const std::string &what,
                                                      Call call) {
    MLLM_RT_CUDA(cudaSetDevice(state->device));
    MLLM_RT_NCCL(comm, call());
    if (llvm::Error e = state->settle(comm, what))
      return std::move(e);
    auto done = makeCompletion(stream());
    if (!done)
      return done.takeError();
    return std::make_unique<detail::EventRequest>(state, comm, std::move(*done),
                                                  what);
  }

  llvm::Error finish(llvm::Expected<std::unique_ptr<NCCLRequest>> request) {
    if (!request)
      return request.takeError();
    return (*request)->wait();
  }

  std::shared_ptr<NCCLState> state;
  ncclComm_t comm;
  std::vector<int> ranks;
  int me;
  Stream ownStream;
};

} // namespace

std::unique_ptr<NCCLGroup> detail::makeGroup(std::shared_ptr<NCCLState> state,
                                             ncclComm_t comm,
                                             std::vector<int> ranks, int me,
                                             Stream stream) {
  return std::make_unique<GroupImpl>(std::move(state), comm, std::move(ranks),
                                     me, std::move(stream));
}
