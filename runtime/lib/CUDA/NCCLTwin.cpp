//===- NCCLTwin.cpp - NCCL's API over MPI, for the host twin --------------===//
//
// The subset of NCCL's C API that NCCLWorld, NCCLGroup and NCCLState call,
// for programs linked against the host twin of the CUDA runtime
// (docs/cuda.md "Host twin"): ranks are MPI processes and "device memory" is
// the twin's host memory, moved by non-blocking MPI calls queued on the
// twin's streams. So the whole multi-GPU host code runs on CPUs in CI.
//
// Communicators span the MPI world (the program initialises MPI) and are
// ready at once. The operations of an ncclGroupStart/End become one stream
// work per stream that posts all their MPI requests together, as NCCL runs
// a group's operations together (a send must not wait behind a receive of
// the same stream). bf16 reductions widen to float and round back to
// nearest even.
//
// Fault injection: MLLM_TWIN_NCCL_STALL=<MPI world rank> makes that rank's
// data operations never start nor finish (a peer whose GPU hangs), so the
// other ranks' waits reach their deadlines.
//
//===----------------------------------------------------------------------===//

#include "mllm/kernels/cuda/HostTwin.h"

#include <mpi.h>
#include <nccl.h>

#include <climits>
#include <cmath>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <initializer_list>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace twin = mllm::kernels::cuda::twin;

namespace {

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

  ~CommState() {
    int finalized = 0;
    MPI_Finalized(&finalized);
    // An aborted communicator may keep operations MPI never completes;
    // freeing it then is not promised to stay local.
    if (mpi != MPI_COMM_NULL && !aborted && !finalized)
      MPI_Comm_free(&mpi);
  }
};

} // namespace

struct ncclComm {
  std::shared_ptr<CommState> state;
};

namespace {

//===----------------------------------------------------------------------===//
// Errors and groups
//===----------------------------------------------------------------------===//

std::string globalLastError;

class Op;

/// The open ncclGroupStart/End: its operations, per stream.
struct GroupState {
  int depth = 0;
  ncclResult_t error = ncclSuccess; // of the first failed call
  std::vector<std::pair<cudaStream_t, std::vector<std::unique_ptr<Op>>>>
      batches;
} group;

/// Makes the message the last error (of `comm` too) and returns `rc`; a
/// failed call inside a group fails the group, as in NCCL.
ncclResult_t fail(CommState *comm, ncclResult_t rc, const char *format, ...)
    __attribute__((format(printf, 3, 4)));
ncclResult_t fail(CommState *comm, ncclResult_t rc, const char *format, ...) {
  char text[512];
  va_list args;
  va_start(args, format);
  std::vsnprintf(text, sizeof text, format, args);
  va_end(args);
  globalLastError = text;
  if (comm)
    comm->lastError = text;
  if (group.depth > 0 && group.error == ncclSuccess)
    group.error = rc;
  return rc;
}

std::string mpiErrorText(int code) {
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  if (MPI_Error_string(code, text, &length) != MPI_SUCCESS)
    return "MPI error " + std::to_string(code);
  return std::string(text, length);
}

/// Whether MLLM_TWIN_NCCL_STALL names this MPI world rank.
bool stalledHere() {
  static const bool stalled = [] {
    const char *value = std::getenv("MLLM_TWIN_NCCL_STALL");
    if (!value || !*value)
      return false;
    char *end = nullptr;
    long rank = std::strtol(value, &end, 10);
    int me = -1;
    MPI_Comm_rank(MPI_COMM_WORLD, &me);
    return *end == '\0' && rank == me;
  }();
  return stalled;
}

//===----------------------------------------------------------------------===//
// Operations and stream work
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
  ~Op() {
    if (!finished) {
      abandon();
      finish();
    }
  }

  CommState &communicator() const { return *comm; }

  std::unique_ptr<char[]> scratch; // a temporary the MPI call writes
  std::function<void()> onSuccess; // runs once MPI completed the call

  void start() {
    if (comm->aborted || stalledHere())
      return;
    posted = true;
    if (int rc = post(comm->mpi, &request); rc != MPI_SUCCESS)
      failAsync(rc);
  }

