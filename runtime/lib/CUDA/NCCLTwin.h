//===- NCCLTwin.h - NCCL's API over MPI, for the host twin ------*- C++ -*-===//
//
// Internal to MLLMRuntimeCUDAHost; not public API. The subset of NCCL's C
// API that NCCLWorld, NCCLGroup and NCCLState call, for programs linked
// against the host twin of the CUDA runtime (docs/cuda.md "Host twin"):
// ranks are MPI processes and "device memory" is the twin's host memory,
// moved by non-blocking MPI calls queued on the twin's streams. So the whole
// multi-GPU host code runs on CPUs in CI.
//
// The twin is three files, which share what this header declares:
// NCCLTwinComm.cpp (communicators, errors and groups), NCCLTwinQueue.cpp
// (operations queued on the twin's streams) and NCCLTwinOps.cpp (datatypes,
// reductions and the data calls).
//
// Fault injection: MLLM_TWIN_NCCL_STALL=<MPI world rank> makes that rank's
// data operations never start nor finish (a peer whose GPU hangs), so the
// other ranks' waits reach their deadlines.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_LIB_CUDA_NCCLTWIN_H
#define MLLM_RUNTIME_LIB_CUDA_NCCLTWIN_H

#include <mpi.h>
#include <nccl.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace mllm::runtime::cuda::nccltwin {

/// A communicator's state, shared by its handle and its queued operations,
/// so an aborted handle can go while operations still refer to it.
struct CommState {
  MPI_Comm mpi = MPI_COMM_NULL;
  int rank = 0;
  int size = 0;
  bool blocking = true;
  bool aborted = false;
  bool finalizing = false;
  ncclResult_t asyncError = ncclSuccess;
  std::string lastError;
  int unfinished = 0; // operations not finished yet
  /// A non-blocking communicator still initialising: the polls of
  /// ncclCommGetAsyncError that answer ncclInProgress first
  /// (MLLM_TWIN_NCCL_INIT_POLLS; NCCL's own initialisation takes a while).
  long initPolls = 0;
  /// The one stream its operations run on (null until the first): NCCL
  /// orders a communicator's operations across streams, which the twin's
  /// per-stream queues cannot, so it refuses a second stream.
  cudaStream_t stream = nullptr;
  /// Point-to-point connections of a non-blocking communicator, by (peer,
  /// whether this rank sends): NCCL connects one at its first operation,
  /// and the communicator stays ncclInProgress until the peer's first
  /// operation of the other direction connects the other end. Each end
  /// sends a hello (tags 1 and 2) and waits for the other's.
  struct Connection {
    MPI_Request hello = MPI_REQUEST_NULL, reply = MPI_REQUEST_NULL;
    char out = 1, in = 0;
  };
  std::map<std::pair<int, bool>, std::unique_ptr<Connection>> connections;

  /// Tests every connection still being made; true once all are made.
  bool connected();

  ~CommState() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    // An aborted communicator may keep operations MPI never completes;
    // freeing it then is not promised to stay local.
    if (mpi != MPI_COMM_NULL && !aborted && !finalized)
      MPI_Comm_free(&mpi);
  }
};

} // namespace mllm::runtime::cuda::nccltwin

/// The handle type nccl.h declares (ncclComm_t): every file of the twin
/// reaches the communicator's state through it.
struct ncclComm {
  std::shared_ptr<mllm::runtime::cuda::nccltwin::CommState> state;
};

namespace mllm::runtime::cuda::nccltwin {

//===----------------------------------------------------------------------===//
// Errors and groups (NCCLTwinComm.cpp)
//===----------------------------------------------------------------------===//

/// The last error of any call, for ncclGetLastError without a communicator.
extern std::string globalLastError;

class Op;

/// The open ncclGroupStart/End: its operations, per stream.
struct GroupState {
  int depth = 0;
  ncclResult_t error = ncclSuccess; // of the first failed call
  std::vector<std::pair<cudaStream_t, std::vector<std::unique_ptr<Op>>>>
      batches;
};
extern GroupState group;

/// Makes the message the last error (of `comm` too) and returns `rc`; a
/// failed call inside a group fails the group, as in NCCL.
ncclResult_t fail(CommState *comm, ncclResult_t rc, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

std::string mpiErrorText(int code);

//===----------------------------------------------------------------------===//
// Operations and stream work (NCCLTwinQueue.cpp)
//===----------------------------------------------------------------------===//

/// One MPI operation of a data call, posted when its stream reaches it.
/// Until it finishes it is unfinished work of its communicator.
class Op {
public:
  using Post = std::function<int(MPI_Comm, MPI_Request *)>;

  Op(std::shared_ptr<CommState> comm, const char *call, bool pointToPoint,
     Post post)
      : comm(std::move(comm)), call(call), pointToPoint(pointToPoint),
        post(std::move(post)) {
    ++this->comm->unfinished;
  }
  Op(const Op &) = delete;
  Op &operator=(const Op &) = delete;
  ~Op();

  CommState &communicator() const { return *comm; }

  std::unique_ptr<char[]> scratch; // a temporary the MPI call writes
  std::function<void()> onSuccess; // runs once MPI completed the call
  /// A receive: the bytes it posted and its peer. NCCL needs a send and its
  /// receive to have the same count, where MPI takes a shorter message.
  int expectBytes = -1, peer = -1;
  /// A collective: a hash of its call, count, type, operation and root,
  /// which every rank must agree on before the data moves (NCCL would hang
  /// or mix up data; MPI would stop the job without saying why).
  uint64_t signature = 0;

  void start();

  /// True once finished: MPI completed it, it failed, or its communicator
  /// was aborted (as an abort ends NCCL's kernels). `mayPost`: the
  /// operations before it in its batch have posted their data calls (or
  /// finished), so it may post its check and data call now: every rank
  /// posts a collective's check and data call in the same order, however
  /// it grouped them.
  bool test(bool mayPost = true);
  bool postedOrDone() const { return posted || finished; }

private:
  /// Gives up the request without waiting for it. A point-to-point request
  /// is cancelled, so it cannot write into memory freed later; MPI forbids
  /// freeing a collective's, so that one is left to MPI, temporary and all.
  void abandon();
  /// A failed MPI call: the communicator's asynchronous error.
  void failAsync(int code);
  bool finish();

  std::shared_ptr<CommState> comm;
  const char *call;
  bool pointToPoint;
  Post post;
  /// Posts the data call; an error becomes the communicator's.
  void postData();
  /// The signature check, posted once the op may post; false while it
  /// runs. Sets the communicator's error on a mismatch.
  bool checked();
  /// Gives up a check that may still be running: its buffers stay with MPI.
  void dropCheck();

  MPI_Request request = MPI_REQUEST_NULL;
  bool started = false, posted = false, finished = false;
  /// {signature, ~signature} and their maxima over the ranks; on the heap,
  /// so a check given up can leave them to MPI.
  struct Check {
    MPI_Request request = MPI_REQUEST_NULL;
    uint64_t mine[2] = {0, 0}, agreed[2] = {0, 0};
  };
  std::unique_ptr<Check> check;
};

/// Queues `ops` on `stream` as one stream work that runs them together.
ncclResult_t enqueue(CommState &comm, const char *call, cudaStream_t stream,
                     std::vector<std::unique_ptr<Op>> ops);

/// Queues `op` on `stream`, or adds it to the open group's batch of it.
ncclResult_t submit(CommState &comm, const char *call, cudaStream_t stream,
                    std::unique_ptr<Op> op);

} // namespace mllm::runtime::cuda::nccltwin

#endif // MLLM_RUNTIME_LIB_CUDA_NCCLTWIN_H
