//===- Streams.cpp - The host twin's streams and events -------------------===//
//
// Kernels and copies run when they are called, so for them a stream is a
// token. Transfers do not: the NCCL twin (runtime/lib/CUDA/NCCLTwin.h)
// queues MPI operations on its streams (HostTwin.h's AsyncWork), and those
// finish while the host goes on, as a GPU's would. So each stream keeps a
// queue; everything that a GPU would order after that queue waits for it
// here:
//
//  * a kernel or copy called on a stream first finishes the stream's queue
//    (the host waits where the stream would), the legacy default stream's
//    (null) that of every blocking stream;
//  * an event is complete once its stream finished what was queued before
//    its record; cudaEventQuery and cudaStreamQuery say cudaErrorNotReady
//    until then (and make progress), the synchronize calls wait;
//  * cudaStreamWaitEvent on an event not yet complete queues the wait, so
//    the waiting stream's later kernels run after the event's work.
//
// A consumer that forgets such a wait runs before the transfer wrote its
// buffer, and reads the 0xFF bytes (NaN) or stale data a test then sees.
//
//===----------------------------------------------------------------------===//

#include "Twin.h"

#include "mllm/kernels/cuda/HostTwin.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

using namespace mllm::kernels;
using namespace mllm::kernels::cuda;

namespace {

/// A stream's queued work; the front one has started.
struct Queue {
  std::deque<std::unique_ptr<twin::AsyncWork>> work;
  uint64_t queued = 0, finished = 0;
  bool blocking = true; // the legacy stream waits for it
};

struct Stream {
  std::shared_ptr<Queue> queue = std::make_shared<Queue>();
};

/// Where a queue stood when an event was recorded: the event is complete
/// once each queue finished that many pieces of work.
using Marks = std::vector<std::pair<std::shared_ptr<Queue>, uint64_t>>;

bool reached(const Marks &marks) {
  for (const auto &[queue, until] : marks)
    if (queue->finished < until)
      return false;
  return true;
}

struct Event {
  bool timing = true, recorded = false;
  std::chrono::steady_clock::time_point at;
  /// One mark for a stream's record, every blocking queue's for the legacy
  /// stream's, none when never recorded.
  Marks marks;
  bool complete() const { return reached(marks); }
};

/// The wait cudaStreamWaitEvent queues for an event not yet complete.
class EventWait final : public twin::AsyncWork {
public:
  explicit EventWait(Marks marks) : marks(std::move(marks)) {}
  void start() override {}
  bool test() override { return reached(marks); }

private:
  Marks marks;
};

/// Recursive: the runtime's own calls nest (cudaStreamWaitEvent queues
/// its wait through twin::enqueue).
struct State {
  std::recursive_mutex mutex;
  std::map<const void *, Stream *> streams;
  std::map<const void *, Event *> events;
  /// Queues of destroyed streams that still had work (CUDA finishes it).
  std::vector<std::shared_ptr<Queue>> orphans;
};

State &state() {
  static State *s = new State; // never destroyed, as Runtime.cpp's
  return *s;
}

using Lock = std::lock_guard<std::recursive_mutex>;

bool isDefault(cudaStream_t stream) {
  return stream == nullptr || stream == cudaStreamLegacy ||
         stream == cudaStreamPerThread;
}

Stream *streamLocked(cudaStream_t stream) {
  auto it = state().streams.find(stream);
  return it == state().streams.end() ? nullptr : it->second;
}

Event *eventLocked(cudaEvent_t event) {
  auto it = state().events.find(event);
  return it == state().events.end() ? nullptr : it->second;
}

/// Finishes what is done at the front of `q`, starting what follows.
bool advance(Queue &q) {
  bool moved = false;
  while (!q.work.empty() && q.work.front()->test()) {
    q.work.pop_front();
    ++q.finished;
    moved = true;
    if (!q.work.empty())
      q.work.front()->start();
  }
  return moved;
}

bool progressLocked() {
  State &s = state();
  bool any = false;
  // One queue's progress can complete another's wait: until nothing moves.
  for (bool moved = true; moved;) {
    moved = false;
    for (auto &[handle, stream] : s.streams)
      moved |= advance(*stream->queue);
    for (auto &q : s.orphans)
      moved |= advance(*q);
    s.orphans.erase(std::remove_if(s.orphans.begin(), s.orphans.end(),
                                   [](const std::shared_ptr<Queue> &q) {
                                     return q->work.empty();
                                   }),
                    s.orphans.end());
    any |= moved;
  }
  return any;
}

/// Waits (making progress) until `done()`.
template <typename Done>
void waitUntil(Done done) {
  int sleepUs = 0;
  while (true) {
    {
      Lock lock(state().mutex);
      if (done())
        return;
      if (progressLocked())
        continue;
    }
    sleepUs = std::min(2 * sleepUs + 1, 50);
    std::this_thread::sleep_for(std::chrono::microseconds(sleepUs));
  }
}

/// Every blocking stream's queue, destroyed streams' unfinished ones
/// included (the legacy stream waits for them).
std::vector<std::shared_ptr<Queue>> blockingQueues() {
  std::vector<std::shared_ptr<Queue>> out;
  for (auto &[handle, stream] : state().streams)
    if (stream->queue->blocking)
      out.push_back(stream->queue);
  for (auto &q : state().orphans)
    if (q->blocking)
      out.push_back(q);
  return out;
}

void drain(const std::vector<std::shared_ptr<Queue>> &queues) {
  waitUntil([&] {
    for (auto &q : queues)
      if (!q->work.empty())
        return false;
    return true;
  });
}

} // namespace

