//===- TokenizerTest.cpp - byte-level and SentencePiece tokenisation ------===//

#include "TestFiles.h"

#include "mllm/runtime/data/Tokenizer.h"

#include "gtest/gtest.h"

#ifdef MLLM_DATA_HAVE_SENTENCEPIECE
#include <sentencepiece_trainer.h>
#endif

using namespace mllm::runtime::data;

TEST(ByteTokenizer, RoundTripsUtf8WithOffset) {
  auto tok = ByteTokenizer::create(/*vocab=*/300, /*offset=*/3);
  ASSERT_TRUE(static_cast<bool>(tok)) << llvm::toString(tok.takeError());
  std::string text = "a red square, \xc3\xa9t\xc3\xa9 \xe2\x9c\x93\n";
  std::vector<int64_t> ids;
  ASSERT_FALSE(static_cast<bool>((*tok)->encode(text, ids)));
  ASSERT_EQ(ids.size(), text.size()); // One token per byte.
  EXPECT_EQ(ids[0], 'a' + 3);
  EXPECT_EQ(ids[14], 0xc3 + 3);
  for (int64_t id : ids) {
    EXPECT_GE(id, 3);
    EXPECT_LT(id, 259);
  }
  ASSERT_TRUE((*tok)->eos().has_value());
  EXPECT_EQ(*(*tok)->eos(), 259);
  ids.push_back(*(*tok)->eos()); // The end id is not text.
  EXPECT_EQ((*tok)->decode(ids), text);
}

TEST(ByteTokenizer, DecodeAfterIsTheContinuation) {
  auto tok = ByteTokenizer::create(/*vocab=*/300, /*offset=*/3);
  ASSERT_TRUE(static_cast<bool>(tok)) << llvm::toString(tok.takeError());
  std::vector<int64_t> prompt, rest;
  ASSERT_FALSE(static_cast<bool>((*tok)->encode("a", prompt)));
  ASSERT_FALSE(static_cast<bool>((*tok)->encode(" blue disc.", rest)));
  EXPECT_EQ((*tok)->decodeAfter(prompt, rest), " blue disc.");
  EXPECT_EQ((*tok)->decodeAfter({}, rest), " blue disc.");
}

TEST(ByteTokenizer, VocabularyLimits) {
  // Exactly 256 ids: bytes only, no end id.
  auto exact = ByteTokenizer::create(256, 0);
  ASSERT_TRUE(static_cast<bool>(exact));
  EXPECT_FALSE((*exact)->eos().has_value());
  auto small = ByteTokenizer::create(200, 0);
  ASSERT_FALSE(static_cast<bool>(small));
  EXPECT_NE(llvm::toString(small.takeError()).find("at least 256"),
            std::string::npos);
  auto viaOptions = makeTokenizer(TokenizerOptions{}, 255);
  EXPECT_FALSE(static_cast<bool>(viaOptions));
  llvm::consumeError(viaOptions.takeError());
}

TEST(SentencePiece, TrainedModelRoundTrips) {
#ifndef MLLM_DATA_HAVE_SENTENCEPIECE
  GTEST_SKIP() << "built without libsentencepiece";
#else
  test::TempDir dir;
  std::string corpus;
  const char *words[] = {"red",      "green", "blue",  "square", "circle",
                         "triangle", "small", "large", "a",      "the"};
  for (int i = 0; i < 400; ++i)
    corpus += std::string(words[i % 10]) + " " + words[(i * 7) % 10] + " " +
              words[(i * 3) % 10] + "\n";
  std::string input = dir.write("corpus.txt", corpus);
  std::string prefix = dir.path("sp");
  auto status = sentencepiece::SentencePieceTrainer::Train(
      "--input=" + input + " --model_prefix=" + prefix +
      " --vocab_size=40 --model_type=bpe --minloglevel=2");
  ASSERT_TRUE(status.ok()) << status.ToString();
  TokenizerOptions options;
  options.sentencePieceModel = prefix + ".model";
  auto tok = makeTokenizer(options, 64);
  ASSERT_TRUE(static_cast<bool>(tok)) << llvm::toString(tok.takeError());
  EXPECT_EQ((*tok)->size(), 40);
  std::vector<int64_t> ids;
  ASSERT_FALSE(static_cast<bool>((*tok)->encode("a red square", ids)));
  EXPECT_LT(ids.size(), 12u); // Merged pieces, not bytes.
  EXPECT_EQ((*tok)->decode(ids), "a red square");
  // A continuation keeps the space before its first word, which decoding
  // it alone drops (generation printed "a|red square").
  std::vector<int64_t> prompt, rest;
  ASSERT_FALSE(static_cast<bool>((*tok)->encode("a", prompt)));
  rest.assign(ids.begin() + static_cast<std::ptrdiff_t>(prompt.size()),
              ids.end());
  ASSERT_EQ(llvm::ArrayRef<int64_t>(ids).take_front(prompt.size()),
            llvm::ArrayRef<int64_t>(prompt));
  EXPECT_EQ((*tok)->decode(rest), "red square");
  EXPECT_EQ((*tok)->decodeAfter(prompt, rest), " red square");
  // The vocabulary must hold every piece.
  auto tooSmall = makeTokenizer(options, 30);
  ASSERT_FALSE(static_cast<bool>(tooSmall));
  EXPECT_NE(llvm::toString(tooSmall.takeError()).find("40 pieces"),
            std::string::npos);
#endif
}

TEST(SentencePiece, MissingModelIsAnError) {
  TokenizerOptions options;
  options.sentencePieceModel = "/nonexistent/model.model";
  auto tok = makeTokenizer(options, 1000);
  ASSERT_FALSE(static_cast<bool>(tok));
  EXPECT_NE(llvm::toString(tok.takeError()).find("/nonexistent/model.model"),
            std::string::npos);
}