  /// True once finished: MPI completed it, it failed, or its communicator
  /// was aborted (as an abort ends NCCL's kernels).
  bool test() {
    if (finished)
      return true;
    if (comm->aborted) {
      abandon();
      return finish();
    }
    if (!posted)
      return false; // stalled
    if (request != MPI_REQUEST_NULL) {
      int done = 0;
      if (int rc = MPI_Test(&request, &done, MPI_STATUS_IGNORE);
          rc != MPI_SUCCESS) {
        failAsync(rc);
        return finish();
      }
      if (!done)
        return false;
    }
    if (comm->asyncError == ncclSuccess && onSuccess)
      onSuccess();
    return finish();
  }

private:
  /// Gives up the request without waiting for it. A point-to-point request
  /// is cancelled, so it cannot write into memory freed later; MPI forbids
  /// freeing a collective's, so that one is left to MPI, temporary and all.
  void abandon() {
    if (request == MPI_REQUEST_NULL)
      return;
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (pointToPoint && !finalized) {
      MPI_Cancel(&request);
      MPI_Request_free(&request);
    } else if (!pointToPoint) {
      (void)scratch.release();
    }
    request = MPI_REQUEST_NULL;
  }
  /// A failed MPI call: the communicator's asynchronous error.
  void failAsync(int code) {
    request = MPI_REQUEST_NULL;
    comm->asyncError = ncclSystemError;
    comm->lastError =
        std::string(call) + " failed in MPI: " + mpiErrorText(code);
    globalLastError = comm->lastError;
  }
  bool finish() {
    finished = true;
    --comm->unfinished;
    return true;
  }

  std::shared_ptr<CommState> comm;
  const char *call;
  bool pointToPoint;
  Post post;
  MPI_Request request = MPI_REQUEST_NULL;
  bool posted = false;
  bool finished = false;
};

/// The operations a stream runs together: one call's, or a group's.
class Batch final : public twin::AsyncWork {
public:
  explicit Batch(std::vector<std::unique_ptr<Op>> ops) : ops(std::move(ops)) {}
  void start() override {
    for (std::unique_ptr<Op> &op : ops)
      op->start();
  }
  bool test() override {
    bool done = true;
    for (std::unique_ptr<Op> &op : ops)
      done = op->test() && done;
    return done;
  }

private:
  std::vector<std::unique_ptr<Op>> ops;
};

ncclResult_t enqueue(CommState &comm, const char *call, cudaStream_t stream,
                     std::vector<std::unique_ptr<Op>> ops) {
  cudaError_t rc =
      twin::enqueue(stream, std::make_unique<Batch>(std::move(ops)));
  if (rc != cudaSuccess)
    return fail(&comm, ncclUnhandledCudaError,
                "%s: queueing on the stream failed: %s", call,
                cudaGetErrorString(rc));
  return ncclSuccess;
}

/// Queues `op` on `stream`, or adds it to the open group's batch of it.
ncclResult_t submit(CommState &comm, const char *call, cudaStream_t stream,
                    std::unique_ptr<Op> op) {
  if (group.depth > 0) {
    for (auto &[s, batch] : group.batches)
      if (s == stream) {
        batch.push_back(std::move(op));
        return ncclSuccess;
      }
    group.batches.emplace_back(stream, std::vector<std::unique_ptr<Op>>());
    group.batches.back().second.push_back(std::move(op));
    return ncclSuccess;
  }
  std::vector<std::unique_ptr<Op>> ops;
  ops.push_back(std::move(op));
  return enqueue(comm, call, stream, std::move(ops));
}

//===----------------------------------------------------------------------===//
// Datatypes and reductions
//===----------------------------------------------------------------------===//

struct Type {
  MPI_Datatype mpi;
  size_t bytes;
  bool reducible; // fp16 and fp8 are moved, not reduced
};

float bf16ToFloat(uint16_t bits) {
  uint32_t wide = static_cast<uint32_t>(bits) << 16;
  float f;
  std::memcpy(&f, &wide, sizeof f);
  return f;
}

uint16_t floatToBf16(float f) {
  uint32_t bits;
  std::memcpy(&bits, &f, sizeof bits);
  if ((bits & 0x7fffffffu) > 0x7f800000u) // NaN: stays a (quiet) NaN
    return static_cast<uint16_t>((bits >> 16) | 0x40u);
  bits += 0x7fffu + ((bits >> 16) & 1u); // round to nearest even
  return static_cast<uint16_t>(bits >> 16);
}

