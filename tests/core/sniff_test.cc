// The server reads each connection's first bytes before it speaks: the meshrpc preface starts
// a meshrpc connection, an HTTP request line goes to the HTTP handler (with the bytes read),
// anything else, or silence past first_bytes_timeout, closes the connection. And
// Server::call_local runs a method in-process under the same rules as a network call.
// Over TCP and simulated links.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "meshrpc/transport/errors.h"
#include "meshrpc/wire/preface.h"
#include "tests/support/backends.h"
#include "tests/support/stream_io.h"

namespace meshrpc::core {
namespace {

using ::meshrpc::testing::read_to_end;

using namespace std::chrono_literals;
using ::meshrpc::testing::Backend;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;

// Answers every HTTP connection with a fixed response and remembers what it was handed.
class RecordingHttpHandler final : public HttpConnectionHandler {
 public:
  void serve(std::shared_ptr<transport::ByteStream> stream, Buffer first_bytes) override {
    {
      std::lock_guard lock(mutex_);
      first_bytes_.push_back(first_bytes.to_string());
    }
    auto response = std::make_shared<std::string>("HTTP/1.1 204 No Content\r\n\r\n");
    asio::async_write(*stream, asio::buffer(*response),
                      [stream, response](error_code, size_t) { stream->shutdown_send(); });
  }
  void shutdown() override { shutdowns_.fetch_add(1); }

  std::vector<std::string> first_bytes() {
    std::lock_guard lock(mutex_);
    return first_bytes_;
  }
  int shutdowns() const { return shutdowns_.load(); }

 private:
  std::mutex mutex_;
  std::vector<std::string> first_bytes_;
  std::atomic<int> shutdowns_{0};
};

bool ended_by_server(const error_code& ec) {
  return ec == asio::error::eof || ec == asio::error::connection_reset;
}

class SniffTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { harness_ = GetParam().make(); }

  // A server with /test/Echo, started; `options` as given.
  std::unique_ptr<Server> start_server(ServerOptions options = {}) {
    auto server =
        std::make_unique<Server>(harness_->server_env(), harness_->server_network(), options);
    server->register_method(
        "/test/Echo", [](ServerContext&, Buffer r) -> awaitable<Result<Buffer>> { co_return r; });
    return server;
  }

  // Connects raw, writes `bytes`, then reads to the end. Meanwhile one meshrpc call on
  // another connection must succeed.
  Status probe(const transport::Address& target, std::string bytes, std::string* received,
               error_code* end) {
    Channel channel(harness_->client_env(), harness_->client_network(), target);
    return harness_->run_client([&]() -> awaitable<Status> {
      auto ex = co_await asio::this_coro::executor;
      auto [ec, raw] =
          co_await harness_->client_network().async_connect(target, ex, use_nothrow_awaitable);
      if (ec) co_return transport::to_status(ec, "raw connect");
      if (!bytes.empty()) {
        co_await asio::async_write(*raw, asio::buffer(bytes), use_nothrow_awaitable);
      }
      CallResult call =
          co_await channel.async_call("/test/Echo", Buffer::copy_of("ok"), {}, asio::use_awaitable);
      if (!call.ok()) co_return call.status.with_context("the meshrpc call beside the probe");
      auto [text, ec_end] = co_await read_to_end(*raw);
      *received = text;
      *end = ec_end;
      co_return Status();
    });
  }

