//===- Tokenizer.h - text to the LLM's token ids ----------------*- C++ -*-===//
//
// Byte-level by default: every UTF-8 byte is one token, id = byte + offset,
// which needs no model file and fits any vocabulary of at least 256 +
// offset ids; the id after the bytes ends each sample when the vocabulary
// has it. With a SentencePiece model file (libsentencepiece), its pieces
// and its end-of-sentence id. docs/data.md, "Tokenisation".
//
//===----------------------------------------------------------------------===//
#ifndef MLLM_RUNTIME_DATA_TOKENIZER_H
#define MLLM_RUNTIME_DATA_TOKENIZER_H

#include "llvm/ADT/ArrayRef.h"
#include "llvm/ADT/StringRef.h"
#include "llvm/Support/Error.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace mllm::runtime::data {

/// Encoding is const and may run on several threads at once.
class Tokenizer {
public:
  virtual ~Tokenizer();
  /// Appends the ids of `text` to `out`.
  virtual llvm::Error encode(llvm::StringRef text,
                             std::vector<int64_t> &out) const = 0;
  virtual std::string decode(llvm::ArrayRef<int64_t> ids) const = 0;
  /// The text `continuation` adds after `prompt`, decoded together: a
  /// SentencePiece model drops the word boundary ('▁') that starts a text
  /// decoded alone, so a continuation decoded alone lost its first space.
  std::string decodeAfter(llvm::ArrayRef<int64_t> prompt,
                          llvm::ArrayRef<int64_t> continuation) const;
  /// The id that ends every sample's text, if any.
  virtual std::optional<int64_t> eos() const = 0;
  /// Ids the tokenizer can produce: [0, size()).
  virtual int64_t size() const = 0;
};

class ByteTokenizer final : public Tokenizer {
public:
  /// Needs vocab >= 256 + offset (else VocabularyError). The end-of-sample
  /// id is offset + 256 when the vocabulary has room for it.
  static llvm::Expected<std::unique_ptr<ByteTokenizer>> create(int64_t vocab,
                                                               int64_t offset);
  llvm::Error encode(llvm::StringRef text,
                     std::vector<int64_t> &out) const override;
  /// Ids outside the byte range (the end id, padding) are dropped.
  std::string decode(llvm::ArrayRef<int64_t> ids) const override;
  std::optional<int64_t> eos() const override { return eosId; }
  int64_t size() const override { return eosId ? *eosId + 1 : offset + 256; }

private:
  ByteTokenizer(int64_t offset, std::optional<int64_t> eos)
      : offset(offset), eosId(eos) {}
  int64_t offset;
  std::optional<int64_t> eosId;
};

/// The LLM's vocabulary cannot hold the tokenizer's ids: the spec's LLM
/// (its `vocab`) or the tokenizer is to change, so a tool can point at the
/// LLM.
class VocabularyError : public llvm::ErrorInfo<VocabularyError> {
public:
  static char ID;
  explicit VocabularyError(std::string message) : message(std::move(message)) {}
  void log(llvm::raw_ostream &os) const override { os << message; }
  std::error_code convertToErrorCode() const override {
    return llvm::inconvertibleErrorCode();
  }
  std::string message;
};

struct TokenizerOptions {
  /// A SentencePiece model file; empty: byte-level.
  std::string sentencePieceModel;
  /// Byte-level: id = byte + byteOffset.
  int64_t byteOffset = 0;
  /// End every sample's text with the tokenizer's end id (when it has one).
  bool addEos = true;
};

/// The tokenizer `options` name, checked against the LLM's vocabulary
/// (every id it can produce must be below `vocab`: else VocabularyError).
llvm::Expected<std::unique_ptr<Tokenizer>>
makeTokenizer(const TokenizerOptions &options, int64_t vocab);

/// A SentencePiece model (fails when the library was not found at build
/// time, or the file does not load).
llvm::Expected<std::unique_ptr<Tokenizer>>
loadSentencePiece(llvm::StringRef modelPath);

} // namespace mllm::runtime::data

#endif // MLLM_RUNTIME_DATA_TOKENIZER_H
