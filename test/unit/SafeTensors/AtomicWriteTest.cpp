//===- AtomicWriteTest.cpp - write() never damages the target -------------===//
//
// Each test first writes a good "previous" checkpoint, then makes a second
// write fail in a different way (a read-only directory, a failing source, a
// rename onto a directory, a missing directory, a process killed mid-write)
// and checks that the previous file is byte-identical and still loads, and
// that no temporary is left behind (except after SIGKILL, where nothing can
// clean up: that temporary must not load).
//
//===----------------------------------------------------------------------===//

#include "TestUtil.h"

#include "gtest/gtest.h"

#include <csignal>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

using namespace mllm::runtime;
using namespace mllm::testutil;

namespace {

/// A small checkpoint whose contents depend on `step`.
void fillCheckpoint(SafeTensorsWriter &w, std::vector<float> &storage,
                    int64_t step) {
  storage.assign(64, float(step));
  w.add("weights", {8, 8}, storage);
  w.setMetadata("step", std::to_string(step));
}

/// Forks a process that writes a large checkpoint to `path` and stops
/// after its first chunk; once that chunk is on disk, sends it `sig` and
/// reaps it. Returns whether it died of the signal.
bool interruptMidWrite(const std::string &path, int sig) {
  int ready[2];
  if (::pipe(ready) != 0)
    return false;
  pid_t pid = ::fork();
  if (pid < 0)
    return false;
  if (pid == 0) {
    ::close(ready[0]);
    SafeTensorsWriter w;
    w.setMetadata("step", "2");
    w.add("weights", DType::F32,
          {int64_t(SafeTensorsWriter::chunkBytes / 4 * 3)},
          [&](uint64_t offset, llvm::MutableArrayRef<uint8_t> out) {
            std::fill(out.begin(), out.end(), 0x41);
            if (offset > 0) {
              // The first chunk is on disk: tell the parent, then hang
              // until it signals us.
              char c = 'k';
              (void)!::write(ready[1], &c, 1);
              for (;;)
                ::pause();
            }
            return llvm::Error::success();
          });
    (void)w.write(path);
    ::_exit(0); // not reached: the parent signals us mid-write
  }
  ::close(ready[1]);
  char c = 0;
  bool started = ::read(ready[0], &c, 1) == 1;
  ::close(ready[0]);
  int status = 0;
  return started && ::kill(pid, sig) == 0 &&
         ::waitpid(pid, &status, 0) == pid && WIFSIGNALED(status);
}

class AtomicWrite : public ::testing::Test {
protected:
  void SetUp() override {
    path = dir.path("ckpt.safetensors");
    SafeTensorsWriter w;
    fillCheckpoint(w, oldData, 1);
    ASSERT_EQ(errorText(w.write(path)), "");
    std::optional<std::string> bytes = slurp(path);
    ASSERT_TRUE(bytes);
    previous = *bytes;
  }

  /// The previous checkpoint is still there, unchanged, and still loads.
  void expectPreviousIntact() {
    EXPECT_EQ(slurp(path), previous);
    llvm::Expected<SafeTensorsFile> file = SafeTensorsFile::open(path);
    ASSERT_TRUE(bool(file)) << llvm::toString(file.takeError());
    EXPECT_EQ(file->metadata("step"), llvm::StringRef("1"));
  }

  void expectOnlyTarget() {
    EXPECT_EQ(dir.list(), std::vector<std::string>{"ckpt.safetensors"});
  }

