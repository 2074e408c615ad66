//===- SafeTensorsWriter.cpp - Deterministic, atomic safetensors writer ---===//
//
// A checkpoint must never be half-written at its final path: a crash during
// the write would otherwise leave a file that is either unreadable or, worse,
// readable with the wrong contents. So the bytes go to a fresh temporary file
// in the target's directory (rename is atomic only within one file system),
// which is fsync'ed, renamed over the target, and the directory is fsync'ed
// so that the rename itself survives a power loss.
//
// The runtime only runs on Linux, so this uses POSIX calls directly:
// llvm::sys::fs has no directory fsync.
//
//===----------------------------------------------------------------------===//

#include "mllm/runtime/SafeTensors.h"

#include "llvm/ADT/SmallString.h"
#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/Endian.h"
#include "llvm/Support/Errno.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/MathExtras.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Signals.h"
#include "llvm/Support/raw_ostream.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <random>
#include <sys/stat.h>
#include <unistd.h>

using namespace mllm;
using namespace mllm::runtime;
using llvm::ArrayRef;
using llvm::Error;
using llvm::Expected;
using llvm::StringRef;
using llvm::Twine;

static Error fail(StringRef file, const Twine &what) {
  return llvm::make_error<llvm::StringError>(file + ": " + what,
                                             llvm::inconvertibleErrorCode());
}

static std::string errnoText(int err) { return llvm::sys::StrError(err); }

//===----------------------------------------------------------------------===//
// Building
//===----------------------------------------------------------------------===//

void SafeTensorsWriter::addImpl(StringRef name, DType dtype,
                                ArrayRef<int64_t> shape,
                                std::optional<uint64_t> count, Source source) {
  if (!firstError.empty())
    return;
  auto reject = [&](const Twine &what) {
    firstError = ("tensor '" + name + "': " + what).str();
  };
  if (name.empty())
    return reject("the name is empty");
  if (name == "__metadata__")
    return reject("the name is reserved for the metadata");
  if (!llvm::json::isUTF8(name))
    return reject("the name is not valid UTF-8");
  if (index.count(name))
    return reject("added twice");
  uint64_t elements = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] < 0)
      return reject("shape[" + Twine(i) + "] is negative (" + Twine(shape[i]) +
                    ")");
    bool overflow = false;
    elements =
        llvm::SaturatingMultiply(elements, uint64_t(shape[i]), &overflow);
    if (overflow)
      return reject("the element count overflows 64 bits");
  }
  bool overflow = false;
  uint64_t bytes =
      llvm::SaturatingMultiply(elements, uint64_t(dtypeSize(dtype)), &overflow);
  if (overflow)
    return reject("the byte size overflows 64 bits");
  if (count && *count != elements)
    return reject(Twine(*count) + " elements given for a shape of " +
                  Twine(elements));
  if (!source && bytes > 0)
    return reject("no data");
  uint64_t total = llvm::SaturatingAdd(totalBytes, bytes, &overflow);
  if (overflow)
    return reject("the file would exceed 2^64 bytes");
  totalBytes = total;
  index[name] = pending.size();
  pending.push_back({name.str(), dtype,
                     llvm::SmallVector<int64_t, 4>(shape.begin(), shape.end()),
                     bytes, std::move(source)});
}

/// A Source over a host buffer that the caller keeps alive.
static SafeTensorsWriter::Source fromPointer(const void *data) {
  if (!data)
    return nullptr;
  const uint8_t *bytes = static_cast<const uint8_t *>(data);
  return [bytes](uint64_t offset, llvm::MutableArrayRef<uint8_t> out) {
    std::memcpy(out.data(), bytes + offset, out.size());
    return Error::success();
  };
}

void SafeTensorsWriter::add(StringRef name, DType dtype,
                            ArrayRef<int64_t> shape, const void *data) {
  addImpl(name, dtype, shape, std::nullopt, fromPointer(data));
}

void SafeTensorsWriter::add(StringRef name, DType dtype,
                            ArrayRef<int64_t> shape, Source source) {
  addImpl(name, dtype, shape, std::nullopt, std::move(source));
}

void SafeTensorsWriter::add(StringRef name, ArrayRef<int64_t> shape,
                            ArrayRef<float> data) {
  addImpl(name, DType::F32, shape, data.size(), fromPointer(data.data()));
}

void SafeTensorsWriter::add(StringRef name, ArrayRef<int64_t> shape,
                            ArrayRef<double> data) {
  addImpl(name, DType::F64, shape, data.size(), fromPointer(data.data()));
}

void SafeTensorsWriter::add(StringRef name, ArrayRef<int64_t> shape,
                            ArrayRef<int64_t> data) {
  addImpl(name, DType::I64, shape, data.size(), fromPointer(data.data()));
}

void SafeTensorsWriter::add(StringRef name, ArrayRef<int64_t> shape,
                            ArrayRef<int32_t> data) {
  addImpl(name, DType::I32, shape, data.size(), fromPointer(data.data()));
}

