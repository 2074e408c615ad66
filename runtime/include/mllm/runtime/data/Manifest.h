//===- Manifest.h - a JSONL data set, one sample per line -------*- C++ -*-===//
//
//   {"text": "a red square <vision> on white", "vision": ["sq.png"]}
//
// "text" is required; every other key names an encoder of the plan that
// takes items, with one path or a list of paths (relative ones resolve
// against the manifest's directory). What is wrong with a line is a
// Problem: reported as `file:line: message`; a strict read stops at the
// first, the default skips the sample and counts it by kind.
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DATA_MANIFEST_H
#define MLLM_RUNTIME_DATA_MANIFEST_H

#include "mllm/runtime/data/Geometry.h"

#include "llvm/ADT/STLFunctionalExtras.h"

#include <array>
#include <string>
#include <vector>

namespace mllm::runtime::data {

/// Why a sample is not used. The names are what reports print.
enum class Problem : uint8_t {
  BadJson,          ///< "bad JSON": the line does not parse
  BadSample,        ///< "bad sample": not an object, no text, bad value type
  UnknownEncoder,   ///< "unknown encoder": a key that is no encoder with items
  TooManyItems,     ///< "too many items": more than the plan's items
  BadMarker,        ///< "bad marker": more `<enc>` markers than items
  MissingFile,      ///< "missing file"
  UndecodableMedia, ///< "undecodable media": the decoder refused the file
  AudioTooLong,     ///< "audio too long": longer than the item's windows
  TooLong,          ///< "too long": more tokens than a sequence holds
};
constexpr size_t kProblemKinds = 9;
const char *problemName(Problem problem);

/// A Problem as an llvm::Error, so the functions that find one can return
/// it and the reader can count it by kind.
class ProblemError : public llvm::ErrorInfo<ProblemError> {
public:
  static char ID;
  ProblemError(Problem kind, std::string message)
      : kind(kind), message(std::move(message)) {}
  void log(llvm::raw_ostream &os) const override;
  std::error_code convertToErrorCode() const override {
    return llvm::inconvertibleErrorCode();
  }
  Problem kind;
  std::string message;
};
llvm::Error problem(Problem kind, const llvm::Twine &message);

/// The problems of a read: counted by kind, the first few kept verbatim.
class Problems {
public:
  Problems(std::string file, bool strict)
      : file(std::move(file)), strict(strict) {}
  /// Counts `error` (a ProblemError; anything else counts as bad sample)
  /// found at `line`. Strict: returns it as `file:line: kind: message`.
  llvm::Error add(int64_t line, llvm::Error error);
  int64_t count(Problem kind) const {
    return counts[static_cast<size_t>(kind)];
  }
  int64_t total() const;
  /// "3 skipped: 2 missing file, 1 too long"; empty when none.
  std::string summary() const;
  /// The first messages, `file:line: kind: message`.
  const std::vector<std::string> &examples() const { return first; }
  const std::string &fileName() const { return file; }

private:
  std::string file;
  bool strict;
  std::array<int64_t, kProblemKinds> counts{};
  std::vector<std::string> first;
};

struct ManifestSample {
  int64_t line = 0; ///< 1-based line in the manifest.
  std::string text;
  /// Per encoder of the geometry, its items' paths, in manifest order.
  std::vector<std::vector<std::string>> media;
};

/// A further check of a parsed sample (its tokens, its files' headers).
/// Called from several threads at once when parsing runs on more than one.
using SampleCheck = llvm::function_ref<llvm::Error(const ManifestSample &)>;

/// Parses `contents` (the manifest `path`, which names it in messages and
/// whose directory relative media paths resolve against). Checks syntax,
/// encoders, item counts and that every file exists, then `check`, on
/// `threads` threads. Problems are reported in line order whatever the
/// threads did. Returns the samples that pass, in line order; fails only in
/// strict mode (with the problem of the first bad line).
llvm::Expected<std::vector<ManifestSample>>
parseManifest(llvm::StringRef contents, llvm::StringRef path,
              const DataGeometry &geometry, Problems &problems,
              SampleCheck check = nullptr, int threads = 1);

/// An error when `path` is a device or a directory: a device such as
/// /dev/zero would be read without end.
llvm::Error checkManifestFile(llvm::StringRef path);

/// Reads the file and parses it.
llvm::Expected<std::vector<ManifestSample>>
readManifest(llvm::StringRef path, const DataGeometry &geometry,
             Problems &problems, SampleCheck check = nullptr, int threads = 1);

} // namespace mllm::runtime::data

#endif // MLLM_RUNTIME_DATA_MANIFEST_H
