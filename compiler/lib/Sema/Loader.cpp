//===- Loader.cpp - resolving imports -------------------------------------===//
//
// `import llama;` and `import models.llama;` search the -I directories and
// then the stdlib; `import "./x.mllm";` is relative to the importing file.
// Every file is parsed once (diamonds are fine); a file that imports itself,
// directly or not, is an error that shows the chain. Files larger than
// kMaxSourceFileBytes, programs larger than kMaxProgramBytes and imports
// nested deeper than kMaxImportDepth are errors too: the parser's memory
// grows with a file's size, and each nested import is a level of recursion.
//
//===----------------------------------------------------------------------===//
#include "mllm/Frontend/Parse.h"
#include "mllm/Sema/Sema.h"
#include "mllm/runtime/ReadFile.h"

#include "llvm/ADT/StringMap.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Process.h"

using namespace mllm;

namespace {

class Loader {
public:
  Loader(const LoadOptions &options, Diagnostics &diags, Program &program)
      : options(options), diags(diags), program(program) {}

  void load(unsigned bufferId) {
    // An import's size was checked at the import.
    if (stack.empty() && !checkSize(bufferId, llvm::SMRange()))
      return;
    std::unique_ptr<ast::File> file = parseBuffer(bufferId, diags);
    if (!file)
      return;
    std::string key = canonical(file->path);
    state[key] = InProgress;
    stack.push_back({key, llvm::SMRange()});
    ast::File *raw = file.get();
    program.files.push_back(std::move(file));
    for (const ast::Import &import : raw->imports)
      follow(*raw, import);
    stack.pop_back();
    state[key] = Done;
  }

private:
  enum State { InProgress, Done };

  /// Reports a file beyond the size limits, at the import that names it
  /// (`at`), else at its start; returns false if it is.
  bool checkSize(unsigned bufferId, llvm::SMRange at) {
    const llvm::MemoryBuffer *buffer =
        diags.getSourceMgr().getMemoryBuffer(bufferId);
    size_t size = buffer->getBufferSize();
    llvm::SMRange where =
        at.isValid()
            ? at
            : llvm::SMRange(
                  llvm::SMLoc::getFromPointer(buffer->getBufferStart()),
                  llvm::SMLoc::getFromPointer(buffer->getBufferStart()));
    if (size > kMaxSourceFileBytes) {
      diags.error(where) << "'" << buffer->getBufferIdentifier() << "' has "
                         << size << " bytes; a source file may have at most "
                         << kMaxSourceFileBytes
                         << " (split it into files that import each other)";
      return false;
    }
    total += size;
    if (total > kMaxProgramBytes) {
      diags.error(where) << "the spec and its imports exceed "
                         << kMaxProgramBytes << " bytes, the limit of a "
                         << "program, with '" << buffer->getBufferIdentifier()
                         << "'";
      return false;
    }
    return true;
  }

  static std::string canonical(llvm::StringRef path) {
    llvm::SmallString<256> real;
    if (!llvm::sys::fs::real_path(path, real))
      return std::string(real);
    return path.str();
  }

  /// Candidate paths for an import, in search order.
  std::vector<std::string> candidates(const ast::File &from,
                                      const ast::Import &import) const {
    std::vector<std::string> out;
    if (import.isPath) {
      if (llvm::sys::path::is_absolute(import.target)) {
        out.push_back(import.target);
      } else {
        llvm::StringRef base = from.path;
        if (&from == program.files.front().get() && !options.mainFile.empty())
          base = options.mainFile;
        llvm::SmallString<256> p(llvm::sys::path::parent_path(base));
        llvm::sys::path::append(p, import.target);
        out.push_back(std::string(p));
      }
      return out;
    }
    llvm::SmallString<128> rel;
    llvm::SmallVector<llvm::StringRef> parts;
    llvm::StringRef(import.target).split(parts, '.');
    for (llvm::StringRef part : parts)
      llvm::sys::path::append(rel, part);
    rel += ".mllm";
    std::vector<std::string> dirs = options.includeDirs;
    if (!options.stdlibDir.empty())
      dirs.push_back(options.stdlibDir);
    for (const std::string &dir : dirs) {
      llvm::SmallString<256> p(dir);
      llvm::sys::path::append(p, rel);
      out.push_back(std::string(p));
    }
    return out;
  }