//===----------------------------------------------------------------------===//
// HostTwin.h and Twin.h
//===----------------------------------------------------------------------===//

cudaError_t twin::enqueue(cudaStream_t stream,
                          std::unique_ptr<AsyncWork> work) {
  Lock lock(state().mutex);
  Stream *s = isDefault(stream) ? nullptr : streamLocked(stream);
  if (!s || !work)
    return recordError(cudaErrorInvalidResourceHandle);
  Queue &q = *s->queue;
  q.work.push_back(std::move(work));
  ++q.queued;
  if (q.work.size() == 1)
    q.work.front()->start();
  return cudaSuccess;
}

bool twin::progress() {
  Lock lock(state().mutex);
  return progressLocked();
}

bool twin::isLiveStream(cudaStream_t stream) {
  Lock lock(state().mutex);
  return isDefault(stream) || streamLocked(stream);
}

cudaError_t twin::settle(cudaStream_t stream) {
  std::vector<std::shared_ptr<Queue>> queues;
  {
    Lock lock(state().mutex);
    if (isDefault(stream))
      queues = blockingQueues();
    else if (Stream *s = streamLocked(stream))
      queues.push_back(s->queue);
    else
      return recordError(cudaErrorInvalidResourceHandle);
  }
  drain(queues);
  return cudaSuccess;
}

//===----------------------------------------------------------------------===//
// cuda_runtime_api.h
//===----------------------------------------------------------------------===//

