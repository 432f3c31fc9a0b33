// The unary call path end to end (Server, Channel, Connection), each test run over TCP on
// real threads and over simulated links in virtual time.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "meshrpc/base/status_macros.h"
#include "meshrpc/base/status_matchers.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/server.h"
#include "tests/support/backends.h"

namespace meshrpc::core {
namespace {

using namespace std::chrono_literals;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::meshrpc::testing::TransportHarness;
using ::testing::HasSubstr;

using ::meshrpc::testing::Backend;

class UnaryTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { harness_ = GetParam().make(); }
  void TearDown() override {
    channel_.reset();
    server_.reset();
    harness_.reset();
  }

  // Starts a server with `setup` applied and a channel to it.
  void start(const std::function<void(Server&)>& setup = {}, ServerOptions server_options = {},
             ChannelOptions channel_options = {}) {
    server_ = std::make_unique<Server>(harness_->server_env(), harness_->server_network(),
                                       server_options);
    server_->register_method(
        "/test/Echo",
        [](ServerContext&, Buffer request) -> awaitable<Result<Buffer>> { co_return request; });
    if (setup) setup(*server_);
    auto address = server_->start(harness_->listen_address());
    ASSERT_TRUE(address.ok()) << address.status();
    channel_ = std::make_unique<Channel>(harness_->client_env(), harness_->client_network(),
                                         *address, channel_options);
  }

  awaitable<CallResult> call(std::string method, std::string request, CallOptions options = {}) {
    co_return co_await channel_->async_call(std::move(method), Buffer::copy_of(request),
                                            std::move(options), asio::use_awaitable);
  }

  Status run(TransportHarness::Task task) { return harness_->run_client(std::move(task)); }

  std::unique_ptr<TransportHarness> harness_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
};

Status expect_echo(const CallResult& result, const std::string& expected) {
  if (!result.ok()) return result.status;
  if (result.response.to_string() != expected) {
    return internal_error("echo mismatch: got '" + result.response.to_string() + "'");
  }
  return Status();
}

TEST_P(UnaryTest, EchoesARequest) {
  start();
  EXPECT_THAT(run([&]() -> awaitable<Status> {
                co_return expect_echo(co_await call("/test/Echo", "hello"), "hello");
              }),
              IsOk());
}

// Messages larger than the stream's flow-control window (1 MiB) up to max_message_bytes
// (4 MiB): the receiver must grant window for a message's first fragments before the message
// is complete, or neither side can move.
TEST_P(UnaryTest, EchoesAMessageLargerThanTheStreamWindow) {
  start();
  const std::string big(3 * 1024 * 1024 + 17, 'x');
  CallOptions options;
  options.timeout = std::chrono::seconds(20);
  EXPECT_THAT(run([&]() -> awaitable<Status> {
                co_return expect_echo(co_await call("/test/Echo", big, options), big);
              }),
              IsOk());
}

TEST_P(UnaryTest, DottedAndPathMethodNamesMeet) {
  start([](Server& server) {
    server.register_method("chunk.Store.Read",
                           [](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                             co_return Buffer::copy_of(ctx.method());  // the name the server saw
                           });
  });
  EXPECT_THAT(run([&]() -> awaitable<Status> {
                MESHRPC_CO_RETURN_IF_ERROR(
                    expect_echo(co_await call("/test/Echo", "path form"), "path form"));
                MESHRPC_CO_RETURN_IF_ERROR(
                    expect_echo(co_await call("test.Echo", "dotted form"), "dotted form"));
                co_return expect_echo(co_await call("/chunk.Store/Read", ""), "/chunk.Store/Read");
              }),
              IsOk());
}

TEST_P(UnaryTest, RegisteringANameWithoutAServiceThrows) {
  Server server(harness_->server_env(), harness_->server_network());
  auto handler = [](ServerContext&, Buffer r) -> awaitable<Result<Buffer>> { co_return r; };
  EXPECT_THROW(server.register_method("Echo", handler), std::invalid_argument);
  EXPECT_THROW(server.register_method("/Svc/", handler), std::invalid_argument);
  EXPECT_NO_THROW(server.register_method("Svc.Echo", handler));
}

TEST_P(UnaryTest, HealthCheckIsBuiltIn) {
  start();
  EXPECT_THAT(run([&]() -> awaitable<Status> {
                co_return expect_echo(co_await call(std::string(kHealthCheckMethod), ""),
                                      "SERVING");
              }),
              IsOk());
}

TEST_P(UnaryTest, UnknownMethodIsUnimplementedAndNotProcessed) {
  start();
  CallResult result;
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                result = co_await call("/test/Nope", "x");
                co_return Status();
              }),
              IsOk());
  EXPECT_THAT(result.status, StatusIs(StatusCode::kUnimplemented, HasSubstr("/test/Nope")));
  EXPECT_TRUE(result.not_processed);
}