/// An MPI_User_function over bf16 values: inout[i] = combine(in[i], inout[i]).
template <float (*Combine)(float, float)>
void bf16Reduce(void *in, void *inout, int *length, MPI_Datatype *) {
  const uint16_t *a = static_cast<const uint16_t *>(in);
  uint16_t *b = static_cast<uint16_t *>(inout);
  for (int i = 0; i < *length; ++i)
    b[i] = floatToBf16(Combine(bf16ToFloat(a[i]), bf16ToFloat(b[i])));
}

float add(float a, float b) { return a + b; }
float multiply(float a, float b) { return a * b; }
// fmax and fmin ignore a NaN operand, as CUDA's __hmax and __hmin do.
float maximum(float a, float b) { return std::fmax(a, b); }
float minimum(float a, float b) { return std::fmin(a, b); }

/// MPI has no bf16: its values travel as 16-bit integers, reduced by these
/// operations (indexed by ncclSum, ncclProd, ncclMax, ncclMin).
MPI_Op bf16Op(ncclRedOp_t op) {
  static MPI_Op ops[4] = {MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL, MPI_OP_NULL};
  if (ops[0] == MPI_OP_NULL) {
    MPI_Op_create(bf16Reduce<add>, 1, &ops[ncclSum]);
    MPI_Op_create(bf16Reduce<multiply>, 1, &ops[ncclProd]);
    MPI_Op_create(bf16Reduce<maximum>, 1, &ops[ncclMax]);
    MPI_Op_create(bf16Reduce<minimum>, 1, &ops[ncclMin]);
  }
  return ops[op];
}

ncclResult_t lookupType(CommState &comm, const char *call,
                        ncclDataType_t datatype, Type &type) {
  // Indexed by ncclDataType_t; bf16 travels as 16-bit integers.
  const Type types[] = {{MPI_INT8_T, 1, true},    {MPI_UINT8_T, 1, true},
                        {MPI_INT32_T, 4, true},   {MPI_UINT32_T, 4, true},
                        {MPI_INT64_T, 8, true},   {MPI_UINT64_T, 8, true},
                        {MPI_UINT16_T, 2, false}, {MPI_FLOAT, 4, true},
                        {MPI_DOUBLE, 8, true},    {MPI_UINT16_T, 2, true},
                        {MPI_UINT8_T, 1, false},  {MPI_UINT8_T, 1, false}};
  static_assert(sizeof types / sizeof types[0] == ncclNumTypes);
  const int index = static_cast<int>(datatype);
  if (index < 0 || index >= ncclNumTypes)
    return fail(&comm, ncclInvalidArgument, "%s: unknown datatype %d", call,
                index);
  type = types[index];
  return ncclSuccess;
}

ncclResult_t lookupOp(CommState &comm, const char *call, ncclRedOp_t op,
                      ncclDataType_t datatype, const Type &type,
                      MPI_Op &mpiOp) {
  if (op != ncclSum && op != ncclProd && op != ncclMax && op != ncclMin)
    return fail(&comm, ncclInvalidArgument,
                "%s: the host twin has no reduction %d (sum, prod, max and "
                "min only)",
                call, static_cast<int>(op));
  if (!type.reducible)
    return fail(&comm, ncclInvalidArgument,
                "%s: the host twin does not reduce datatype %d (fp16 and fp8 "
                "are moved only)",
                call, static_cast<int>(datatype));
  const MPI_Op builtin[] = {MPI_SUM, MPI_PROD, MPI_MAX, MPI_MIN};
  mpiOp = datatype == ncclBfloat16 ? bf16Op(op) : builtin[op];
  return ncclSuccess;
}

//===----------------------------------------------------------------------===//
// Argument checks
//===----------------------------------------------------------------------===//

/// A buffer a data call touches: `count` elements at `p`.
struct Buffer {
  const char *name;
  const void *p;
  size_t count;
};