void SafeTensorsWriter::setMetadata(StringRef key, StringRef value) {
  if (!firstError.empty())
    return;
  if (!llvm::json::isUTF8(key) || !llvm::json::isUTF8(value)) {
    firstError = ("metadata '" + key + "': not valid UTF-8").str();
    return;
  }
  meta[key.str()] = value.str();
}

//===----------------------------------------------------------------------===//
// Serialising
//===----------------------------------------------------------------------===//

/// The JSON header, padded with spaces to a multiple of 8 so that the data
/// (and every tensor whose offset is a multiple of its element size) is
/// aligned in a mapped file. Keys come in a fixed order: `__metadata__`
/// first with its keys sorted, then the tensors in insertion order, each as
/// dtype, shape, data_offsets.
Expected<std::string> SafeTensorsWriter::header() const {
  std::string text;
  llvm::raw_string_ostream os(text);
  llvm::json::OStream json(os);
  json.object([&] {
    if (!meta.empty())
      json.attributeObject("__metadata__", [&] {
        for (const auto &kv : meta)
          json.attribute(kv.first, kv.second);
      });
    uint64_t offset = 0;
    for (const Pending &p : pending) {
      json.attributeObject(p.name, [&] {
        json.attribute("dtype", dtypeName(p.dtype));
        json.attributeArray("shape", [&] {
          for (int64_t d : p.shape)
            json.value(d);
        });
        json.attributeArray("data_offsets", [&] {
          json.value(offset);
          json.value(offset + p.bytes);
        });
      });
      offset += p.bytes;
    }
  });
  os.flush();
  text.append((8 - text.size() % 8) % 8, ' ');
  if (text.size() > SafeTensorsLimits::maxHeaderBytes)
    return llvm::createStringError(
        "the header would be " + Twine(text.size()) + " bytes, over the " +
        Twine(SafeTensorsLimits::maxHeaderBytes) + "-byte limit of readers");
  return std::move(text);
}

Error SafeTensorsWriter::emit(StringRef fileName, Sink sink) const {
  if (!firstError.empty())
    return fail(fileName, firstError);
  Expected<std::string> text = header();
  if (!text)
    return fail(fileName, toString(text.takeError()));
  uint8_t length[8];
  llvm::support::endian::write64le(length, text->size());
  if (Error err = sink(length))
    return err;
  if (Error err = sink(llvm::arrayRefFromStringRef(*text)))
    return err;
  std::vector<uint8_t> chunk;
  for (const Pending &p : pending) {
    chunk.resize(std::min<uint64_t>(p.bytes, chunkBytes));
    for (uint64_t offset = 0; offset < p.bytes;) {
      uint64_t n = std::min<uint64_t>(p.bytes - offset, chunkBytes);
      llvm::MutableArrayRef<uint8_t> out(chunk.data(), n);
      if (Error err = p.source(offset, out))
        return fail(fileName,
                    "tensor '" + p.name + "': " + toString(std::move(err)));
      if (Error err = sink(out))
        return err;
      offset += n;
    }
  }
  return Error::success();
}

Expected<std::string> SafeTensorsWriter::serialize() const {
  std::string out;
  auto append = [&](ArrayRef<uint8_t> bytes) {
    out.append(reinterpret_cast<const char *>(bytes.data()), bytes.size());
    return Error::success();
  };
  if (Error err = emit("<serialize>", append))
    return std::move(err);
  return std::move(out);
}

//===----------------------------------------------------------------------===//
// Atomic write
//===----------------------------------------------------------------------===//

namespace {
/// A temporary file that is removed unless released: every early return of
/// write() cleans up without a goto ladder.
class TempFile {
public:
  ~TempFile() {
    if (fd >= 0)
      ::close(fd);
    if (!path.empty()) {
      ::unlink(path.c_str());
      llvm::sys::DontRemoveFileOnSignal(path);
    }
  }

  /// PATH.tmp-XXXXXXXX with O_EXCL, mode 0666 minus the umask (mkstemp
  /// would force 0600). Our own names, because llvm::sys::fs's model
  /// strings treat every '%' in the target path as a placeholder.
  Error create(StringRef target) {
    std::random_device rd;
    for (int attempt = 0; attempt < 100; ++attempt) {
      std::string candidate =
          (target + ".tmp-" + llvm::utohexstr(rd(), /*LowerCase=*/true)).str();
      int f = ::open(candidate.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC,
                     0666);
      if (f >= 0) {
        fd = f;
        path = std::move(candidate);
        // Ctrl-C or a kill during a long checkpoint write leaves no
        // checkpoint-sized temporary behind.
        llvm::sys::RemoveFileOnSignal(path);
        return Error::success();
      }
      if (errno != EEXIST)
        return fail(target, "cannot create a temporary file next to it: " +
                                errnoText(errno));
    }
    return fail(target, "cannot find an unused temporary file name");
  }

  Error writeAll(StringRef target, const uint8_t *data, size_t size) {
    while (size > 0) {
      ssize_t n = ::write(fd, data, size);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        return fail(target, "cannot write " + path + ": " + errnoText(errno));
      }
      data += n;
      size -= size_t(n);
    }
    return Error::success();
  }

