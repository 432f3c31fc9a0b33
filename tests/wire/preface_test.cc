#include "meshrpc/wire/preface.h"

#include <gtest/gtest.h>

#include <string>

namespace meshrpc::wire {
namespace {

const std::string kPrefaceBytes(preface_view());

struct ClassifyCase {
  std::string name;
  std::string bytes;
  ConnectionStart expected;
};

class ClassifyTest : public ::testing::TestWithParam<ClassifyCase> {};

TEST_P(ClassifyTest, Classifies) {
  const ClassifyCase& c = GetParam();
  EXPECT_EQ(classify_connection_start(std::string_view(c.bytes)), c.expected);
  EXPECT_EQ(classify_connection_start(Buffer::copy_of(c.bytes)), c.expected);
}

INSTANTIATE_TEST_SUITE_P(
    Preface, ClassifyTest,
    ::testing::Values(
        ClassifyCase{"Empty", "", ConnectionStart::kNeedMoreBytes},
        ClassifyCase{"Preface", kPrefaceBytes, ConnectionStart::kMeshrpc},
        ClassifyCase{"PrefaceThenFrames", kPrefaceBytes + "\x0a\0\0\0", ConnectionStart::kMeshrpc},
        ClassifyCase{"PartialPreface", kPrefaceBytes.substr(0, 5), ConnectionStart::kNeedMoreBytes},
        ClassifyCase{"FirstPrefaceByte", kPrefaceBytes.substr(0, 1),
                     ConnectionStart::kNeedMoreBytes},
        ClassifyCase{"MangledLineEnding", "\x89MRPC\x0A\x1A\x00", ConnectionStart::kGarbage},
        ClassifyCase{"Get", "GET /metrics HTTP/1.1\r\n", ConnectionStart::kHttp},
        ClassifyCase{"Post", "POST /kv.Store/Get HTTP/1.1\r\n", ConnectionStart::kHttp},
        ClassifyCase{"Options", "OPTIONS * HTTP/1.1", ConnectionStart::kHttp},
        ClassifyCase{"PartialMethod", "PO", ConnectionStart::kNeedMoreBytes},
        ClassifyCase{"PartialAmbiguousMethod", "P", ConnectionStart::kNeedMoreBytes},
        ClassifyCase{"MethodWithoutSpace", "GETX", ConnectionStart::kGarbage},
        ClassifyCase{"LowercaseMethod", "get /", ConnectionStart::kGarbage},
        ClassifyCase{"Http2PriorKnowledge", "PRI * HTTP/2.0", ConnectionStart::kGarbage},
        ClassifyCase{"TlsClientHello", "\x16\x03\x01\x02\x00", ConnectionStart::kGarbage}),
    [](const auto& info) { return info.param.name; });

TEST(Preface, IsEightBytesStartingNonAscii) {
  EXPECT_EQ(kPreface.size(), 8u);
  EXPECT_GE(static_cast<unsigned char>(kPreface[0]), 0x80);
  EXPECT_LE(kPreface.size(), kClassifyBytes);
}

}  // namespace
}  // namespace meshrpc::wire
