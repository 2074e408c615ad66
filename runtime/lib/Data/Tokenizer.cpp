//===- Tokenizer.cpp - byte-level tokenisation and the choice -------------===//

#include "mllm/runtime/data/Tokenizer.h"

using namespace mllm::runtime::data;

static llvm::Error fail(const llvm::Twine &message) {
  return llvm::createStringError(llvm::inconvertibleErrorCode(), message);
}

Tokenizer::~Tokenizer() = default;

std::string Tokenizer::decodeAfter(llvm::ArrayRef<int64_t> prompt,
                                   llvm::ArrayRef<int64_t> continuation) const {
  std::vector<int64_t> all(prompt.begin(), prompt.end());
  all.insert(all.end(), continuation.begin(), continuation.end());
  std::string whole = decode(all), head = decode(prompt);
  if (llvm::StringRef(whole).starts_with(head))
    return whole.substr(head.size());
  return decode(continuation); // A decoder that rewrites across the seam.
}

char VocabularyError::ID = 0;

static llvm::Error tooSmall(const llvm::Twine &message) {
  return llvm::make_error<VocabularyError>(message.str());
}

llvm::Expected<std::unique_ptr<ByteTokenizer>>
ByteTokenizer::create(int64_t vocab, int64_t offset) {
  if (offset < 0)
    return fail("the byte offset must not be negative");
  if (vocab < offset + 256)
    return tooSmall(
        "byte-level tokens need a vocabulary of at least " +
        llvm::Twine(offset + 256) + " ids (256 bytes + offset " +
        llvm::Twine(offset) + "); the LLM has " + llvm::Twine(vocab) +
        "; give the LLM a larger vocab, or tokenise with a SentencePiece "
        "model (mllm-run --tokenizer)");
  std::optional<int64_t> eos;
  if (vocab > offset + 256)
    eos = offset + 256;
  return std::unique_ptr<ByteTokenizer>(new ByteTokenizer(offset, eos));
}

llvm::Error ByteTokenizer::encode(llvm::StringRef text,
                                  std::vector<int64_t> &out) const {
  out.reserve(out.size() + text.size());
  for (unsigned char c : text)
    out.push_back(offset + c);
  return llvm::Error::success();
}

std::string ByteTokenizer::decode(llvm::ArrayRef<int64_t> ids) const {
  std::string text;
  for (int64_t id : ids)
    if (id >= offset && id < offset + 256)
      text.push_back(static_cast<char>(id - offset));
  return text;
}

#ifndef MLLM_DATA_HAVE_SENTENCEPIECE
llvm::Expected<std::unique_ptr<Tokenizer>>
mllm::runtime::data::loadSentencePiece(llvm::StringRef modelPath) {
  return fail("cannot read SentencePiece model '" + modelPath +
              "': built without libsentencepiece (apt-get install "
              "libsentencepiece-dev and rebuild)");
}
#endif

llvm::Expected<std::unique_ptr<Tokenizer>>
mllm::runtime::data::makeTokenizer(const TokenizerOptions &options,
                                   int64_t vocab) {
  if (options.sentencePieceModel.empty()) {
    auto bytes = ByteTokenizer::create(vocab, options.byteOffset);
    if (!bytes)
      return bytes.takeError();
    return std::unique_ptr<Tokenizer>(std::move(*bytes));
  }
  auto sp = loadSentencePiece(options.sentencePieceModel);
  if (!sp)
    return sp.takeError();
  if ((*sp)->size() > vocab)
    return tooSmall("SentencePiece model '" + options.sentencePieceModel +
                    "' has " + llvm::Twine((*sp)->size()) +
                    " pieces; the LLM's vocabulary has " + llvm::Twine(vocab));
  return sp;
}
