// Client and server interceptors: metadata in and out, short-circuits, observation of
// results and timing, and order. Over TCP and simulated links.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/use_awaitable.hpp>
#include <mutex>
#include <string>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "tests/support/backends.h"

namespace meshrpc::core {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::Backend;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

// Records every hook it sees (thread-safe: hooks run on several threads over TCP).
class Recorder {
 public:
  void add(std::string event) {
    std::lock_guard lock(mutex_);
    events_.push_back(std::move(event));
  }
  std::vector<std::string> events() {
    std::lock_guard lock(mutex_);
    return events_;
  }

 private:
  std::mutex mutex_;
  std::vector<std::string> events_;
};

class NamedClientInterceptor : public ClientInterceptor {
 public:
  NamedClientInterceptor(std::string name, Recorder& recorder, Status verdict = Status())
      : name_(std::move(name)), recorder_(recorder), verdict_(std::move(verdict)) {}
  awaitable<Status> before_call(ClientCallInfo& call) override {
    recorder_.add(name_ + " before " + call.method);
    call.options.metadata.emplace_back("stamped-by", name_);
    co_return verdict_;
  }
  void after_call(const ClientCallInfo&, const CallResult& result,
                  runtime::Duration elapsed) override {
    recorder_.add(name_ + " after " + std::string(status_code_name(result.status.code())) +
                  (elapsed.count() >= 0 ? "" : " negative-time"));
  }

 private:
  std::string name_;
  Recorder& recorder_;
  Status verdict_;
};

// Rejects calls without a "token" of "secret"; tags responses.
class AuthInterceptor : public ServerInterceptor {
 public:
  explicit AuthInterceptor(Recorder& recorder) : recorder_(recorder) {}
  awaitable<Status> before_handler(ServerContext& ctx) override {
    const std::string* token = find_metadata(ctx.metadata(), "token");
    if (token == nullptr || *token != "secret") co_return unauthenticated_error("bad token");
    ctx.response_metadata().emplace_back("served-by", "auth-ok");
    co_return Status();
  }
  void after_handler(ServerContext& ctx, const Status& status, runtime::Duration) override {
    recorder_.add("server " + ctx.method() + " " + std::string(status_code_name(status.code())));
  }

 private:
  Recorder& recorder_;
};

class InterceptorTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { harness_ = GetParam().make(); }
  void TearDown() override {
    channel_.reset();
    server_.reset();
    harness_.reset();
  }
  void start(ServerInterceptors server_side, ClientInterceptors client_side) {
    ServerOptions server_options;
    server_options.interceptors = std::move(server_side);
    server_ = std::make_unique<Server>(harness_->server_env(), harness_->server_network(),
                                       server_options);
    server_->register_method("/test/Stamps",
                             [](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                               std::string stamps;
                               for (const auto& [key, value] : ctx.metadata()) {
                                 if (key == "stamped-by") stamps += value + ";";
                               }
                               co_return Buffer::copy_of(stamps);
                             });
    auto address = server_->start(harness_->listen_address());
    ASSERT_TRUE(address.ok());
    ChannelOptions channel_options;
    channel_options.interceptors = std::move(client_side);
    channel_ = std::make_unique<Channel>(harness_->client_env(), harness_->client_network(),
                                         *address, channel_options);
  }
  CallResult call(CallOptions options = {}) {
    CallResult result;
    Status run = harness_->run_client([&]() -> awaitable<Status> {
      result = co_await channel_->async_call("/test/Stamps", Buffer(), std::move(options),
                                             asio::use_awaitable);
      co_return Status();
    });
    EXPECT_THAT(run, IsOk());
    return result;
  }

  Recorder recorder_;
  std::unique_ptr<::meshrpc::testing::TransportHarness> harness_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
};

TEST_P(InterceptorTest, ClientInterceptorsRunInOrderAndUnwindInReverse) {
  start({}, {std::make_shared<NamedClientInterceptor>("a", recorder_),
             std::make_shared<NamedClientInterceptor>("b", recorder_)});
  CallResult result = call();
  ASSERT_THAT(result.status, IsOk());
  EXPECT_EQ(result.response.to_string(), "a;b;");  // both added metadata, in order
  EXPECT_THAT(recorder_.events(), ElementsAre("a before /test/Stamps", "b before /test/Stamps",
                                              "b after OK", "a after OK"));
}

TEST_P(InterceptorTest, AClientInterceptorCanShortCircuit) {
  start({}, {std::make_shared<NamedClientInterceptor>("a", recorder_),
             std::make_shared<NamedClientInterceptor>(
                 "deny", recorder_, permission_denied_error("calls to /test are off")),
             std::make_shared<NamedClientInterceptor>("never", recorder_)});
  CallResult result = call();
  EXPECT_THAT(result.status, StatusIs(StatusCode::kPermissionDenied, HasSubstr("off")));
  EXPECT_TRUE(result.not_processed);
  EXPECT_THAT(recorder_.events(),
              ElementsAre("a before /test/Stamps", "deny before /test/Stamps",
                          "deny after PERMISSION_DENIED", "a after PERMISSION_DENIED"));
}

TEST_P(InterceptorTest, AServerInterceptorRejectsBeforeTheHandlerAndTagsResponses) {
  start({std::make_shared<AuthInterceptor>(recorder_)}, {});
  CallResult denied = call();
  EXPECT_THAT(denied.status, StatusIs(StatusCode::kUnauthenticated, HasSubstr("bad token")));
  EXPECT_TRUE(denied.not_processed);

  CallOptions options;
  options.metadata = {{"token", "secret"}};
  CallResult allowed = call(options);
  ASSERT_THAT(allowed.status, IsOk());
  EXPECT_THAT(allowed.trailing_metadata,
              ElementsAre(std::pair<std::string, std::string>("served-by", "auth-ok")));
  EXPECT_THAT(recorder_.events(),
              ElementsAre("server /test/Stamps UNAUTHENTICATED", "server /test/Stamps OK"));
}

INSTANTIATE_TEST_SUITE_P(Backends, InterceptorTest, ::meshrpc::testing::all_backends(),
                         ::meshrpc::testing::backend_name);

}  // namespace
}  // namespace meshrpc::core
