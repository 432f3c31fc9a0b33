// Method names: the dotted form code may use and the path form on the wire.
#include "meshrpc/core/method_name.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "meshrpc/base/status_matchers.h"

namespace meshrpc::core {
namespace {

using ::meshrpc::testing::StatusIs;

TEST(CanonicalMethodName, TurnsTheDottedFormIntoThePathForm) {
  struct Case {
    std::string_view in;
    std::string_view out;
  };
  const Case cases[] = {
      {"Master.GetChunkHandle", "/Master/GetChunkHandle"},
      {"meshrpc.examples.Echo.Say", "/meshrpc.examples.Echo/Say"},
      {"/meshrpc.examples.Echo/Say", "/meshrpc.examples.Echo/Say"},  // already canonical
      {"", ""},                                                      // left for the server
      {"NoDot", "NoDot"},                                            //   to reject as unknown
      {".Method", ".Method"},
      {"Service.", "Service."},
      {"a/b.c", "a/b.c"},
  };
  for (const Case& c : cases) {
    EXPECT_EQ(canonical_method_name(c.in), c.out) << "input '" << c.in << "'";
  }
}

TEST(SplitMethodName, GivesServiceAndMethod) {
  Result<MethodNameParts> parts = split_method_name("/meshrpc.examples.Echo/Say");
  ASSERT_TRUE(parts.ok()) << parts.status();
  EXPECT_EQ(parts->service, "meshrpc.examples.Echo");
  EXPECT_EQ(parts->method, "Say");
}

TEST(SplitMethodName, RejectsNamesThatAreNotPaths) {
  for (std::string_view bad : {"", "/", "//", "/Svc/", "Svc.Method", "/Method"}) {
    EXPECT_THAT(split_method_name(bad).status(), StatusIs(StatusCode::kInvalidArgument))
        << "input '" << bad << "'";
  }
}

}  // namespace
}  // namespace meshrpc::core