/// The checks every data call makes: a communicator, a stream the twin can
/// queue on, a count MPI can take (an int), a datatype, and buffers that
/// are device memory. NCCL moves device memory only: a GPU would fault on
/// a host pointer or a range past its allocation, so the twin reports them.
ncclResult_t checkCall(ncclComm_t comm, const char *call, cudaStream_t stream,
                       size_t count, ncclDataType_t datatype,
                       std::initializer_list<Buffer> buffers, Type &type) {
  if (!comm)
    return fail(nullptr, ncclInvalidArgument, "%s: comm is null", call);
  CommState &state = *comm->state;
  if (!stream || stream == cudaStreamLegacy || stream == cudaStreamPerThread)
    return fail(&state, ncclInvalidArgument,
                "%s: the host twin queues NCCL work on created streams only, "
                "not on a default stream",
                call);
  if (count > static_cast<size_t>(INT_MAX))
    return fail(&state, ncclInvalidArgument,
                "%s: %zu elements exceed INT_MAX, the host twin's (MPI's) "
                "limit",
                call, count);
  if (ncclResult_t rc = lookupType(state, call, datatype, type))
    return rc;
  for (const Buffer &b : buffers)
    if (!twin::isDeviceMemory(b.p, b.count * type.bytes))
      return fail(&state, ncclInvalidArgument,
                  "%s: %s (%zu bytes) is not inside one device allocation; "
                  "NCCL moves device memory only (a GPU would fault)",
                  call, b.name, b.count * type.bytes);
  return ncclSuccess;
}

ncclResult_t checkRank(CommState &comm, const char *call, const char *what,
                       int rank) {
  if (rank >= 0 && rank < comm.size)
    return ncclSuccess;
  return fail(&comm, ncclInvalidArgument,
              "%s: %s %d is outside the communicator's %d ranks", call, what,
              rank, comm.size);
}

//===----------------------------------------------------------------------===//
// Communicators
//===----------------------------------------------------------------------===//

const char idTag[] = "mllm-nccl-twin";

bool isBlocking(const ncclConfig_t *config, bool otherwise) {
  if (!config || config->blocking == NCCL_CONFIG_UNDEF_INT)
    return otherwise;
  return config->blocking != 0;
}

ncclComm_t makeComm(MPI_Comm mpi, bool blocking) {
  auto state = std::make_shared<CommState>();
  state->mpi = mpi;
  state->blocking = blocking;
  // A failed MPI call becomes the communicator's error, not an exit.
  MPI_Comm_set_errhandler(mpi, MPI_ERRORS_RETURN);
  MPI_Comm_rank(mpi, &state->rank);
  MPI_Comm_size(mpi, &state->size);
  return new ncclComm{std::move(state)};
}

/// Runs the streams until `comm` has no unfinished work (or failed).
void drain(CommState &comm) {
  while (comm.unfinished > 0 && !comm.aborted && comm.asyncError == ncclSuccess)
    if (!twin::progress())
      std::this_thread::yield();
}

} // namespace

ncclResult_t ncclGetUniqueId(ncclUniqueId *uniqueId) {
  if (!uniqueId)
    return fail(nullptr, ncclInvalidArgument, "ncclGetUniqueId: null id");
  std::random_device random;
  for (char &c : uniqueId->internal)
    c = static_cast<char>(random());
  std::memcpy(uniqueId->internal, idTag, sizeof idTag);
  return ncclSuccess;
}

ncclResult_t ncclCommInitRankConfig(ncclComm_t *comm, int nranks,
                                    ncclUniqueId commId, int rank,
                                    ncclConfig_t *config) {
  const char *call = "ncclCommInitRankConfig";
  if (!comm)
    return fail(nullptr, ncclInvalidArgument, "%s: comm is null", call);
  *comm = nullptr;
  int initialized = 0, worldSize = 0, worldRank = 0;
  MPI_Initialized(&initialized);
  if (!initialized)
    return fail(nullptr, ncclInvalidUsage,
                "%s: the host twin's NCCL runs over MPI, which is not "
                "initialised",
                call);
  MPI_Comm_size(MPI_COMM_WORLD, &worldSize);
  MPI_Comm_rank(MPI_COMM_WORLD, &worldRank);
  if (nranks != worldSize || rank != worldRank)
    return fail(nullptr, ncclInvalidArgument,
                "%s: rank %d of %d, but the host twin's communicators span "
                "the MPI world (rank %d of %d)",
                call, rank, nranks, worldRank, worldSize);
  if (std::memcmp(commId.internal, idTag, sizeof idTag) != 0)
    return fail(nullptr, ncclInvalidArgument,
                "%s: commId does not come from ncclGetUniqueId", call);
  MPI_Comm mpi = MPI_COMM_NULL;
  if (int rc = MPI_Comm_dup(MPI_COMM_WORLD, &mpi); rc != MPI_SUCCESS)
    return fail(nullptr, ncclSystemError, "%s: MPI_Comm_dup failed: %s", call,
                mpiErrorText(rc).c_str());
  *comm = makeComm(mpi, isBlocking(config, true));
  return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *comm, int nranks, ncclUniqueId commId,
                              int rank) {
  return ncclCommInitRankConfig(comm, nranks, commId, rank, nullptr);
}

