//===- CheckpointDir.cpp - the checkpoints of a --checkpoint-dir ----------===//
//
// A directory's checkpoints by name: `step-%08d.safetensors` files (one
// process) and `step-%08d` directories of shards (parallel runs), what
// killed writes leave, the lock one run holds on the directory, and the
// older checkpoints --keep-last removes. Only names this runtime makes are
// ever removed, and never through a link.
//
//===----------------------------------------------------------------------===//
#include "mllm/runtime/exec/Checkpoint.h"

#include "llvm/ADT/STLExtras.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/Path.h"

#include <cerrno>
#include <cstring>

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

using namespace mllm;
using namespace mllm::runtime;
using namespace mllm::runtime::exec;

std::string exec::checkpointName(int64_t step, bool sharded) {
  return llvm::formatv(sharded ? "step-{0:d8}" : "step-{0:d8}.safetensors",
                       step)
      .str();
}

llvm::Error exec::lockCheckpointDir(llvm::StringRef dir) {
  if (std::error_code ec = llvm::sys::fs::create_directories(dir))
    return llvm::createStringError(ec,
                                   "cannot create --checkpoint-dir '%s': %s",
                                   dir.str().c_str(), ec.message().c_str());
  // The longest path a checkpoint writes, `.step-N.partial/rank-R.
  // safetensors.tmp-HEX` (65 characters, 80 with room for longer steps and
  // ranks), must be one the system takes, or the first checkpoint fails
  // after the steps before it: probed with a file of a name that long.
  llvm::SmallString<256> probe(dir);
  llvm::sys::path::append(probe, ".mllm-run-probe-" + std::string(64, 'x'));
  int probeFd =
      ::open(probe.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (probeFd >= 0) {
    ::close(probeFd);
    ::unlink(probe.c_str());
  } else if (errno == ENAMETOOLONG) {
    return llvm::createStringError(
        std::make_error_code(std::errc::filename_too_long),
        "--checkpoint-dir '%s' is too long: the checkpoints' files in it "
        "would have paths of %zu characters, more than this system allows; "
        "name a shorter directory",
        dir.str().c_str(), probe.size());
  } else if (errno != EEXIST) {
    // Read-only (EROFS, EACCES, EPERM): the '.lock' an earlier run left
    // would still open below, and the run would fail at its first
    // checkpoint. (EEXIST: a probe an interrupted run left; writable.)
    return llvm::createStringError(
        std::error_code(errno, std::generic_category()),
        "cannot write into --checkpoint-dir '%s' (%s): name a directory this "
        "user can write, before the run trains for nothing",
        dir.str().c_str(), std::strerror(errno));
  }
  llvm::SmallString<256> path(dir);
  llvm::sys::path::append(path, ".lock");
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0)
    return llvm::createStringError(
        std::error_code(errno, std::generic_category()),
        "cannot write into --checkpoint-dir '%s' (%s): name a directory this "
        "user can write, before the run trains for nothing",
        dir.str().c_str(), std::strerror(errno));
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    // A file system without locks (ENOLCK, EOPNOTSUPP): run unguarded, as
    // before locks existed, rather than refuse every run there.
    if (errno != EWOULDBLOCK) {
      ::close(fd);
      return llvm::Error::success();
    }
    char holder[32] = {};
    ssize_t n = ::pread(fd, holder, sizeof holder - 1, 0);
    ::close(fd);
    llvm::StringRef pid = llvm::StringRef(holder, n > 0 ? n : 0).trim();
    return llvm::createStringError(
        std::errc::device_or_resource_busy,
        "--checkpoint-dir '%s' is in use by another mllm-run%s: two runs "
        "would overwrite each other's checkpoints; name another directory, "
        "or wait for that run to end",
        dir.str().c_str(),
        pid.empty() ? "" : (" (process " + pid.str() + ")").c_str());
  }
  // Who holds it, for the message above; the lock is the fd itself.
  std::string pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) == 0) {
    ssize_t written = ::pwrite(fd, pid.data(), pid.size(), 0);
    (void)written;
  }
  return llvm::Error::success(); // fd stays open until the process ends
}