TEST_P(UnaryTest, TenThousandConcurrentCallsOnOneConnectionAllComplete) {
  start();
  // 100 times the server's max concurrent streams: the rest queue on the client.
  constexpr int kCalls = 10'000;
  std::atomic<int> matched{0};
  ASSERT_THAT(
      run([&]() -> awaitable<Status> {
        // All calls of this task go through this io thread's one connection.
        MESHRPC_CO_RETURN_IF_ERROR(expect_echo(co_await call("/test/Echo", "warm"), "warm"));
        int done = 0;
        for (int i = 0; i < kCalls; ++i) {
          std::string text = "call " + std::to_string(i);
          channel_->async_call("/test/Echo", Buffer::copy_of(text), {}, [&, text](CallResult r) {
            if (r.ok() && r.response.to_string() == text) ++matched;
            ++done;
          });
        }
        // Completions run on this executor, between these waits (virtual or real).
        while (done < kCalls) {
          co_await harness_->client_env().async_wait_for(1ms, use_nothrow_awaitable);
        }
        co_return Status();
      }),
      IsOk());
  EXPECT_EQ(matched.load(), kCalls);
  EXPECT_EQ(channel_->connected_count(), 1u);
}

TEST_P(UnaryTest, CallsPastTheClientQueueBoundAreResourceExhausted) {
  ServerOptions server_options;
  server_options.connection.limits.max_concurrent_streams = 2;
  ChannelOptions channel_options;
  channel_options.max_queued_calls = 3;
  start(
      [](Server& server) {
        server.register_method("/test/Hold",
                               [](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                                 co_await ctx.env().async_wait_for(50ms, use_nothrow_awaitable);
                                 co_return Buffer();
                               });
      },
      server_options, channel_options);
  int ok = 0, exhausted = 0, other = 0;
  ASSERT_THAT(
      run([&]() -> awaitable<Status> {
        // The first call also brings the server's SETTINGS (max 2 streams).
        MESHRPC_CO_RETURN_IF_ERROR(expect_echo(co_await call("/test/Echo", "warm"), "warm"));
        int done = 0;
        for (int i = 0; i < 8; ++i) {
          channel_->async_call("/test/Hold", Buffer(), {}, [&](CallResult r) {
            if (r.ok()) {
              ++ok;
            } else if (r.status.code() == StatusCode::kResourceExhausted && r.not_processed) {
              ++exhausted;
            } else {
              ++other;
            }
            ++done;
          });
        }
        while (done < 8) {
          co_await harness_->client_env().async_wait_for(1ms, use_nothrow_awaitable);
        }
        co_return Status();
      }),
      IsOk());
  EXPECT_EQ(ok, 5);         // 2 in flight + 3 queued
  EXPECT_EQ(exhausted, 3);  // beyond the queue bound
  EXPECT_EQ(other, 0);
}

