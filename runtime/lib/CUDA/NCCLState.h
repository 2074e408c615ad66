//===- NCCLState.h - What a world's communicators share ---------*- C++ -*-===//
//
// Internal to MLLMRuntimeCUDA. Every communicator of a world (the world,
// its groups, the point-to-point channels) is registered here, so that one
// failure can abort them all: a kernel of another communicator may be
// spinning on the same dead peer, and only ncclCommAbort stops it.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_LIB_CUDA_NCCLSTATE_H
#define MLLM_RUNTIME_LIB_CUDA_NCCLSTATE_H

#include "mllm/runtime/cuda/Check.h"
#include "mllm/runtime/cuda/Device.h"
#include "mllm/runtime/cuda/NCCLComm.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

namespace mllm::runtime::cuda::detail {

llvm::Error fail(const llvm::Twine &message);

class NCCLState {
public:
  NCCLState(std::chrono::milliseconds timeout, int device)
      : timeout(timeout), device(device) {}
  ~NCCLState();
  NCCLState(const NCCLState &) = delete;
  NCCLState &operator=(const NCCLState &) = delete;

  const std::chrono::milliseconds timeout;
  const int device;

  void add(ncclComm_t comm) { comms.push_back(comm); }
  /// Aborts every communicator once; later calls fail at once with `why`.
  void abortAll(const std::string &why);
  /// An error when the world was aborted, for calls made after a failure.
  llvm::Error checkAlive() const;

  /// Waits until `comm` finished the calls of a non-blocking communicator
  /// (ncclInProgress -> ncclSuccess), aborting everything on an error or at
  /// the deadline.
  llvm::Error settle(ncclComm_t comm, const llvm::Twine &what);
  /// Waits for `event` (recorded after an operation on `comm`), watching
  /// the communicator's asynchronous errors, with the deadline.
  llvm::Error wait(ncclComm_t comm, cudaEvent_t event, const llvm::Twine &what);

private:
  std::vector<ncclComm_t> comms;
  bool aborted = false;
  std::string reason;
};

/// An operation's completion: an event recorded on its stream once it was
/// launched (point-to-point ops inside an open P2P group are launched, and
/// their events recorded, at endP2PGroup()).
struct Completion {
  cudaEvent_t event = nullptr;
  bool launched = false;
  ~Completion() {
    if (event)
      cudaEventDestroy(event);
  }
};

class EventRequest : public NCCLRequest {
public:
  EventRequest(std::shared_ptr<NCCLState> state, ncclComm_t comm,
               std::shared_ptr<Completion> done, std::string what)
      : state(std::move(state)), comm(comm), done(std::move(done)),
        what(std::move(what)) {}
  llvm::Error wait() override;
  cudaEvent_t event() const override { return done->event; }

private:
  std::shared_ptr<NCCLState> state;
  ncclComm_t comm;
  std::shared_ptr<Completion> done;
  std::string what;
};

/// A completion whose event is recorded on `stream` now (launched), or not
/// yet when `stream` is null.
llvm::Expected<std::shared_ptr<Completion>> makeCompletion(cudaStream_t stream);

/// Device (or managed) memory, else an error naming `what`.
llvm::Error requireDevice(const void *ptr, int64_t bytes, const char *what);

/// A non-blocking communicator configuration.
ncclConfig_t nonBlockingConfig();

/// The group implementation over `comm` (ranks in group order).
std::unique_ptr<NCCLGroup> makeGroup(std::shared_ptr<NCCLState> state,
                                     ncclComm_t comm, std::vector<int> ranks,
                                     int me, Stream stream);

} // namespace mllm::runtime::cuda::detail

#endif // MLLM_RUNTIME_LIB_CUDA_NCCLSTATE_H
