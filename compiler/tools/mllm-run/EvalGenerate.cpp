//===- EvalGenerate.cpp - mllm-run --eval and --generate ------------------===//
#include "EvalGenerate.h"
#include "Report.h"

#include "llvm/Support/Format.h"
#include "llvm/Support/FormatVariadic.h"
#include "llvm/Support/JSON.h"
#include "llvm/Support/raw_ostream.h"

#include <chrono>
#include <optional>

using namespace mllm;
using namespace mllm::runtime;

static void printJson(const llvm::json::Value &v) {
  llvm::outs() << v << "\n";
  llvm::outs().flush();
}

/// Text a model wrote, for a terminal: control bytes as \xNN (UTF-8 kept).
static std::string printable(llvm::StringRef text) {
  std::string out;
  for (unsigned char c : text) {
    if (c < 0x20 || c == 0x7f)
      out += llvm::formatv("\\x{0:x-2}", static_cast<unsigned>(c)).str();
    else
      out += static_cast<char>(c);
  }
  return out;
}

void mllm::reportHeldOut(llvm::StringRef role, const std::string &file,
                         const data::DataSet &set, bool json) {
  const data::Problems &problems = set.problems();
  if (json) {
    llvm::json::Array examples;
    for (const std::string &e : problems.examples())
      examples.push_back(e);
    printJson(llvm::json::Object{{"event", (role + "_data").str()},
                                 {"file", file},
                                 {"samples", set.size()},
                                 {"skipped", problems.summary()},
                                 {"examples", std::move(examples)}});
    return;
  }
  llvm::outs() << "mllm-run: " << role << " data '" << file
               << "': " << set.size()
               << (set.size() == 1 ? " sample" : " samples");
  std::string skipped = problems.summary();
  if (!skipped.empty())
    llvm::outs() << "; " << skipped;
  llvm::outs() << "\n";
  for (const std::string &e : problems.examples())
    llvm::outs() << "  " << e << "\n";
}

void mllm::reportEval(const exec::EvalStats &stats, bool json) {
  if (json) {
    printJson(llvm::json::Object{{"event", "eval"},
                                 {"step", stats.step},
                                 {"loss", finiteOrNull(stats.loss)},
                                 {"accuracy", stats.accuracy},
                                 {"tokens", stats.tokens},
                                 {"correct", stats.correct},
                                 {"samples", stats.samples},
                                 {"ms", stats.seconds * 1e3}});
    return;
  }
  llvm::outs() << llvm::format(
      "eval at step %lld: loss %.6f  token accuracy "
      "%.4f (%lld of %lld tokens, %lld sample%s)  "
      "%.0f ms\n",
      static_cast<long long>(stats.step), stats.loss, stats.accuracy,
      static_cast<long long>(stats.correct),
      static_cast<long long>(stats.tokens),
      static_cast<long long>(stats.samples), stats.samples == 1 ? "" : "s",
      stats.seconds * 1e3);
  llvm::outs().flush();
}

/// What the generation ran, where `next` counts it.
static void reportGenerationWork(const exec::NextToken &next, double seconds,
                                 bool json) {
  std::optional<exec::GenerationWork> work = next.work();
  if (!work)
    return;
  const exec::GenerationWork &w = *work;
  const double perSecond = seconds > 0 ? w.rounds / seconds : 0;
  if (json) {
    printJson(llvm::json::Object{{"event", "generate_work"},
                                 {"rounds", w.rounds},
                                 {"seconds", seconds},
                                 {"rounds_per_s", perSecond},
                                 {"llm_rows", w.rows},
                                 {"encoder_runs", w.encoderRuns},
                                 {"kv_cache", w.keyCache},
                                 {"cache_dropped", w.dropped}});
    return;
  }
  llvm::outs() << llvm::format(
      "generation: %lld rounds in %.2f s (%.1f per s, media and encoders "
      "included), the LLM on %lld rows, encoders run %lld times",
      static_cast<long long>(w.rounds), seconds, perSecond,
      static_cast<long long>(w.rows), static_cast<long long>(w.encoderRuns));
  if (w.keyCache)
    llvm::outs() << " with its key cache (dropped in " << w.dropped
                 << " rounds)";
  llvm::outs() << "\n";
  llvm::outs().flush();
}

llvm::Error mllm::generate(exec::Generator &generator, const std::string &file,
                           int64_t maxTokens, bool json, exec::NextToken &next,
                           bool print) {
  const auto start = std::chrono::steady_clock::now();
  if (print)
    reportHeldOut("prompts", file, generator.dataSet(), json);
  auto emit = [&](const exec::Generation &g) {
    if (!print)
      return;
    if (json) {
      llvm::json::Array media, tokens;
      for (const auto &[encoder, path] : g.media)
        media.push_back(
            llvm::json::Object{{"encoder", encoder}, {"file", path}});
      for (int64_t t : g.tokens)
        tokens.push_back(t);
      printJson(llvm::json::Object{{"event", "generate"},
                                   {"line", g.line},
                                   {"media", std::move(media)},
                                   {"prompt", llvm::json::fixUTF8(g.prompt)},
                                   {"text", llvm::json::fixUTF8(g.text)},
                                   {"tokens", std::move(tokens)},
                                   {"stop", g.stop}});
      return;
    }
    llvm::outs() << file << ":" << g.line << ":";
    for (const auto &[encoder, path] : g.media)
      llvm::outs() << " " << encoder << " " << path;
    // The prompt, then what the model says after it.
    llvm::outs() << "\n  " << printable(g.prompt) << "|" << printable(g.text)
                 << "\n";
    llvm::outs().flush();
  };
  if (llvm::Error e = generator.run(maxTokens, next, emit))
    return e;
  if (print)
    reportGenerationWork(
        next,
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start)
            .count(),
        json);
  return llvm::Error::success();
}