TEST_P(UnaryTest, DeadlineExceededCancelsTheHandler) {
  std::atomic<bool> handler_cancelled{false};
  start([&](Server& server) {
    server.register_method(
        "/test/Slow", [&](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
          auto [ec] = co_await ctx.env().async_wait_for(1h, use_nothrow_awaitable);
          if (ec == asio::error::operation_aborted) handler_cancelled = true;
          co_return Buffer();
        });
  });
  CallResult result;
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                CallOptions options;
                options.timeout = 50ms;
                result = co_await call("/test/Slow", "", options);
                // Give the server the time to see CANCEL (virtual or real).
                for (int i = 0; i < 1000 && !handler_cancelled; ++i) {
                  co_await harness_->client_env().async_wait_for(1ms, use_nothrow_awaitable);
                }
                co_return Status();
              }),
              IsOk());
  EXPECT_THAT(result.status, StatusIs(StatusCode::kDeadlineExceeded));
  EXPECT_TRUE(handler_cancelled);
}

TEST_P(UnaryTest, ExpiredOnArrivalIsNeverDispatched) {
  std::atomic<int> runs{0};
  start([&](Server& server) {
    server.register_method("/test/Count", [&](ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
      ++runs;
      co_return Buffer();
    });
  });
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                co_return expect_echo(co_await call("/test/Echo", "warm"), "warm");
              }),
              IsOk());
  CallResult result;
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                CallOptions options;
                options.timeout = 1ns;
                result = co_await call("/test/Count", "", options);
                co_return Status();
              }),
              IsOk());
  EXPECT_THAT(result.status, StatusIs(StatusCode::kDeadlineExceeded));
  EXPECT_EQ(runs.load(), 0);
}

TEST_P(UnaryTest, ClientCancelReachesTheHandler) {
  std::atomic<bool> handler_cancelled{false};
  asio::cancellation_signal cancel;
  asio::any_io_executor client_executor;
  start([&](Server& server) {
    server.register_method(
        "/test/Wait", [&](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
          // Now that the handler runs, the client cancels (on the client's executor).
          asio::post(client_executor, [&] { cancel.emit(asio::cancellation_type::terminal); });
          auto [ec] = co_await ctx.env().async_wait_for(1h, use_nothrow_awaitable);
          if (ec == asio::error::operation_aborted) handler_cancelled = true;
          co_return Buffer();
        });
  });
  CallResult result;
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                client_executor = co_await asio::this_coro::executor;
                result = co_await channel_->async_call(
                    "/test/Wait", Buffer(), {},
                    asio::bind_cancellation_slot(cancel.slot(), asio::use_awaitable));
                for (int i = 0; i < 1000 && !handler_cancelled; ++i) {
                  co_await harness_->client_env().async_wait_for(1ms, use_nothrow_awaitable);
                }
                co_return Status();
              }),
              IsOk());
  EXPECT_THAT(result.status, StatusIs(StatusCode::kCancelled));
  EXPECT_TRUE(handler_cancelled);
}

TEST_P(UnaryTest, OversizeMessageIsResourceExhaustedAndTheConnectionStaysUsable) {
  ServerOptions options;
  options.connection.limits.max_message_bytes = 1000;
  start({}, options);
  CallResult big;
  ASSERT_THAT(
      run([&]() -> awaitable<Status> {
        MESHRPC_CO_RETURN_IF_ERROR(expect_echo(co_await call("/test/Echo", "warm"), "warm"));
        big = co_await call("/test/Echo", std::string(5000, 'x'));
        co_return expect_echo(co_await call("/test/Echo", "after"), "after");
      }),
      IsOk());
  EXPECT_THAT(big.status,
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("max_message_bytes 1000")));
  EXPECT_EQ(channel_->connected_count(), 1u);
}

TEST_P(UnaryTest, ThrowingHandlerGivesInternalAndTheServerStaysUp) {
  start([](Server& server) {
    server.register_method("/test/Throw", [](ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
      throw std::runtime_error("boom");
      co_return Buffer();
    });
  });
  CallResult thrown;
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                thrown = co_await call("/test/Throw", "");
                co_return expect_echo(co_await call("/test/Echo", "still here"), "still here");
              }),
              IsOk());
  EXPECT_THAT(thrown.status, StatusIs(StatusCode::kInternal, HasSubstr("boom")));
}