  ScratchDir dir;
  std::string path;
  std::string previous;
  std::vector<float> oldData;
};

TEST_F(AtomicWrite, SuccessfulOverwriteReplacesAndCleansUp) {
  SafeTensorsWriter w;
  std::vector<float> data;
  fillCheckpoint(w, data, 2);
  ASSERT_EQ(errorText(w.write(path)), "");
  llvm::Expected<SafeTensorsFile> file = SafeTensorsFile::open(path);
  ASSERT_TRUE(bool(file));
  EXPECT_EQ(file->metadata("step"), llvm::StringRef("2"));
  expectOnlyTarget();
}

TEST_F(AtomicWrite, FailingSourceLeavesPreviousFile) {
  // Big enough that the first chunk is on disk when the second one fails:
  // the temporary is really partial, not empty.
  SafeTensorsWriter w;
  w.setMetadata("step", "2");
  int calls = 0;
  w.add(
      "weights", DType::F32, {int64_t(SafeTensorsWriter::chunkBytes / 4 * 2)},
      [&](uint64_t offset, llvm::MutableArrayRef<uint8_t> out) -> llvm::Error {
        ++calls;
        if (offset > 0)
          return llvm::createStringError("device copy failed");
        std::fill(out.begin(), out.end(), 0);
        return llvm::Error::success();
      });
  EXPECT_EQ(errorText(w.write(path)),
            path + ": tensor 'weights': device copy failed");
  EXPECT_EQ(calls, 2);
  expectPreviousIntact();
  expectOnlyTarget();
}

TEST_F(AtomicWrite, ReadOnlyDirectoryLeavesPreviousFile) {
  ASSERT_EQ(::chmod(dir.str().str().c_str(), 0555), 0);
  auto attempt = [&] {
    SafeTensorsWriter w;
    std::vector<float> data;
    fillCheckpoint(w, data, 2);
    return errorText(w.write(path));
  };
  std::string want =
      path + ": cannot create a temporary file next to it: Permission denied";
  if (::geteuid() != 0) {
    EXPECT_EQ(attempt(), want);
  } else {
    // Root ignores directory permissions: write as an unprivileged user in
    // a child process ("nobody"; the directory is 0555 for everyone).
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      if (::setgid(65534) != 0 || ::setuid(65534) != 0)
        ::_exit(3);
      ::_exit(attempt() == want ? 0 : 1);
    }
    int status = 0;
    ASSERT_EQ(::waitpid(pid, &status, 0), pid);
    ASSERT_TRUE(WIFEXITED(status));
    ASSERT_NE(WEXITSTATUS(status), 3) << "cannot drop root privileges";
    EXPECT_EQ(WEXITSTATUS(status), 0)
        << "the write did not fail with: " << want;
  }
  expectPreviousIntact();
  expectOnlyTarget();
}

TEST_F(AtomicWrite, DirectoryTargetIsRefusedWithoutTemporary) {
  // A non-empty directory, which rename() could not replace either: refused
  // before a temporary exists.
  std::string target = dir.path("taken");
  ASSERT_FALSE(llvm::sys::fs::create_directory(target));
  ASSERT_TRUE(spit(target + "/keep", "x"));
  SafeTensorsWriter w;
  std::vector<float> data;
  fillCheckpoint(w, data, 2);
  std::string err = errorText(w.write(target));
  EXPECT_EQ(err, target + ": is a directory; name a file");
  EXPECT_EQ(dir.list(),
            (std::vector<std::string>{"ckpt.safetensors", "taken"}));
  expectPreviousIntact();
}

TEST_F(AtomicWrite, MissingDirectoryFails) {
  std::string target = dir.path("no/such/dir/ckpt.safetensors");
  SafeTensorsWriter w;
  std::vector<float> data;
  fillCheckpoint(w, data, 2);
  EXPECT_EQ(errorText(w.write(target)),
            target + ": cannot create a temporary file next to it: No such "
                     "file or directory");
  expectPreviousIntact();
  expectOnlyTarget();
}