  /// fsync and close; the data is on disk when this succeeds.
  Error finish(StringRef target) {
    if (::fsync(fd) != 0)
      return fail(target, "cannot fsync " + path + ": " + errnoText(errno));
    int f = fd;
    fd = -1;
    if (::close(f) != 0)
      return fail(target, "cannot close " + path + ": " + errnoText(errno));
    return Error::success();
  }

  /// After a successful rename the name belongs to the target.
  void release() {
    llvm::sys::DontRemoveFileOnSignal(path);
    path.clear();
  }

  int fd = -1;
  std::string path;
};
} // namespace

Error SafeTensorsWriter::writeInPlace(StringRef path) const {
  // A regular file behind /dev/stdout is appended to: reopened, it would be
  // written from its start, over what the process wrote there before.
  struct stat st;
  const int append = ::stat(path.str().c_str(), &st) == 0 && S_ISREG(st.st_mode)
                         ? O_APPEND
                         : 0;
  int fd = ::open(path.str().c_str(), O_WRONLY | O_CLOEXEC | append);
  if (fd < 0)
    return fail(path, "cannot open: " + errnoText(errno));
  auto sink = [&](ArrayRef<uint8_t> bytes) -> Error {
    const uint8_t *data = bytes.data();
    size_t size = bytes.size();
    while (size > 0) {
      ssize_t n = ::write(fd, data, size);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0)
        return fail(path, "cannot write: " + errnoText(errno));
      data += n;
      size -= size_t(n);
    }
    return Error::success();
  };
  Error err = emit(path, sink);
  if (::close(fd) != 0 && !err)
    return fail(path, "cannot close: " + errnoText(errno));
  return err;
}

Error SafeTensorsWriter::write(StringRef path) const {
  // Report mistakes before touching the file system.
  if (!firstError.empty())
    return fail(path, firstError);
  if (Expected<std::string> text = header(); !text)
    return fail(path, toString(text.takeError()));

  // A link is written through to the file it names; a device or a pipe
  // (--dump-batches /dev/null) in place: a rename would replace either.
  // /dev/stdout or /proc/self/fd/N redirected to a file names that file:
  // replacing it would cut off whoever else writes there (--json output).
  std::string target = path.str();
  struct stat st;
  if (::stat(target.c_str(), &st) == 0) {
    if (S_ISDIR(st.st_mode))
      return fail(path, "is a directory; name a file");
    if (!S_ISREG(st.st_mode) || path.starts_with("/dev/") ||
        path.starts_with("/proc/"))
      return writeInPlace(path);
    llvm::SmallString<256> real;
    if (!llvm::sys::fs::real_path(path, real))
      target = std::string(real);
  } else if (::lstat(target.c_str(), &st) == 0 && S_ISLNK(st.st_mode)) {
    return fail(path, "is a link to a file that does not exist; name the "
                      "file, or create the link's target");
  }

  TempFile temp;
  if (Error err = temp.create(target))
    return err;

  // Small pieces (length, header, small tensors) are gathered into one
  // buffer so a checkpoint of many small tensors is not a syscall each.
  constexpr size_t bufferBytes = 1 << 20;
  std::vector<uint8_t> buffer;
  buffer.reserve(bufferBytes);
  auto flush = [&]() -> Error {
    Error err = temp.writeAll(path, buffer.data(), buffer.size());
    buffer.clear();
    return err;
  };
  auto sink = [&](ArrayRef<uint8_t> bytes) -> Error {
    if (buffer.size() + bytes.size() > bufferBytes)
      if (Error err = flush())
        return err;
    if (bytes.size() >= bufferBytes)
      return temp.writeAll(path, bytes.data(), bytes.size());
    buffer.insert(buffer.end(), bytes.begin(), bytes.end());
    return Error::success();
  };
  if (Error err = emit(path, sink))
    return err;
  if (Error err = flush())
    return err;
  if (Error err = temp.finish(path))
    return err;

  if (::rename(temp.path.c_str(), target.c_str()) != 0)
    return fail(path,
                "cannot rename " + temp.path + " over it: " + errnoText(errno));
  temp.release();

  // Make the rename durable.
  llvm::SmallString<256> dir(target);
  llvm::sys::path::remove_filename(dir);
  if (dir.empty())
    dir = ".";
  if (std::error_code ec = syncDirectory(dir))
    return fail(path, "written, but the directory " + dir +
                          " could not be fsync'ed, so the new file may not "
                          "survive a crash: " +
                          ec.message());
  return Error::success();
}

std::error_code mllm::runtime::syncDirectory(llvm::StringRef dir) {
  llvm::SmallString<256> path(dir);
  int dfd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0 || (::fsync(dfd) != 0 && errno != EINVAL)) {
    int err = errno;
    if (dfd >= 0)
      ::close(dfd);
    return std::error_code(err, std::generic_category());
  }
  ::close(dfd);
  return {};
}