TEST_P(UnaryTest, ApplicationErrorsReachTheClientWithTheirCode) {
  start([](Server& server) {
    server.register_method("/test/NotFound",
                           [](ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
                             co_return not_found_error("no such key: k1");
                           });
  });
  CallResult result;
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                result = co_await call("/test/NotFound", "");
                co_return Status();
              }),
              IsOk());
  EXPECT_THAT(result.status, StatusIs(StatusCode::kNotFound, HasSubstr("no such key: k1")));
  EXPECT_FALSE(result.not_processed);
  EXPECT_EQ(result.origin, FailureOrigin::kServer);
  EXPECT_FALSE(result.committed);  // an error carries no response message
}

TEST_P(UnaryTest, MetadataTravelsToTheHandler) {
  start([](Server& server) {
    server.register_method("/test/Who",
                           [](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
                             const std::string* user = find_metadata(ctx.metadata(), "user");
                             co_return Buffer::copy_of(user ? *user : "nobody");
                           });
  });
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                CallOptions options;
                options.metadata = {{"user", "ada"}};
                co_return expect_echo(co_await call("/test/Who", "", options), "ada");
              }),
              IsOk());
}

TEST_P(UnaryTest, ConnectingToNothingIsUnavailableAndNotProcessed) {
  channel_ = std::make_unique<Channel>(harness_->client_env(), harness_->client_network(),
                                       harness_->unused_address());
  CallResult result;
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                result = co_await call("/test/Echo", "x");
                co_return Status();
              }),
              IsOk());
  EXPECT_THAT(result.status, StatusIs(StatusCode::kUnavailable));
  EXPECT_TRUE(result.not_processed);
  EXPECT_EQ(result.origin, FailureOrigin::kTransport);
}

INSTANTIATE_TEST_SUITE_P(Backends, UnaryTest, ::meshrpc::testing::all_backends(),
                         ::meshrpc::testing::backend_name);

}  // namespace
}  // namespace meshrpc::core

namespace meshrpc::core {
namespace {

// The server-wide bound holds across connections: with max_concurrent_calls 1, a call on a
// second connection while the first is in flight is rejected before dispatch.
TEST(ServerLimits, MaxConcurrentCallsIsServerWideAndRejectsBeforeDispatch) {
  ::meshrpc::testing::SimHarness harness(4);
  ServerOptions options;
  options.max_concurrent_calls = 1;
  Server server(harness.server_env(), harness.server_network(), options);
  int runs = 0;
  server.register_method(
      "/test/Hold", [&](ServerContext& ctx, Buffer) -> awaitable<Result<Buffer>> {
        ++runs;
        co_await ctx.env().async_wait_for(std::chrono::milliseconds(100), use_nothrow_awaitable);
        co_return Buffer();
      });
  auto address = server.start(harness.listen_address());
  ASSERT_TRUE(address.ok());
  Channel first(harness.client_env(), harness.client_network(), *address);
  Channel second(harness.client_env(), harness.client_network(), *address);
  std::optional<CallResult> held, refused;
  first.async_call("/test/Hold", Buffer(), {}, [&](CallResult r) { held = std::move(r); });
  ASSERT_TRUE(harness.sim().run_until([&] { return runs == 1; }, std::chrono::seconds(1)));
  second.async_call("/test/Hold", Buffer(), {}, [&](CallResult r) { refused = std::move(r); });
  ASSERT_TRUE(harness.sim().run_until([&] { return held && refused; }, std::chrono::seconds(5)));
  EXPECT_THAT(held->status, ::meshrpc::testing::IsOk());
  EXPECT_THAT(refused->status, ::meshrpc::testing::StatusIs(StatusCode::kResourceExhausted,
                                                            HasSubstr("max_concurrent_calls 1")));
  EXPECT_TRUE(refused->not_processed);
  EXPECT_EQ(runs, 1);
}

}  // namespace
}  // namespace meshrpc::core
