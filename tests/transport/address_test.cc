#include "meshrpc/transport/address.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <unordered_set>

#include "meshrpc/base/status_matchers.h"

namespace meshrpc::transport {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;

struct GoodCase {
  std::string_view text;
  Address address;
};

TEST(Address, ParsesHostAndPortAndPrintsThemBack) {
  const GoodCase cases[] = {
      {"1.2.3.4:80", {"1.2.3.4", 80}},
      {"[::1]:8080", {"::1", 8080}},
      {"[fe80::1:2]:1", {"fe80::1:2", 1}},
      {"localhost:0", {"localhost", 0}},
      {"node-7.example.com:65535", {"node-7.example.com", 65535}},
  };
  for (const GoodCase& test : cases) {
    auto parsed = Address::parse(test.text);
    ASSERT_THAT(parsed, IsOk()) << test.text;
    EXPECT_EQ(*parsed, test.address) << test.text;
    EXPECT_EQ(parsed->to_string(), test.text);
  }
}

struct BadCase {
  std::string_view text;
  std::string_view why;  // a substring of the error message
};

TEST(Address, RejectsMalformedTextSayingWhy) {
  const BadCase cases[] = {
      {"1.2.3.4", "no ':port'"},    {"1.2.3.4:", "no ':port'"},
      {":80", "empty host"},        {"[]:80", "empty host"},
      {"::1:80", "brackets"},       {"host:65536", "not a number in 0..65535"},
      {"host:-1", "not a number"},  {"host:80x", "not a number"},
      {"host: 80", "not a number"}, {"host:+80", "not a number"},
  };
  for (const BadCase& test : cases) {
    EXPECT_THAT(Address::parse(test.text),
                StatusIs(StatusCode::kInvalidArgument, HasSubstr(std::string(test.why))))
        << test.text;
  }
}

TEST(Address, ErrorNamesTheText) {
  EXPECT_THAT(Address::parse("db-1:http"),
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("'db-1:http'")));
}

TEST(Address, IsUsableAsAHashKey) {
  std::unordered_set<Address> set{{"a", 1}, {"a", 2}, {"b", 1}, {"a", 1}};
  EXPECT_EQ(set.size(), 3u);
  EXPECT_LT((Address{"a", 2}), (Address{"b", 1}));
}

}  // namespace
}  // namespace meshrpc::transport