ncclResult_t ncclCommSplit(ncclComm_t comm, int color, int key,
                           ncclComm_t *newcomm, ncclConfig_t *config) {
  if (!comm || !newcomm)
    return fail(nullptr, ncclInvalidArgument,
                "ncclCommSplit: comm or newcomm is null");
  CommState &parent = *comm->state;
  *newcomm = nullptr;
  if (color < 0 && color != NCCL_SPLIT_NOCOLOR)
    return fail(&parent, ncclInvalidArgument,
                "ncclCommSplit: negative color %d", color);
  MPI_Comm mpi = MPI_COMM_NULL;
  if (int rc = MPI_Comm_split(
          parent.mpi, color == NCCL_SPLIT_NOCOLOR ? MPI_UNDEFINED : color, key,
          &mpi);
      rc != MPI_SUCCESS)
    return fail(&parent, ncclSystemError,
                "ncclCommSplit: MPI_Comm_split failed: %s",
                mpiErrorText(rc).c_str());
  if (mpi != MPI_COMM_NULL) // a null config inherits the parent's
    *newcomm = makeComm(mpi, isBlocking(config, parent.blocking));
  return ncclSuccess;
}

ncclResult_t ncclCommGetAsyncError(ncclComm_t comm, ncclResult_t *asyncError) {
  if (!comm || !asyncError)
    return fail(nullptr, ncclInvalidArgument,
                "ncclCommGetAsyncError: comm or asyncError is null");
  CommState &state = *comm->state;
  twin::progress();
  if (state.asyncError != ncclSuccess)
    *asyncError = state.asyncError;
  else if (state.finalizing && state.unfinished > 0)
    *asyncError = ncclInProgress;
  else
    *asyncError = ncclSuccess;
  return ncclSuccess;
}

ncclResult_t ncclCommFinalize(ncclComm_t comm) {
  if (!comm)
    return fail(nullptr, ncclInvalidArgument, "ncclCommFinalize: null comm");
  CommState &state = *comm->state;
  state.finalizing = true;
  // A non-blocking communicator finishes its work in the background: the
  // caller polls ncclCommGetAsyncError, which says ncclInProgress until then.
  if (!state.blocking) {
    twin::progress();
    return state.unfinished > 0 ? ncclInProgress : state.asyncError;
  }
  drain(state);
  return state.asyncError;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm) {
  if (!comm)
    return ncclSuccess;
  drain(*comm->state); // NCCL finalizes a communicator not finalized yet
  delete comm;         // the MPI communicator goes with the last reference
  return ncclSuccess;
}

ncclResult_t ncclCommAbort(ncclComm_t comm) {
  if (!comm)
    return ncclSuccess;
  // Running work sees the flag when tested, gives up its MPI requests and
  // finishes; queued work finishes without posting any.
  comm->state->aborted = true;
  twin::progress();
  delete comm; // the state stays while queued work refers to it
  return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t result) {
  static const char *const strings[] = {
      "no error",
      "unhandled cuda error",
      "unhandled system error",
      "internal error",
      "invalid argument",
      "invalid usage",
      "remote process exited or network error",
      "NCCL operation in progress"};
  static_assert(sizeof strings / sizeof strings[0] == ncclNumResults);
  const int index = static_cast<int>(result);
  if (index < 0 || index >= ncclNumResults)
    return "unknown result code";
  return strings[index];
}

const char *ncclGetLastError(ncclComm_t comm) {
  if (comm && !comm->state->lastError.empty())
    return comm->state->lastError.c_str();
  return globalLastError.c_str();
}

ncclResult_t ncclGroupStart() {
  ++group.depth;
  return ncclSuccess;
}

ncclResult_t ncclGroupEnd() {
  if (group.depth == 0)
    return fail(nullptr, ncclInvalidUsage, "ncclGroupEnd: no group is open");
  if (--group.depth > 0)
    return ncclSuccess;
  auto batches = std::move(group.batches);
  group.batches.clear();
  ncclResult_t result = group.error;
  group.error = ncclSuccess;
  if (result != ncclSuccess) // NCCL drops a group with a failed call
    return result;
  for (auto &[stream, ops] : batches) {
    CommState &comm = ops.front()->communicator();
    ncclResult_t rc = enqueue(comm, "ncclGroupEnd", stream, std::move(ops));
    if (result == ncclSuccess)
      result = rc;
  }
  return result;
}

