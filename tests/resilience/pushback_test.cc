#include "meshrpc/resilience/pushback.h"

#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <string_view>

namespace meshrpc::resilience {
namespace {

using std::chrono::milliseconds;

constexpr Pushback kDoNotRetry{Pushback::Kind::kDoNotRetry, {}};
constexpr Pushback retry_after(runtime::Duration delay) {
  return {Pushback::Kind::kRetryAfter, delay};
}

struct ParseCase {
  const char* name;
  std::string_view value;
  Pushback expected;
};

class PushbackParse : public ::testing::TestWithParam<ParseCase> {};

TEST_P(PushbackParse, ReadsTheHeaderValue) {
  const ParseCase& c = GetParam();
  EXPECT_EQ(parse_pushback(c.value), c.expected) << "value \"" << c.value << "\"";
}

INSTANTIATE_TEST_SUITE_P(
    Table, PushbackParse,
    ::testing::Values(
        ParseCase{"PositiveIsRetryAfterThatManyMs", "250", retry_after(milliseconds(250))},
        ParseCase{"ZeroIsRetryNow", "0", retry_after(milliseconds(0))},
        ParseCase{"LeadingZerosAreDecimal", "007", retry_after(milliseconds(7))},
        ParseCase{"OneHourIsKept", "3600000", retry_after(std::chrono::hours(1))},
        ParseCase{"PastOneHourIsCappedAtOneHour", "3600001", retry_after(kMaxRetryPushback)},
        ParseCase{"PastInt64IsCappedAtOneHour", "99999999999999999999999",
                  retry_after(kMaxRetryPushback)},
        ParseCase{"NegativeOneIsDoNotRetry", "-1", kDoNotRetry},
        ParseCase{"LargeNegativeIsDoNotRetry", "-5000", kDoNotRetry},
        ParseCase{"NegativePastInt64IsDoNotRetry", "-99999999999999999999999", kDoNotRetry},
        ParseCase{"NegativeZeroIsRetryNow", "-0", retry_after(milliseconds(0))},
        ParseCase{"StopIsDoNotRetry", "stop", kDoNotRetry},
        ParseCase{"StopIgnoresCase", "STOP", kDoNotRetry},
        ParseCase{"SurroundingSpacesAndTabsAreIgnored", " \t100\t ",
                  retry_after(milliseconds(100))},
        ParseCase{"EmptyIsMalformedSoDoNotRetry", "", kDoNotRetry},
        ParseCase{"OnlySpacesIsMalformedSoDoNotRetry", "   ", kDoNotRetry},
        ParseCase{"GarbageIsMalformedSoDoNotRetry", "soon", kDoNotRetry},
        ParseCase{"TrailingUnitIsMalformedSoDoNotRetry", "100ms", kDoNotRetry},
        ParseCase{"PlusSignIsMalformedSoDoNotRetry", "+100", kDoNotRetry},
        ParseCase{"InnerSpaceIsMalformedSoDoNotRetry", "1 00", kDoNotRetry},
        ParseCase{"FractionIsMalformedSoDoNotRetry", "1.5", kDoNotRetry},
        ParseCase{"HexIsMalformedSoDoNotRetry", "0x10", kDoNotRetry},
        ParseCase{"LoneMinusIsMalformedSoDoNotRetry", "-", kDoNotRetry}),
    [](const ::testing::TestParamInfo<ParseCase>& info) { return std::string(info.param.name); });

TEST(Pushback, DefaultIsNoPushback) {
  Pushback pushback;
  EXPECT_EQ(pushback.kind, Pushback::Kind::kNone);
  EXPECT_EQ(pushback.retry_after, runtime::Duration::zero());
}

TEST(Pushback, KeyIsTheDocumentedHeaderName) {
  EXPECT_EQ(kRetryPushbackKey, "meshrpc-retry-pushback-ms");
}

TEST(Pushback, CapIsOneHour) { EXPECT_EQ(kMaxRetryPushback, std::chrono::hours(1)); }

}  // namespace
}  // namespace meshrpc::resilience
