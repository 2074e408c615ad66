//===- MessageArena.cpp - a rank's message buffers in one arena -----------===//
#include "mllm/runtime/exec/MessageArena.h"

#include "llvm/Support/FormatVariadic.h"

using namespace mllm;
using namespace mllm::runtime::exec;
using sched::Buffer;
using sched::BufferKind;

static bool isMessage(BufferKind kind) {
  return kind == BufferKind::RecvAct || kind == BufferKind::RecvGrad ||
         kind == BufferKind::SendAct || kind == BufferKind::SendGrad;
}

static llvm::Error internal(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(),
                                 message + " (internal error: the runtime "
                                           "and its static memory plan "
                                           "disagree)");
}

llvm::Error MessageArena::plan(const sched::Program &program,
                               llvm::ArrayRef<int64_t> releases,
                               llvm::ArrayRef<int64_t> floats) {
  if (!live.empty())
    return internal(llvm::formatv("{0} message buffers are still in use "
                                  "when the next iteration is laid out",
                                  live.size()));
  // The plan's lifetimes; the runtime's sizes, whole allocation granules so
  // that the highest byte in use reaches the arena's end.
  std::vector<Buffer> buffers =
      sched::programBuffers(program, sched::StageSizes(), releases);
  llvm::erase_if(buffers, [&](Buffer &b) {
    if (!isMessage(b.kind))
      return true;
    auto i = static_cast<size_t>(b.action);
    int64_t n = i < floats.size() ? floats[i] : 0;
    int64_t bytes = n * static_cast<int64_t>(sizeof(float));
    b.bytes = (bytes + sched::kArenaAlignment - 1) / sched::kArenaAlignment *
              sched::kArenaAlignment;
    return b.bytes == 0;
  });
  planned.buffers = std::move(buffers);
  planned.arenaBytes = sched::packBuffers(planned.buffers);
  bufferOf.clear();
  for (size_t i = 0; i < planned.buffers.size(); ++i)
    bufferOf[planned.buffers[i].action] = i;
  freed.clear();
  highWater = 0;
  if (planned.arenaBytes > capacity) {
    capacity = planned.arenaBytes;
    storage.reset(new float[capacity / sizeof(float)]);
  }
  return llvm::Error::success();
}

llvm::Expected<float *> MessageArena::take(int64_t action, int64_t at,
                                           int64_t floats) {
  auto it = bufferOf.find(action);
  int64_t bytes = floats * static_cast<int64_t>(sizeof(float));
  if (it == bufferOf.end()) {
    if (bytes > 0)
      return internal(llvm::formatv(
          "message action {0} has no buffer for its {1} bytes", action, bytes));
    // An empty message takes no room; MPI never touches its pointer.
    static float empty;
    return &empty;
  }
  const Buffer &b = planned.buffers[it->second];
  if (bytes > b.bytes)
    return internal(llvm::formatv("message action {0} needs {1} bytes, its "
                                  "buffer holds {2}",
                                  action, bytes, b.bytes));
  if (freed.count(action))
    return internal(llvm::formatv(
        "the buffer of message action {0} is taken a second time", action));
  if (at < b.first || at > b.last)
    return internal(llvm::formatv("the buffer of message action {0} is taken "
                                  "at action {1}, outside its lifetime "
                                  "{2}..{3}",
                                  action, at, b.first, b.last));
  int64_t end = b.offset + b.bytes;
  // Buffers in use are disjoint: of those starting before this one ends,
  // the last one ends latest.
  auto after = live.lower_bound(end);
  if (after != live.begin())
    if (auto prev = std::prev(after); prev->second > b.offset)
      return internal(llvm::formatv(
          "the buffer of message action {0} (bytes {1}..{2}) overlaps bytes "
          "{3}..{4} still in use",
          action, b.offset, end, prev->first, prev->second));
  live[b.offset] = end;
  freed[action] = -1;
  highWater = std::max(highWater, end);
  return storage.get() + b.offset / static_cast<int64_t>(sizeof(float));
}

llvm::Error MessageArena::release(int64_t action, int64_t at) {
  auto it = bufferOf.find(action);
  if (it == bufferOf.end())
    return llvm::Error::success();
  const Buffer &b = planned.buffers[it->second];
  auto f = freed.find(action);
  if (f == freed.end() || f->second >= 0)
    return internal(llvm::formatv(
        "the buffer of message action {0} is freed but not in use", action));
  if (at > b.last)
    return internal(llvm::formatv("the buffer of message action {0} is freed "
                                  "at action {1}, after its lifetime ends at "
                                  "action {2}",
                                  action, at, b.last));
  f->second = at;
  live.erase(b.offset);
  return llvm::Error::success();
}