//===----------------------------------------------------------------------===//
// Point-to-point
//===----------------------------------------------------------------------===//

namespace {

/// Bytes, with MPI's tag 0: MPI keeps a pair's messages in posting order,
/// which is how NCCL pairs sends with receives.
ncclResult_t sendOrRecv(bool send, void *buff, size_t count,
                        ncclDataType_t datatype, int peer, ncclComm_t comm,
                        cudaStream_t stream) {
  const char *call = send ? "ncclSend" : "ncclRecv";
  const char *name = send ? "sendbuff" : "recvbuff";
  Type type;
  if (ncclResult_t rc = checkCall(comm, call, stream, count, datatype,
                                  {{name, buff, count}}, type))
    return rc;
  CommState &state = *comm->state;
  if (ncclResult_t rc = checkRank(state, call, "peer", peer))
    return rc;
  size_t bytes = count * type.bytes;
  if (bytes > static_cast<size_t>(INT_MAX))
    return fail(&state, ncclInvalidArgument,
                "%s: %zu bytes exceed INT_MAX, the host twin's (MPI's) limit",
                call, bytes);
  int n = static_cast<int>(bytes);
  auto post = [=](MPI_Comm mpi, MPI_Request *request) {
    return send ? MPI_Isend(buff, n, MPI_BYTE, peer, 0, mpi, request)
                : MPI_Irecv(buff, n, MPI_BYTE, peer, 0, mpi, request);
  };
  return submit(state, call, stream,
                std::make_unique<Op>(comm->state, call, true, post));
}

} // namespace

ncclResult_t ncclSend(const void *sendbuff, size_t count,
                      ncclDataType_t datatype, int peer, ncclComm_t comm,
                      cudaStream_t stream) {
  return sendOrRecv(true, const_cast<void *>(sendbuff), count, datatype, peer,
                    comm, stream);
}

ncclResult_t ncclRecv(void *recvbuff, size_t count, ncclDataType_t datatype,
                      int peer, ncclComm_t comm, cudaStream_t stream) {
  return sendOrRecv(false, recvbuff, count, datatype, peer, comm, stream);
}

//===----------------------------------------------------------------------===//
// Collectives
//===----------------------------------------------------------------------===//

ncclResult_t ncclAllReduce(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, ncclRedOp_t op,
                           ncclComm_t comm, cudaStream_t stream) {
  const char *call = "ncclAllReduce";
  Type type;
  MPI_Op mpiOp;
  if (ncclResult_t rc = checkCall(
          comm, call, stream, count, datatype,
          {{"sendbuff", sendbuff, count}, {"recvbuff", recvbuff, count}}, type))
    return rc;
  CommState &state = *comm->state;
  if (ncclResult_t rc = lookupOp(state, call, op, datatype, type, mpiOp))
    return rc;
  const void *in = sendbuff == recvbuff ? MPI_IN_PLACE : sendbuff;
  int n = static_cast<int>(count);
  auto post = [=](MPI_Comm mpi, MPI_Request *request) {
    return MPI_Iallreduce(in, recvbuff, n, type.mpi, mpiOp, mpi, request);
  };
  return submit(state, call, stream,
                std::make_unique<Op>(comm->state, call, false, post));
}

ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff,
                           size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream) {
  const char *call = "ncclAllGather";
  const size_t size = comm ? comm->state->size : 0;
  Type type;
  if (ncclResult_t rc = checkCall(comm, call, stream, sendcount, datatype,
                                  {{"sendbuff", sendbuff, sendcount},
                                   {"recvbuff", recvbuff, sendcount * size}},
                                  type))
    return rc;
  CommState &state = *comm->state;
  // In place when sendbuff is this rank's block of recvbuff, as in MPI.
  const char *block =
      static_cast<char *>(recvbuff) + state.rank * sendcount * type.bytes;
  const void *in = sendbuff == block ? MPI_IN_PLACE : sendbuff;
  int n = static_cast<int>(sendcount);
  auto post = [=](MPI_Comm mpi, MPI_Request *request) {
    return MPI_Iallgather(in, n, type.mpi, recvbuff, n, type.mpi, mpi, request);
  };
  return submit(state, call, stream,
                std::make_unique<Op>(comm->state, call, false, post));
}

