//===- Sema.h - loading and checking a .mllm program ------------*- C++ -*-===//
#ifndef MLLM_SEMA_SEMA_H
#define MLLM_SEMA_SEMA_H

#include "mllm/AST/AST.h"
#include "mllm/Sema/Spec.h"
#include "mllm/Support/Diagnostics.h"

#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mllm {

/// Limits of what loadProgram reads (docs/cli.md, "Input limits"): the
/// parser's memory grows with a file's size (a few hundred bytes per byte),
/// and each nested import is a level of recursion.
inline constexpr size_t kMaxSourceFileBytes = size_t(1) << 20;
inline constexpr size_t kMaxProgramBytes = size_t(8) << 20;
inline constexpr unsigned kMaxImportDepth = 64;

struct LoadOptions {
  /// Searched in order for `import name;`, before the stdlib directory.
  std::vector<std::string> includeDirs;
  std::string stdlibDir;
  /// Path of the main file, when its buffer is named otherwise (a chunk of
  /// --split-input-file): relative imports resolve against it.
  std::string mainFile;
};

/// Where `import NAME;` finds the standard library when no --stdlib is
/// given: $MLLM_STDLIB, else the stdlib/ of the source tree it was built from.
std::string defaultStdlibDir();

/// A main file and everything it imports, each parsed once.
struct Program {
  /// Files in load order; files[0] is the main file.
  std::vector<std::unique_ptr<ast::File>> files;
  const ast::File &main() const { return *files.front(); }
  /// The standard library directory the imports searched ("" if none): an
  /// unknown name declared there is reported with the import it needs.
  std::string stdlibDir;
};

/// Parses `mainBuffer` (already in the diagnostics' SourceMgr) and, depth
/// first, every file it imports. Reports syntax errors, unresolvable imports
/// and import cycles. Returns null only if the main file could not be parsed
/// at all.
std::unique_ptr<Program> loadProgram(unsigned mainBuffer,
                                     const LoadOptions &options,
                                     Diagnostics &diags);

/// Checks declarations across all files (names, duplicates, types, units,
/// ranges, inheritance). With `requireJob`, also resolves the model, data,
/// cluster, parallel and train blocks into a Job and checks their
/// consistency. Returns nullopt if any error was reported.
/// If `library` is given, it receives every resolved instance and hardware
/// profile. `trainSteps`: the steps a tool trains instead of train.steps,
/// which the diagnostics then count.
std::optional<spec::Job> analyze(const Program &program, Diagnostics &diags,
                                 bool requireJob = true,
                                 spec::Library *library = nullptr,
                                 std::optional<int64_t> trainSteps = {});

} // namespace mllm

#endif // MLLM_SEMA_SEMA_H
