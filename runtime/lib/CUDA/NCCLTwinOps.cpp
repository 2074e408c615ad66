//===- NCCLTwinOps.cpp - The NCCL twin's data calls -----------------------===//
//
// Part of the host twin of NCCL (NCCLTwin.h): the data calls (send and
// receive, all-reduce, all-gather, reduce-scatter, broadcast, reduce), each
// checked and turned into one non-blocking MPI operation queued on its
// stream (NCCLTwinQueue.cpp), and the datatypes and reductions they map to
// MPI's. bf16 reductions widen to float and round back to nearest even.
//
//===----------------------------------------------------------------------===//

#include "NCCLTwin.h"

#include "mllm/kernels/cuda/HostTwin.h"

#include <cuda_bf16.h>

#include <climits>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <initializer_list>
#include <memory>

using namespace mllm::runtime::cuda::nccltwin;
namespace twin = mllm::kernels::cuda::twin;

namespace {

//===----------------------------------------------------------------------===//
// Datatypes and reductions
//===----------------------------------------------------------------------===//

struct Type {
  MPI_Datatype mpi;
  size_t bytes;
  bool reducible; // fp16 and fp8 are moved, not reduced
};

/// An MPI_User_function over bf16 values: inout[i] = combine(in[i],
/// inout[i]), rounded to nearest even by cuda_bf16.h's host conversion.
template <float (*Combine)(float, float)>
void bf16Reduce(void *in, void *inout, int *length, MPI_Datatype *) {
  const __nv_bfloat16 *a = static_cast<const __nv_bfloat16 *>(in);
  __nv_bfloat16 *b = static_cast<__nv_bfloat16 *>(inout);
  for (int i = 0; i < *length; ++i)
    b[i] = __float2bfloat16(
        Combine(__bfloat162float(a[i]), __bfloat162float(b[i])));
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
  if (state.initPolls > 0)
    return fail(&state, ncclInvalidUsage,
                "%s: the communicator is still initialising (poll "
                "ncclCommGetAsyncError until ncclSuccess first)",
                call);
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

} // namespace

//===----------------------------------------------------------------------===//
// Point-to-point
//===----------------------------------------------------------------------===//

namespace {

/// Starts connecting this rank's `send` end to `peer` (tag 1 from the
/// sending end, 2 from the receiving one), once per end and communicator.
void connect(CommState &state, int peer, bool send) {
  auto &slot = state.connections[{peer, send}];
  if (slot)
    return;
  slot = std::make_unique<CommState::Connection>();
  MPI_Isend(&slot->out, 1, MPI_CHAR, peer, send ? 1 : 2, state.mpi,
            &slot->hello);
  MPI_Irecv(&slot->in, 1, MPI_CHAR, peer, send ? 2 : 1, state.mpi,
            &slot->reply);
}

} // namespace

bool CommState::connected() {
  bool all = true;
  for (auto &entry : connections) {
    CommState::Connection &c = *entry.second;
    int done = 0;
    for (MPI_Request *r : {&c.hello, &c.reply})
      if (*r != MPI_REQUEST_NULL &&
          MPI_Test(r, &done, MPI_STATUS_IGNORE) == MPI_SUCCESS && !done)
        all = false;
  }
  return all;
}

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
  // A synchronous-mode send completes only once its receive matched it, as
  // an NCCL send does: MPI's eager small sends would let an ungrouped send
  // followed by a receive pass here and hang on GPUs.
  auto post = [=](MPI_Comm mpi, MPI_Request *request) {
    return send ? MPI_Issend(buff, n, MPI_BYTE, peer, 0, mpi, request)
                : MPI_Irecv(buff, n, MPI_BYTE, peer, 0, mpi, request);
  };
  auto op = std::make_unique<Op>(comm->state, call, true, post);
  if (!send)
    op->expectBytes = n, op->peer = peer;
  if (ncclResult_t rc = submit(state, call, stream, std::move(op)))
    return rc;
  if (!state.blocking)
    connect(state, peer, send);
  return ncclSuccess;
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

namespace {

/// What every rank must pass alike to one collective (FNV-1a; never 0).
uint64_t signatureOf(const char *call, size_t count, ncclDataType_t type,
                     int op, int root) {
  uint64_t h = 14695981039346656037ull;
  auto mix = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i, v >>= 8)
      h = (h ^ (v & 0xff)) * 1099511628211ull;
  };
  for (const char *c = call; *c; ++c)
    mix(static_cast<unsigned char>(*c));
  mix(count);
  mix(static_cast<uint64_t>(type));
  mix(static_cast<uint64_t>(op));
  mix(static_cast<uint64_t>(root));
  return h | 1;
}

} // namespace

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
  auto work = std::make_unique<Op>(comm->state, call, false, post);
  work->signature = signatureOf(call, count, datatype, op, 0);
  return submit(state, call, stream, std::move(work));
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
  auto work = std::make_unique<Op>(comm->state, call, false, post);
  work->signature = signatureOf(call, sendcount, datatype, 0, 0);
  return submit(state, call, stream, std::move(work));
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
  work->signature = signatureOf(call, recvcount, datatype, op, 0);
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
  auto work = std::make_unique<Op>(comm->state, call, false, post);
  work->signature = signatureOf(call, count, datatype, 0, root);
  return submit(state, call, stream, std::move(work));
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
  auto work = std::make_unique<Op>(comm->state, call, false, post);
  work->signature = signatureOf(call, count, datatype, op, root);
  return submit(state, call, stream, std::move(work));
}