// A process killed in the middle of write() cannot clean up. The target must
// still be the previous checkpoint, and the partial temporary it leaves must
// not load.
TEST_F(AtomicWrite, KilledMidWriteNeverExposesPartialFile) {
  ASSERT_TRUE(interruptMidWrite(path, SIGKILL));

  expectPreviousIntact();
  std::vector<std::string> names = dir.list();
  ASSERT_EQ(names.size(), 2u);
  EXPECT_EQ(names[0], "ckpt.safetensors");
  ASSERT_TRUE(llvm::StringRef(names[1]).starts_with("ckpt.safetensors.tmp-"))
      << names[1];
  // The leftover holds the header and one chunk, and open() says it is cut.
  std::string leftover = dir.path(names[1]);
  std::optional<std::string> partial = slurp(leftover);
  ASSERT_TRUE(partial);
  EXPECT_GT(partial->size(), SafeTensorsWriter::chunkBytes);
  llvm::Expected<SafeTensorsFile> bad = SafeTensorsFile::open(leftover);
  ASSERT_FALSE(bool(bad));
  EXPECT_NE(llvm::toString(bad.takeError()).find("reach past the"),
            std::string::npos);
}

// SIGTERM or SIGINT (Ctrl-C) mid-write removes the temporary: a run
// interrupted during a long checkpoint leaves no checkpoint-sized file.
TEST_F(AtomicWrite, InterruptedMidWriteRemovesTemporary) {
  for (int sig : {SIGTERM, SIGINT}) {
    ASSERT_TRUE(interruptMidWrite(path, sig));
    expectPreviousIntact();
    expectOnlyTarget();
  }
}

// A link is written through (the link stays, its file is replaced), a
// device in place (--dump-batches /dev/null must not replace /dev/null by a
// regular file), a directory is refused.
TEST_F(AtomicWrite, LinksDevicesAndDirectories) {
  std::string link = dir.path("link.safetensors");
  ASSERT_EQ(::symlink(path.c_str(), link.c_str()), 0);
  SafeTensorsWriter w;
  std::vector<float> data;
  fillCheckpoint(w, data, 2);
  ASSERT_EQ(errorText(w.write(link)), "");
  struct stat st;
  ASSERT_EQ(::lstat(link.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  llvm::Expected<SafeTensorsFile> file = SafeTensorsFile::open(path);
  ASSERT_TRUE(bool(file)) << llvm::toString(file.takeError());
  EXPECT_EQ(file->metadata("step"), llvm::StringRef("2"));

  ASSERT_EQ(errorText(w.write("/dev/null")), "");
  ASSERT_EQ(::stat("/dev/null", &st), 0);
  EXPECT_TRUE(S_ISCHR(st.st_mode));

  EXPECT_NE(errorText(w.write(dir.path(""))).find("is a directory"),
            std::string::npos);
  // A link to nothing stays a link, and says so.
  std::string dangling = dir.path("dangling.safetensors");
  ASSERT_EQ(::symlink(dir.path("nowhere").c_str(), dangling.c_str()), 0);
  EXPECT_EQ(errorText(w.write(dangling)),
            dangling + ": is a link to a file that does not exist; name the "
                       "file, or create the link's target");
  ASSERT_EQ(::lstat(dangling.c_str(), &st), 0);
  EXPECT_TRUE(S_ISLNK(st.st_mode));
  ASSERT_EQ(::unlink(dangling.c_str()), 0);
  std::vector<std::string> names = dir.list();
  EXPECT_EQ(names,
            (std::vector<std::string>{"ckpt.safetensors", "link.safetensors"}));
}

// What an interrupted write leaves in its temporary, if it were ever renamed
// into place, never loads: every truncation of a real checkpoint file is
// rejected (the in-memory version of this runs over every prefix length in
// ValidationTest; this one goes through files).
TEST_F(AtomicWrite, TruncatedTemporaryNeverLoads) {
  for (size_t n : {size_t(0), size_t(7), size_t(8), size_t(20),
                   previous.size() / 2, previous.size() - 1}) {
    std::string cut = dir.path("cut.safetensors");
    ASSERT_TRUE(spit(cut, llvm::StringRef(previous).take_front(n)));
    llvm::Expected<SafeTensorsFile> file = SafeTensorsFile::open(cut);
    EXPECT_FALSE(bool(file)) << "a " << n << "-byte prefix loaded";
    if (!file)
      llvm::consumeError(file.takeError());
  }
}

} // namespace