std::string exec::newestCheckpoint(llvm::StringRef dir) {
  std::error_code ec;
  std::string best;
  int64_t bestStep = -1;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec;
       it.increment(ec)) {
    llvm::StringRef name = llvm::sys::path::filename(it->path());
    int64_t step;
    if (!name.consume_front("step-"))
      continue;
    name.consume_back(".safetensors");
    if (name.getAsInteger(10, step))
      continue;
    if (step > bestStep) {
      bestStep = step;
      best = it->path();
    }
  }
  return best;
}

std::vector<std::string> exec::removeCheckpointLeftovers(llvm::StringRef dir) {
  // Exactly the names this file and SafeTensorsWriter make, so that nothing
  // else of the user's is touched.
  auto isStep = [](llvm::StringRef &name) {
    if (!name.consume_front("step-"))
      return false;
    llvm::StringRef digits = name.take_while(llvm::isDigit);
    name = name.drop_front(digits.size());
    return !digits.empty();
  };
  std::vector<std::string> leftovers;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec;
       it.increment(ec)) {
    llvm::StringRef name = llvm::sys::path::filename(it->path());
    llvm::StringRef rest = name;
    bool partial = rest.consume_front(".") && isStep(rest) &&
                   rest == ".partial" &&
                   it->type() == llvm::sys::fs::file_type::directory_file;
    rest = name;
    bool temporary = isStep(rest) && rest.consume_front(".safetensors.tmp-") &&
                     !rest.empty() && rest.size() <= 16 &&
                     llvm::all_of(rest, llvm::isHexDigit) &&
                     it->type() == llvm::sys::fs::file_type::regular_file;
    if (!partial && !temporary)
      continue;
    // The entry's type may come from following a link (file systems that
    // report none): never remove what a link points at.
    llvm::sys::fs::file_status own;
    if (llvm::sys::fs::status(it->path(), own, /*Follow=*/false) ||
        llvm::sys::fs::is_symlink_file(own))
      continue;
    std::error_code failed;
    if (partial)
      failed = llvm::sys::fs::remove_directories(it->path(),
                                                 /*IgnoreErrors=*/false);
    else
      failed = llvm::sys::fs::remove(it->path());
    if (!failed)
      leftovers.push_back(name.str());
  }
  llvm::sort(leftovers);
  return leftovers;
}

std::vector<std::string> exec::removeOlderCheckpoints(llvm::StringRef dir,
                                                      int64_t keep,
                                                      llvm::StringRef written,
                                                      std::string &failure) {
  std::vector<std::pair<int64_t, std::string>> found;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(dir, ec), end; it != end && !ec;
       it.increment(ec)) {
    llvm::StringRef name = llvm::sys::path::filename(it->path());
    llvm::StringRef digits = name;
    if (!digits.consume_front("step-"))
      continue;
    bool file = digits.consume_back(".safetensors");
    int64_t step;
    // Exactly the names checkpointName() makes ('step-1/' and
    // 'step-0.safetensors' may be the user's).
    if (digits.empty() || !llvm::all_of(digits, llvm::isDigit) ||
        digits.getAsInteger(10, step) || checkpointName(step, !file) != name)
      continue;
    llvm::sys::fs::file_status own;
    if (llvm::sys::fs::status(it->path(), own, /*Follow=*/false) ||
        (file ? !llvm::sys::fs::is_regular_file(own)
              : !llvm::sys::fs::is_directory(own)))
      continue; // Links and anything else are the user's.
    found.push_back({step, name.str()});
  }
  // The newest first; the one just written is kept whatever its step.
  llvm::sort(found, [](const auto &a, const auto &b) { return a > b; });
  std::vector<std::string> removed;
  llvm::StringRef writtenName = llvm::sys::path::filename(written);
  int64_t kept = 0;
  for (const auto &[step, name] : found) {
    if (name == writtenName || kept < keep) {
      ++kept;
      continue;
    }
    llvm::SmallString<256> path(dir);
    llvm::sys::path::append(path, name);
    std::error_code failed =
        llvm::StringRef(name).ends_with(".safetensors")
            ? llvm::sys::fs::remove(path)
            : llvm::sys::fs::remove_directories(path, /*IgnoreErrors=*/false);
    if (failed) {
      if (failure.empty())
        failure =
            "cannot remove '" + path.str().str() + "': " + failed.message();
      continue;
    }
    removed.push_back(name);
  }
  return removed;
}