  void follow(const ast::File &from, const ast::Import &import) {
    if (import.isPath && import.target.empty()) {
      diags.error(import.range)
          << "empty import path; write the file to import, e.g. "
             "'import \"models.mllm\";'";
      return;
    }
    std::vector<std::string> paths = candidates(from, import);
    std::string found;
    for (const std::string &p : paths)
      if (llvm::sys::fs::is_regular_file(p)) {
        found = p;
        break;
      }
    if (found.empty()) {
      auto diag = diags.error(import.range)
                  << "cannot find import '" << import.target << "'";
      bool absolute =
          import.isPath && llvm::sys::path::is_absolute(import.target);
      if (import.isPath && llvm::sys::fs::is_directory(paths.front()))
        diags.note(diag, import.range,
                   "'" + paths.front() +
                       "' is a directory; import a .mllm file in it");
      else if (import.isPath && llvm::sys::fs::exists(paths.front()))
        diags.note(diag, import.range,
                   "'" + paths.front() +
                       "' is not a regular file (a device, pipe or socket); "
                       "import a .mllm file");
      else if (absolute)
        diags.note(diag, import.range,
                   "looked for '" + paths.front() + "', which does not exist");
      else if (import.isPath)
        diags.note(diag, import.range,
                   "looked for '" + paths.front() +
                       "'; paths are relative to the importing file");
      else {
        // Named: a stdlib found through $MLLM_STDLIB or a moved build is
        // otherwise invisible.
        std::string dirs;
        for (const std::string &p : paths)
          dirs += (dirs.empty() ? "'" : ", '") +
                  llvm::sys::path::parent_path(p).str() + "'";
        diags.note(diag, import.range,
                   "searched " + std::to_string(paths.size()) + " director" +
                       (paths.size() == 1 ? "y" : "ies") +
                       " (-I, then the stdlib): " + dirs +
                       "; add one with -I DIR");
      }
      // A mistyped directory, not a missing file, is the likelier cause.
      if (!import.isPath) {
        for (const std::string &dir : options.includeDirs)
          if (!llvm::sys::fs::is_directory(dir))
            diags.note(diag, import.range,
                       "the -I directory '" + dir + "' does not exist");
        if (!options.stdlibDir.empty() &&
            !llvm::sys::fs::is_directory(options.stdlibDir))
          diags.note(diag, import.range,
                     "the standard library directory '" + options.stdlibDir +
                         "' does not exist; point --stdlib=DIR or "
                         "$MLLM_STDLIB at the repository's stdlib/");
      }
      return;
    }
    std::string key = canonical(found);
    auto it = state.find(key);
    if (it != state.end()) {
      if (it->second == InProgress) {
        auto diag = diags.error(import.range)
                    << "import cycle: '" << import.target
                    << "' is already being imported";
        for (auto entry = stack.rbegin(); entry != stack.rend(); ++entry)
          if (entry->second.isValid())
            diags.note(diag, entry->second, "imported from here");
      }
      return;
    }
    if (stack.size() >= kMaxImportDepth) {
      diags.error(import.range)
          << "imports nested deeper than " << kMaxImportDepth
          << " files; import the files from fewer levels";
      return;
    }
    auto buffer = runtime::readFileAtMost(found, kMaxSourceFileBytes);
    if (!buffer) {
      diags.error(import.range)
          << "cannot read '" << found << "': " << buffer.getError().message();
      return;
    }
    unsigned id = diags.getSourceMgr().AddNewSourceBuffer(std::move(*buffer),
                                                          import.range.Start);
    if (!checkSize(id, import.range))
      return;
    stack.back().second = import.range;
    load(id);
    stack.back().second = llvm::SMRange();
  }

  const LoadOptions &options;
  Diagnostics &diags;
  Program &program;
  llvm::StringMap<State> state;
  /// Files being loaded, each with the import it is currently following.
  std::vector<std::pair<std::string, llvm::SMRange>> stack;
  /// Bytes of the files loaded so far.
  size_t total = 0;
};

} // namespace

std::string mllm::defaultStdlibDir() {
  if (auto env = llvm::sys::Process::GetEnv("MLLM_STDLIB"))
    return *env;
  return MLLM_STDLIB_DIR;
}

std::unique_ptr<Program> mllm::loadProgram(unsigned mainBuffer,
                                           const LoadOptions &options,
                                           Diagnostics &diags) {
  auto program = std::make_unique<Program>();
  program->stdlibDir = options.stdlibDir;
  Loader(options, diags, *program).load(mainBuffer);
  if (program->files.empty())
    return nullptr;
  return program;
}
