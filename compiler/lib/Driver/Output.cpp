//===- Output.cpp - output files written atomically -----------------------===//
//
// Every tool writes its outputs through OutputFile: a temporary file next to
// the target, renamed over it on success, so that a failed run never
// truncates or deletes what was there. An output that is also an input is
// refused (checkOutputNotInput) before it can destroy that input.
//
//===----------------------------------------------------------------------===//
#include "mllm/Driver/Driver.h"
#include "mllm/runtime/PlanIO.h"
#include "mllm/runtime/ReadFile.h"

#include "mlir/Bytecode/BytecodeReader.h"

#include "llvm/Support/Path.h"

using namespace mllm;
namespace fs = llvm::sys::fs;

static llvm::Error cannotWrite(llvm::StringRef path, std::error_code ec) {
  return llvm::createStringError(ec, "cannot write '%s': %s",
                                 path.str().c_str(), ec.message().c_str());
}

llvm::Expected<std::unique_ptr<OutputFile>>
OutputFile::open(llvm::StringRef path) {
  std::unique_ptr<OutputFile> out(new OutputFile());
  out->target = path.str();
  if (path == "-") {
    out->stream = &llvm::outs();
    return out;
  }
  // Write through a link to the file it names, as a plain write would.
  llvm::SmallString<256> real(path);
  fs::file_status status;
  if (!fs::status(path, status)) {
    if (fs::is_directory(status))
      return cannotWrite(path, std::make_error_code(std::errc::is_a_directory));
    if (!fs::is_regular_file(status)) {
      // A device or a pipe cannot be replaced; writing it in place loses
      // nothing.
      std::error_code ec;
      out->owned = std::make_unique<llvm::raw_fd_ostream>(path, ec);
      if (ec)
        return cannotWrite(path, ec);
      out->stream = out->owned.get();
      return out;
    }
    if (std::error_code ec = fs::real_path(path, real))
      return cannotWrite(path, ec);
  }
  out->real = std::string(real);
  llvm::SmallString<256> model(llvm::sys::path::parent_path(real));
  if (model.empty())
    model = ".";
  llvm::sys::path::append(model, "." + llvm::sys::path::filename(real) +
                                     ".tmp-%%%%%%%%");
  llvm::Expected<fs::TempFile> temp = fs::TempFile::create(model);
  if (!temp)
    return cannotWrite(path, llvm::errorToErrorCode(temp.takeError()));
  // Keep the permissions of the file that is replaced.
  if (!fs::status(real, status))
    (void)fs::setPermissions(temp->FD, status.permissions());
  out->temp.emplace(std::move(*temp));
  out->owned = std::make_unique<llvm::raw_fd_ostream>(out->temp->FD,
                                                      /*shouldClose=*/false);
  out->stream = out->owned.get();
  return out;
}

llvm::Error OutputFile::commit() {
  done = true;
  llvm::raw_fd_ostream &fd = owned ? *owned : llvm::outs();
  fd.flush();
  if (fd.has_error()) {
    std::error_code ec = fd.error();
    fd.clear_error();
    if (temp)
      llvm::consumeError(temp->discard());
    temp.reset();
    return target == "-"
               ? llvm::createStringError(ec,
                                         "cannot write to standard output: %s",
                                         ec.message().c_str())
               : cannotWrite(target, ec);
  }
  if (!temp)
    return llvm::Error::success();
  owned.reset();
  llvm::Error kept = temp->keep(real);
  temp.reset();
  if (kept)
    return cannotWrite(target, llvm::errorToErrorCode(std::move(kept)));
  return llvm::Error::success();
}

OutputFile::~OutputFile() {
  // An uncommitted output is discarded; a stream error is not fatal here.
  if (owned)
    owned->clear_error();
  owned.reset();
  if (temp)
    llvm::consumeError(temp->discard());
  // A run that failed has said why; a closed standard output must not turn
  // that into LLVM's fatal "IO failure on output stream" at exit.
  if (!done && target == "-") {
    llvm::outs().flush();
    llvm::outs().clear_error();
  }
}

int mllm::finishStandardOutput(llvm::StringRef tool, int status) {
  llvm::raw_fd_ostream &out = llvm::outs();
  out.flush();
  if (!out.has_error())
    return status;
  std::error_code ec = out.error();
  out.clear_error();
  llvm::errs() << tool
               << ": error: cannot write to standard output: " << ec.message()
               << "\n";
  return status ? status : 1;
}

llvm::Error mllm::checkOutputNotInput(llvm::StringRef output,
                                      llvm::ArrayRef<std::string> inputs) {
  if (output == "-")
    return llvm::Error::success();
  for (const std::string &input : inputs) {
    bool same = false;
    if (input == "-") {
      // `mllmc - -o spec.mllm < spec.mllm` would replace the spec too.
      fs::file_status in, out;
      if (fs::status(0, in) || fs::status(output, out) ||
          !fs::is_regular_file(in) || !fs::equivalent(in, out))
        continue;
      return llvm::createStringError(
          std::make_error_code(std::errc::file_exists),
          "the output '%s' is also the standard input; write the output to "
          "another file",
          output.str().c_str());
    }
    if (fs::equivalent(output, input, same) || !same)
      continue;
    return llvm::createStringError(
        std::make_error_code(std::errc::file_exists),
        "the output '%s' is also an input ('%s'); write the output to "
        "another file",
        output.str().c_str(), input.c_str());
  }
  return llvm::Error::success();
}

std::unique_ptr<llvm::MemoryBuffer> mllm::openInputFile(llvm::StringRef path,
                                                        std::string &error) {
  auto buffer =
      runtime::readFileAtMost(path, runtime::PlanReadLimits().maxBytes);
  if (!buffer) {
    error = "cannot open input file '" + path.str() +
            "': " + buffer.getError().message();
    return nullptr;
  }
  // Every input but MLIR bytecode is text (a spec, IR or a plan): a NUL
  // byte would end MLIR's parse early (/dev/zero read as an empty module).
  llvm::StringRef text = (*buffer)->getBuffer();
  if (mlir::isBytecode(**buffer))
    return std::move(*buffer);
  if (size_t nul = text.find('\0'); nul != llvm::StringRef::npos) {
    llvm::StringRef before = text.take_front(nul);
    size_t line = before.count('\n') + 1;
    size_t lineStart = before.rfind('\n');
    size_t column =
        lineStart == llvm::StringRef::npos ? nul + 1 : nul - lineStart;
    error = "'" + path.str() + "' is not a text file: line " +
            std::to_string(line) + ", column " + std::to_string(column) +
            " holds a NUL byte";
    return nullptr;
  }
  return std::move(*buffer);
}

llvm::Error mllm::writeOutputAtomically(llvm::StringRef path,
                                        llvm::StringRef contents) {
  auto out = OutputFile::open(path);
  if (!out)
    return out.takeError();
  (*out)->os() << contents;
  return (*out)->commit();
}