extern "C" {

cudaError_t cudaDeviceSynchronize(void) {
  std::vector<std::shared_ptr<Queue>> queues;
  {
    Lock lock(state().mutex);
    for (auto &[handle, stream] : state().streams)
      queues.push_back(stream->queue);
    queues.insert(queues.end(), state().orphans.begin(), state().orphans.end());
  }
  drain(queues);
  return cudaSuccess;
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *pStream,
                                      unsigned int flags) {
  if (!pStream)
    return twin::recordError(cudaErrorInvalidValue);
  Stream *s = new Stream;
  s->queue->blocking = (flags & cudaStreamNonBlocking) == 0;
  *pStream = reinterpret_cast<cudaStream_t>(s);
  Lock lock(state().mutex);
  state().streams[s] = s;
  return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *pStream) {
  return cudaStreamCreateWithFlags(pStream, cudaStreamDefault);
}

cudaError_t cudaStreamCreateWithPriority(cudaStream_t *pStream,
                                         unsigned int flags, int priority) {
  (void)priority;
  return cudaStreamCreateWithFlags(pStream, flags);
}

/// As on a GPU, work still queued finishes after the stream is destroyed.
cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  Lock lock(state().mutex);
  Stream *s = streamLocked(stream);
  if (!s)
    return twin::recordError(cudaErrorInvalidResourceHandle);
  state().streams.erase(stream);
  if (!s->queue->work.empty())
    state().orphans.push_back(s->queue);
  delete s;
  return cudaSuccess;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  return twin::settle(stream);
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
  Lock lock(state().mutex);
  if (isDefault(stream)) {
    progressLocked();
    for (auto &q : blockingQueues())
      if (!q->work.empty())
        return cudaErrorNotReady;
    return cudaSuccess;
  }
  Stream *s = streamLocked(stream);
  if (!s)
    return twin::recordError(cudaErrorInvalidResourceHandle);
  progressLocked();
  return s->queue->work.empty() ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event,
                                unsigned int flags) {
  (void)flags;
  Event *e = nullptr;
  {
    Lock lock(state().mutex);
    e = eventLocked(event);
    if (!e || (!isDefault(stream) && !streamLocked(stream)))
      return twin::recordError(cudaErrorInvalidResourceHandle);
    progressLocked();
    if (e->complete())
      return cudaSuccess;
    if (!isDefault(stream))
      return twin::enqueue(stream, std::make_unique<EventWait>(e->marks));
  }
  // The legacy stream runs its work when it is called: wait now.
  waitUntil([&] { return e->complete(); });
  return cudaSuccess;
}

// Events: the host time of their last record, complete once their stream
// finished what was queued before it.

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags) {
  if (!event)
    return twin::recordError(cudaErrorInvalidValue);
  Event *e = new Event;
  e->timing = (flags & cudaEventDisableTiming) == 0;
  *event = reinterpret_cast<cudaEvent_t>(e);
  Lock lock(state().mutex);
  state().events[e] = e;
  return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *event) {
  return cudaEventCreateWithFlags(event, cudaEventDefault);
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  Lock lock(state().mutex);
  Event *e = eventLocked(event);
  if (!e)
    return twin::recordError(cudaErrorInvalidResourceHandle);
  state().events.erase(event);
  delete e;
  return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  Lock lock(state().mutex);
  Event *e = eventLocked(event);
  Stream *s = isDefault(stream) ? nullptr : streamLocked(stream);
  if (!e || (!isDefault(stream) && !s))
    return twin::recordError(cudaErrorInvalidResourceHandle);
  e->recorded = true;
  e->at = std::chrono::steady_clock::now();
  e->marks.clear();
  for (auto &q :
       s ? std::vector<std::shared_ptr<Queue>>{s->queue} : blockingQueues())
    e->marks.emplace_back(q, q->queued);
  return cudaSuccess;
}

/// Complete, also when never recorded (as the real runtime says).
cudaError_t cudaEventQuery(cudaEvent_t event) {
  Lock lock(state().mutex);
  Event *e = eventLocked(event);
  if (!e)
    return twin::recordError(cudaErrorInvalidResourceHandle);
  progressLocked();
  return e->complete() ? cudaSuccess : cudaErrorNotReady;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  Event *e = nullptr;
  {
    Lock lock(state().mutex);
    e = eventLocked(event);
    if (!e)
      return twin::recordError(cudaErrorInvalidResourceHandle);
  }
  waitUntil([&] { return e->complete(); });
  return cudaSuccess;
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start,
                                 cudaEvent_t end) {
  if (!ms)
    return twin::recordError(cudaErrorInvalidValue);
  Lock lock(state().mutex);
  Event *a = eventLocked(start), *b = eventLocked(end);
  if (!a || !b || !a->timing || !b->timing || !a->recorded || !b->recorded)
    return twin::recordError(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(b->at - a->at).count();
  return cudaSuccess;
}

} // extern "C"
