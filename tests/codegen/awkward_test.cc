// What protoc-gen-meshrpc generates from awkward.proto: comments ending in a backslash (which
// must not splice the next generated line into a // comment) and rpcs named like the
// parameters of the generated functions, called end to end on a simulated network.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "awkward.meshrpc.h"
#include "meshrpc/base/status_macros.h"
#include "meshrpc/base/status_matchers.h"
#include "meshrpc/codec/server.h"
#include "meshrpc/core/channel.h"
#include "tests/support/sim_harness.h"

namespace meshrpc::test {
namespace {

using awkward::Files;
using awkward::Path;
using awkward::Shadows;
using ::meshrpc::testing::IsOk;

TEST(AwkwardProto, CommentsEndingInABackslashLeaveTheNextLinesAlone) {
  static_assert(Files::kServiceName == "meshrpc.test.awkward.Files");
  static_assert(Files::Methods::kList.idempotency == core::Idempotency::kNoSideEffects);
  static_assert(Files::Methods::kWatch.kind == codec::MethodKind::kServerStreaming);
  static_assert(std::is_abstract_v<Files::Service>);
  EXPECT_EQ(Files::Methods::kRemove.name, "/meshrpc.test.awkward.Files/Remove");
  EXPECT_EQ(Shadows::kServiceName, "meshrpc.test.awkward.Shadows");
}

// Answers every rpc with the rpc's name, so a test sees which handler a call reached.
class ShadowsService final : public Shadows::Service {
 public:
  awaitable<Result<Path>> server(core::ServerContext&, const Path&) override {
    co_return named("server");
  }
  awaitable<Result<Path>> context(core::ServerContext&, const Path&) override {
    co_return named("context");
  }
  awaitable<Result<Path>> request(core::ServerContext&, const Path&) override {
    co_return named("request");
  }
  awaitable<Result<Path>> options(core::ServerContext&, const Path&) override {
    co_return named("options");
  }
  awaitable<Result<Path>> token(core::ServerContext&, const Path&) override {
    co_return named("token");
  }

 private:
  static Path named(const char* name) {
    Path path;
    path.set_path(name);
    return path;
  }
};

TEST(AwkwardProto, RpcsNamedLikeTheGeneratedParametersReachTheirOwnHandlers) {
  testing::SimHarness harness(1);
  ShadowsService service;
  codec::Server server(harness.server_env(), harness.server_network());
  server.add_service(service);
  Result<transport::Address> address = server.start(harness.listen_address());
  ASSERT_THAT(address, IsOk());
  core::Channel channel(harness.client_env(), harness.client_network(), *address);
  Shadows::Client client(channel);
  std::vector<std::string> replies;
  auto record = [&replies](Result<Path> reply) {
    if (!reply.ok()) return std::move(reply).status();
    replies.push_back(reply->path());
    return Status();
  };
  ASSERT_THAT(harness.run_client([&]() -> awaitable<Status> {
    const Path request;
    const core::CallOptions options;
    const auto token = asio::use_awaitable;
    MESHRPC_CO_RETURN_IF_ERROR(record(co_await client.server(request, options, token)));
    MESHRPC_CO_RETURN_IF_ERROR(record(co_await client.context(request, options, token)));
    MESHRPC_CO_RETURN_IF_ERROR(record(co_await client.request(request, options, token)));
    MESHRPC_CO_RETURN_IF_ERROR(record(co_await client.options(request, options, token)));
    MESHRPC_CO_RETURN_IF_ERROR(record(co_await client.token(request, options, token)));
    co_return Status();
  }),
              IsOk());
  EXPECT_THAT(replies, ::testing::ElementsAre("server", "context", "request", "options", "token"));
}

}  // namespace
}  // namespace meshrpc::test