  std::unique_ptr<testing::TransportHarness> harness_;
};

TEST_P(SniffTest, HttpRequestGoesToTheHandlerWithTheBytesAlreadyRead) {
  auto http = std::make_shared<RecordingHttpHandler>();
  auto server = start_server();
  server->set_http_handler(http);
  auto address = server->start(harness_->listen_address());
  ASSERT_THAT(address, IsOk());
  std::string received;
  error_code end;
  ASSERT_THAT(probe(*address, "GET /health HTTP/1.1\r\nHost: x\r\n\r\n", &received, &end), IsOk());
  EXPECT_EQ(received, "HTTP/1.1 204 No Content\r\n\r\n");
  ASSERT_EQ(http->first_bytes().size(), 1u);
  // Only as much as classifies the connection was read: never past the 8th byte.
  const std::string first = http->first_bytes()[0];
  EXPECT_GE(first.size(), 4u);
  EXPECT_LE(first.size(), wire::kClassifyBytes);
  EXPECT_EQ(first, std::string("GET /health HTTP/1.1").substr(0, first.size()));
  server.reset();
  EXPECT_GE(http->shutdowns(), 1) << "the server's end must tell the HTTP handler";
}

TEST_P(SniffTest, HttpWithoutAHandlerIsClosedAndTheServerServesOn) {
  auto server = start_server();
  auto address = server->start(harness_->listen_address());
  ASSERT_THAT(address, IsOk());
  std::string received;
  error_code end;
  ASSERT_THAT(probe(*address, "POST /x HTTP/1.1\r\n\r\n", &received, &end), IsOk());
  EXPECT_EQ(received, "");
  EXPECT_TRUE(ended_by_server(end)) << end.message();
}

TEST_P(SniffTest, GarbageAfterAPrefixOfThePrefaceIsClosed) {
  auto http = std::make_shared<RecordingHttpHandler>();
  auto server = start_server();
  server->set_http_handler(http);
  auto address = server->start(harness_->listen_address());
  ASSERT_THAT(address, IsOk());
  std::string bytes(wire::preface_view().substr(0, 3));
  bytes += "\x01\x02\x03\x04\x05";
  std::string received;
  error_code end;
  ASSERT_THAT(probe(*address, bytes, &received, &end), IsOk());
  EXPECT_EQ(received, "");
  EXPECT_TRUE(ended_by_server(end)) << end.message();
  EXPECT_TRUE(http->first_bytes().empty()) << "garbage is not HTTP";
}

TEST_P(SniffTest, SilentConnectionIsClosedAfterTheFirstBytesTimeout) {
  ServerOptions options;
  options.first_bytes_timeout = 300ms;
  auto server = start_server(options);
  auto address = server->start(harness_->listen_address());
  ASSERT_THAT(address, IsOk());
  std::string received;
  error_code end;
  runtime::Env& env = harness_->client_env();
  const runtime::TimePoint start = env.now();
  ASSERT_THAT(probe(*address, "", &received, &end), IsOk());
  EXPECT_TRUE(ended_by_server(end)) << end.message();
  if (env.is_simulated()) {
    // Virtual time: the close comes at the timeout, not before (plus a link's delay).
    EXPECT_GE(env.now() - start, 300ms);
    EXPECT_LT(env.now() - start, 310ms);
  }
}

TEST_P(SniffTest, ShutdownClosesConnectionsStillSniffing) {
  auto server = start_server();
  auto address = server->start(harness_->listen_address());
  ASSERT_THAT(address, IsOk());
  error_code end;
  const transport::Address target = *address;
  bool shut_down = false;
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    auto ex = co_await asio::this_coro::executor;
    auto [ec, raw] =
        co_await harness_->client_network().async_connect(target, ex, use_nothrow_awaitable);
    if (ec) co_return transport::to_status(ec, "raw connect");
    // Two bytes of the preface: the server waits for the rest.
    co_await asio::async_write(*raw, asio::buffer(wire::preface_view().substr(0, 2)),
                               use_nothrow_awaitable);
    co_await harness_->client_env().async_wait_for(50ms, use_nothrow_awaitable);
    server->shutdown(1s, [&shut_down] { shut_down = true; });
    auto [text, ec_end] = co_await read_to_end(*raw);
    end = ec_end;
    co_return Status();
  }),
              IsOk());
  EXPECT_TRUE(ended_by_server(end)) << end.message();
}

// --- call_local ---------------------------------------------------------------------------

class RecordingInterceptor final : public ServerInterceptor {
 public:
  awaitable<Status> before_handler(ServerContext& ctx) override {
    ctx.response_metadata().emplace_back("seen-by", "interceptor");
    co_return Status();
  }
  void after_handler(ServerContext&, const Status& status, runtime::Duration) override {
    codes.push_back(status.code());
  }
  std::vector<StatusCode> codes;
};