ncclResult_t ncclReduceScatter(const void *sendbuff, void *recvbuff,
                               size_t recvcount, ncclDataType_t datatype,
                               ncclRedOp_t op, ncclComm_t comm,
                               cudaStream_t stream) {
  const char *call = "ncclReduceScatter";
  const size_t size = comm ? comm->state->size : 0;
  Type type;
  MPI_Op mpiOp;
  if (ncclResult_t rc = checkCall(comm, call, stream, recvcount, datatype,
                                  {{"sendbuff", sendbuff, recvcount * size},
                                   {"recvbuff", recvbuff, recvcount}},
                                  type))
    return rc;
  CommState &state = *comm->state;
  if (ncclResult_t rc = lookupOp(state, call, op, datatype, type, mpiOp))
    return rc;
  // MPI wants disjoint buffers, and its in-place form leaves the result at
  // the start of the input, not at this rank's block (NCCL's in-place form),
  // so a result inside the input goes through a temporary.
  const size_t block = recvcount * type.bytes;
  const uintptr_t in = reinterpret_cast<uintptr_t>(sendbuff),
                  out = reinterpret_cast<uintptr_t>(recvbuff);
  std::unique_ptr<char[]> scratch;
  if (out < in + block * size && in < out + block)
    scratch.reset(new char[block]);
  void *result = scratch ? scratch.get() : recvbuff;
  int n = static_cast<int>(recvcount);
  auto post = [=](MPI_Comm mpi, MPI_Request *request) {
    return MPI_Ireduce_scatter_block(sendbuff, result, n, type.mpi, mpiOp, mpi,
                                     request);
  };
  auto work = std::make_unique<Op>(comm->state, call, false, post);
  if (scratch) {
    work->scratch = std::move(scratch);
    work->onSuccess = [=] { std::memcpy(recvbuff, result, block); };
  }
  return submit(state, call, stream, std::move(work));
}

ncclResult_t ncclBroadcast(const void *sendbuff, void *recvbuff, size_t count,
                           ncclDataType_t datatype, int root, ncclComm_t comm,
                           cudaStream_t stream) {
  const char *call = "ncclBroadcast";
  const bool isRoot = comm && comm->state->rank == root;
  Type type;
  if (ncclResult_t rc = checkCall(comm, call, stream, count, datatype,
                                  {{"sendbuff", sendbuff, isRoot ? count : 0},
                                   {"recvbuff", recvbuff, count}},
                                  type))
    return rc;
  CommState &state = *comm->state;
  if (ncclResult_t rc = checkRank(state, call, "root", root))
    return rc;
  const size_t bytes = count * type.bytes;
  int n = static_cast<int>(count);
  auto post = [=](MPI_Comm mpi, MPI_Request *request) {
    // The root's data is read when the stream reaches the call.
    if (isRoot && sendbuff != recvbuff)
      std::memmove(recvbuff, sendbuff, bytes);
    return MPI_Ibcast(recvbuff, n, type.mpi, root, mpi, request);
  };
  return submit(state, call, stream,
                std::make_unique<Op>(comm->state, call, false, post));
}

ncclResult_t ncclReduce(const void *sendbuff, void *recvbuff, size_t count,
                        ncclDataType_t datatype, ncclRedOp_t op, int root,
                        ncclComm_t comm, cudaStream_t stream) {
  const char *call = "ncclReduce";
  const bool isRoot = comm && comm->state->rank == root;
  Type type;
  MPI_Op mpiOp;
  // recvbuff is used at the root only (it may be null elsewhere).
  if (ncclResult_t rc = checkCall(comm, call, stream, count, datatype,
                                  {{"sendbuff", sendbuff, count},
                                   {"recvbuff", recvbuff, isRoot ? count : 0}},
                                  type))
    return rc;
  CommState &state = *comm->state;
  if (ncclResult_t rc = checkRank(state, call, "root", root))
    return rc;
  if (ncclResult_t rc = lookupOp(state, call, op, datatype, type, mpiOp))
    return rc;
  const void *in = isRoot && sendbuff == recvbuff ? MPI_IN_PLACE : sendbuff;
  int n = static_cast<int>(count);
  auto post = [=](MPI_Comm mpi, MPI_Request *request) {
    return MPI_Ireduce(in, recvbuff, n, type.mpi, mpiOp, root, mpi, request);
  };
  return submit(state, call, stream,
                std::make_unique<Op>(comm->state, call, false, post));
}
