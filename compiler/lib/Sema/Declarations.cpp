//===- Declarations.cpp - the declarations of all files -------------------===//
#include "SemaImpl.h"

#include "llvm/ADT/StringExtras.h"
#include "llvm/Support/FileSystem.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/MemoryBuffer.h"
#include "llvm/Support/Path.h"
#include "llvm/Support/Regex.h"

#include <cmath>

using namespace mllm;
using namespace mllm::sema;

//===----------------------------------------------------------------------===//
// Declarations
//===----------------------------------------------------------------------===//

static const llvm::StringRef topKinds[] = {"family",   "instance", "hardware",
                                           "model",    "data",     "cluster",
                                           "parallel", "train"};

std::vector<std::string> Sema::declNames(llvm::StringRef kind) const {
  std::vector<std::string> out;
  for (const auto &entry : decls)
    if (kind.empty() || entry.second->kind.name == kind)
      out.push_back(entry.first().str());
  std::sort(out.begin(), out.end());
  return out;
}

std::string Sema::stdlibModuleDeclaring(llvm::StringRef name) const {
  if (program.stdlibDir.empty() ||
      !llvm::all_of(name, [](char c) { return llvm::isAlnum(c) || c == '_'; }))
    return "";
  // A text search of the library's files (none is parsed that was not
  // imported): the declaration `instance NAME :` or `instance NAME {`.
  llvm::Regex declares("(^|[^A-Za-z0-9_])instance[ \t\r\n]+" + name.str() +
                       "[ \t\r\n]*[:{]");
  std::vector<std::string> files;
  std::error_code ec;
  for (llvm::sys::fs::directory_iterator it(program.stdlibDir, ec), end;
       it != end && !ec; it.increment(ec))
    if (llvm::sys::path::extension(it->path()) == ".mllm")
      files.push_back(it->path());
  llvm::sort(files);
  for (const std::string &file : files) {
    auto buffer = llvm::MemoryBuffer::getFile(file, /*IsText=*/true);
    if (buffer && (*buffer)->getBufferSize() < (1 << 20) &&
        declares.match((*buffer)->getBuffer()))
      return llvm::sys::path::stem(file).str();
  }
  return "";
}

void Sema::collect() {
  // Files load after the file that imports them; walk them the other way
  // so a name declared twice is reported where the importer declares it,
  // not inside the library.
  for (const auto &file : llvm::reverse(program.files)) {
    for (const auto &blockPtr : file->blocks) {
      const ast::Block &block = *blockPtr;
      llvm::StringRef kind = block.kind.name;
      if (!llvm::is_contained(topKinds, kind)) {
        std::vector<std::string> kinds(std::begin(topKinds),
                                       std::end(topKinds));
        diags.error(block.kind.range)
            << "unknown declaration '" << kind << "'" << suggest(kind, kinds);
        continue;
      }
      if (kind == "family" || kind == "instance" || kind == "hardware") {
        if (block.name.empty()) {
          diags.error(block.kind.range)
              << "'" << kind << "' needs a name: " << kind << " NAME "
              << (kind == "hardware" ? "{ ... }" : ": BASE { ... }");
          continue;
        }
        // A declaration named like an architecture would shadow it as a
        // base, or be shadowed by it: neither is what the writer meant.
        if (builtinArch(block.name.name)) {
          diags.error(block.name.range)
              << "'" << block.name.name
              << "' names a builtin architecture; give the " << kind
              << " another name";
          continue;
        }
        auto [it, inserted] = decls.try_emplace(block.name.name, &block);
        if (!inserted) {
          auto diag = diags.error(block.name.range)
                      << "redefinition of '" << block.name.name << "'";
          llvm::SourceMgr &srcMgr = diags.getSourceMgr();
          if (srcMgr.FindBufferContainingLoc(it->second->name.range.Start) !=
              file->bufferId)
            diag << ", which an imported file declares; give this " << kind
                 << " another name";
          diags.note(diag, it->second->name.range,
                     "previous definition is here");
        }
        continue;
      }
      const ast::Block **slot = kind == "model"      ? &model
                                : kind == "data"     ? &data
                                : kind == "cluster"  ? &cluster
                                : kind == "parallel" ? &parallel
                                                     : &train;
      if (*slot) {
        auto diag = diags.error(block.kind.range)
                    << "second '" << kind << "' block; a program has one";
        diags.note(diag, (*slot)->kind.range,
                   "first '" + kind.str() + "' block is here");
        continue;
      }
      *slot = &block;
    }
  }
}