TEST_P(SniffTest, CallLocalRunsTheMethodUnderTheServersRules) {
  auto interceptor = std::make_shared<RecordingInterceptor>();
  ServerOptions options;
  options.interceptors.push_back(interceptor);
  auto server = start_server(options);
  server->register_method("/test/Slow",
                          [](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                            co_await ctx.env().async_wait_for(1s, use_nothrow_awaitable);
                            co_return Buffer::copy_of("late");
                          });
  server->register_method("/test/Meta",
                          [](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                            const std::string* value = find_metadata(ctx.metadata(), "k");
                            ctx.response_metadata().emplace_back("echo", value ? *value : "none");
                            co_return Buffer::copy_of(ctx.peer().host);
                          });
  server->register_stream_method(
      "/test/Stream",
      [](ServerContext&, ServerStream&) -> awaitable<Status> { co_return Status(); });
  auto address = server->start(harness_->listen_address());
  ASSERT_THAT(address, IsOk());
  runtime::Env& env = harness_->server_env();
  EXPECT_TRUE(server->has_method("test.Echo"));
  EXPECT_FALSE(server->has_method("/test/Stream"));
  EXPECT_FALSE(server->has_method("/test/Nope"));

  ASSERT_THAT(harness_->run({{&env,
                              [&]() -> awaitable<Status> {
                                Result<Buffer> echoed = co_await server->call_local(
                                    LocalCall("test.Echo", Buffer::copy_of("hi")));
                                EXPECT_THAT(echoed, IsOk());
                                if (echoed.ok()) {
                                  EXPECT_EQ(echoed->to_string(), "hi");
                                }

                                Metadata response;
                                LocalCall meta("/test/Meta", Buffer(), {{"k", "v"}});
                                meta.peer = transport::Address{"10.0.0.9", 5};
                                meta.response_metadata = &response;
                                Result<Buffer> peer = co_await server->call_local(std::move(meta));
                                EXPECT_THAT(peer, IsOk());
                                if (peer.ok()) {
                                  EXPECT_EQ(peer->to_string(), "10.0.0.9");
                                }
                                EXPECT_NE(find_metadata(response, "seen-by"), nullptr);
                                const std::string* echo = find_metadata(response, "echo");
                                EXPECT_TRUE(echo != nullptr && *echo == "v");

                                EXPECT_THAT(co_await server->call_local(LocalCall("/test/Nope")),
                                            StatusIs(StatusCode::kUnimplemented));
                                EXPECT_THAT(co_await server->call_local(LocalCall("/test/Stream")),
                                            StatusIs(StatusCode::kUnimplemented));
                                LocalCall expired("/test/Echo");
                                expired.deadline = env.now() - 1ms;
                                EXPECT_THAT(co_await server->call_local(std::move(expired)),
                                            StatusIs(StatusCode::kDeadlineExceeded));
                                LocalCall slow("/test/Slow");
                                slow.deadline = env.now() + 100ms;
                                EXPECT_THAT(co_await server->call_local(std::move(slow)),
                                            StatusIs(StatusCode::kDeadlineExceeded));
                                co_return Status();
                              }}}),
              IsOk());
  // The interceptor saw the three calls that got past admission, with their outcomes.
  EXPECT_THAT(interceptor->codes, ::testing::ElementsAre(StatusCode::kOk, StatusCode::kOk,
                                                         StatusCode::kDeadlineExceeded));
  EXPECT_EQ(server->active_calls(), 0u);

  bool done = false;
  server->shutdown(1s, [&done] { done = true; });
  ASSERT_THAT(harness_->run({{&env,
                              [&]() -> awaitable<Status> {
                                EXPECT_THAT(co_await server->call_local(LocalCall("/test/Echo")),
                                            StatusIs(StatusCode::kUnavailable));
                                co_return Status();
                              }}}),
              IsOk());
}

TEST_P(SniffTest, CallLocalMeetsTheServersCallLimit) {
  ServerOptions options;
  options.max_concurrent_calls = 1;
  auto server = start_server(options);
  server->register_method("/test/Slow",
                          [](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                            co_await ctx.env().async_wait_for(200ms, use_nothrow_awaitable);
                            co_return Buffer();
                          });
  ASSERT_THAT(server->start(harness_->listen_address()), IsOk());
  runtime::Env& env = harness_->server_env();
  Status first;
  Status second;
  ASSERT_THAT(
      harness_->run({{&env,
                      [&]() -> awaitable<Status> {
                        Result<Buffer> r = co_await server->call_local(LocalCall("/test/Slow"));
                        first = r.status();
                        co_return Status();
                      }},
                     {&env,
                      [&]() -> awaitable<Status> {
                        co_await env.async_wait_for(50ms, use_nothrow_awaitable);
                        Result<Buffer> r = co_await server->call_local(LocalCall("/test/Slow"));
                        second = r.status();
                        co_return Status();
                      }}}),
      IsOk());
  EXPECT_THAT(first, IsOk());
  EXPECT_THAT(second, StatusIs(StatusCode::kResourceExhausted));
  EXPECT_EQ(server->active_calls(), 0u);
}

INSTANTIATE_TEST_SUITE_P(Backends, SniffTest, ::meshrpc::testing::all_backends(),
                         ::meshrpc::testing::backend_name);

}  // namespace
}  // namespace meshrpc::core
