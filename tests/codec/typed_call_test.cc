// Typed handlers and calls on plain structs, end to end over TCP and simulated links:
// codec::Server::handle, codec::async_unary_call and codec::Client.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/deferred.hpp>
#include <future>
#include <memory>
#include <stdexcept>
#include <string>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/codec/client.h"
#include "meshrpc/codec/server.h"
#include "meshrpc/codec/struct.h"
#include "meshrpc/codec/struct_codec.h"
#include "meshrpc/codec/unary_call.h"
#include "meshrpc/core/channel.h"
#include "meshrpc/core/interceptor.h"
#include "tests/support/backends.h"
#include "tests/support/tcp_harness.h"

namespace meshrpc::codec {
namespace typed_test {

struct ReadArgs {
  std::string chunk;
  int64_t offset = 0;
  int32_t length = 0;
};
MESHRPC_STRUCT(ReadArgs, (chunk, 1), (offset, 2), (length, 3));

struct ReadReply {
  std::vector<std::byte> data;
  bool end_of_chunk = false;
};
MESHRPC_STRUCT(ReadReply, (data, 1), (end_of_chunk, 2));

}  // namespace typed_test

namespace {

using ::meshrpc::testing::Backend;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;
using typed_test::ReadArgs;
using typed_test::ReadReply;

class TypedCallTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { harness_ = GetParam().make(); }
  void TearDown() override {
    channel_.reset();
    server_.reset();
    harness_.reset();
  }

  void start() {
    server_ = std::make_unique<Server>(harness_->server_env(), harness_->server_network());
    server_->handle<ReadArgs, ReadReply>(
        "Chunk.Read",
        [](core::ServerContext&, const ReadArgs& args) -> awaitable<Result<ReadReply>> {
          if (args.length < 0) co_return invalid_argument_error("negative length");
          ReadReply reply;
          for (int32_t i = 0; i < args.length; ++i) {
            reply.data.push_back(static_cast<std::byte>(args.offset + i));
          }
          reply.end_of_chunk = args.chunk == "last";
          co_return reply;
        },
        {.idempotency = core::Idempotency::kNoSideEffects});
    auto address = server_->start(harness_->listen_address());
    ASSERT_TRUE(address.ok()) << address.status();
    channel_ = std::make_unique<core::Channel>(harness_->client_env(), harness_->client_network(),
                                               *address);
  }

  std::unique_ptr<meshrpc::testing::TransportHarness> harness_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<core::Channel> channel_;
};

TEST_P(TypedCallTest, CallsATypedHandler) {
  start();
  Result<ReadReply> reply = internal_error("not run");
  ASSERT_TRUE(harness_
                  ->run_client([&]() -> awaitable<Status> {
                    // Named: GCC 12 destroys braced temporaries in a co_await twice.
                    const ReadArgs args{"last", 7, 3};
                    core::CallOptions options;
                    reply = co_await async_unary_call<ReadReply>(*channel_, "Chunk.Read", args,
                                                                 options, asio::use_awaitable);
                    co_return Status();
                  })
                  .ok());
  ASSERT_TRUE(reply.ok()) << reply.status();
  ASSERT_EQ(reply->data.size(), 3u);
  EXPECT_EQ(reply->data[0], std::byte{7});
  EXPECT_EQ(reply->data[2], std::byte{9});
  EXPECT_TRUE(reply->end_of_chunk);
}

TEST_P(TypedCallTest, HandlerStatusComesBackTyped) {
  start();
  Result<ReadReply> reply = ReadReply{};
  ASSERT_TRUE(harness_
                  ->run_client([&]() -> awaitable<Status> {
                    const ReadArgs args{"c", 0, -1};
                    core::CallOptions options;
                    reply = co_await async_unary_call<ReadReply>(*channel_, "/Chunk/Read", args,
                                                                 options, asio::use_awaitable);
                    co_return Status();
                  })
                  .ok());
  EXPECT_THAT(reply.status(), StatusIs(StatusCode::kInvalidArgument, HasSubstr("negative length")));
}

TEST_P(TypedCallTest, UndecodableRequestIsInvalidArgumentNamingTheField) {
  start();
  core::CallResult result;
  ASSERT_TRUE(harness_
                  ->run_client([&]() -> awaitable<Status> {
                    // Field 2 (offset) as a LEN value: the wrong wire type.
                    std::string bad = "\x12\x01x";
                    result = co_await channel_->async_call("Chunk.Read", Buffer::copy_of(bad), {},
                                                           asio::use_awaitable);
                    co_return Status();
                  })
                  .ok());
  EXPECT_THAT(result.status,
              StatusIs(StatusCode::kInvalidArgument, HasSubstr("ReadArgs.offset (field 2)")));
}

TEST_P(TypedCallTest, ServerDescribesTypedMethods) {
  start();
  const MethodDescription* method = server_->find_method("/Chunk/Read");
  ASSERT_NE(method, nullptr);
  EXPECT_EQ(method->idempotency, core::Idempotency::kNoSideEffects);
  EXPECT_EQ(method->kind, MethodKind::kUnary);
}

// Calls on several io threads invoke a handler at once: a mutable one (state raced on) is
// refused by the compiler, a const-callable one accepted.
namespace handler_constness {
struct MutableHandler {
  Result<ReadReply> operator()(core::ServerContext&, const ReadArgs&) { return ReadReply{}; }
};
struct ConstHandler {
  Result<ReadReply> operator()(core::ServerContext&, const ReadArgs&) const { return ReadReply{}; }
};
template <typename Fn>
concept Registrable = requires(Server& server, Fn fn) {
  server.handle<ReadArgs, ReadReply>(std::string_view("Chunk.Read"), fn);
};
static_assert(!Registrable<MutableHandler>);
static_assert(Registrable<ConstHandler>);
}  // namespace handler_constness

TEST_P(TypedCallTest, StreamingMethodInfoIsRefusedAtSetup) {
  server_ = std::make_unique<Server>(harness_->server_env(), harness_->server_network());
  const MethodInfo watch{"/Chunk/Watch", MethodKind::kServerStreaming,
                         core::Idempotency::kNoSideEffects};
  EXPECT_THROW(
      (server_->handle<ReadArgs, ReadReply>(
          watch,
          [](core::ServerContext&, const ReadArgs&) -> Result<ReadReply> { return ReadReply{}; })),
      std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Backends, TypedCallTest, ::meshrpc::testing::all_backends(),
                         ::meshrpc::testing::backend_name);

// codec::Client: calls by address, blocking from a plain thread or asynchronous.
class TypedClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    server_ = std::make_unique<Server>(harness_.env(), harness_.network());
    server_->handle<ReadArgs, ReadReply>(
        "Chunk.Read", [](core::ServerContext&, const ReadArgs& args) -> Result<ReadReply> {
          return ReadReply{{}, args.chunk == "last"};
        });
    auto address = server_->start(harness_.listen_address());
    ASSERT_TRUE(address.ok()) << address.status();
    address_ = *address;
  }
  void TearDown() override {
    client_.reset();
    server_.reset();
  }

  meshrpc::testing::TcpHarness harness_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Client> client_ = std::make_unique<Client>(harness_.env(), harness_.network());
  transport::Address address_;
};

TEST_F(TypedClientTest, BlockingCallFromAPlainThread) {
  Result<ReadReply> reply =
      client_->call<ReadReply>(address_, "Chunk.Read", ReadArgs{"last", 0, 0});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(reply->end_of_chunk);
}

TEST_F(TypedClientTest, AsynchronousCallWithACompletionToken) {
  std::promise<Result<ReadReply>> done;
  client_->call<ReadReply>(address_, "Chunk.Read", ReadArgs{"first", 0, 0}, {},
                           [&done](Result<ReadReply> reply) { done.set_value(std::move(reply)); });
  Result<ReadReply> reply = done.get_future().get();  // bounded by the client's default timeout
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_FALSE(reply->end_of_chunk);
}

TEST_F(TypedClientTest, DeferredTokenStartsTheCallWhenInvoked) {
  auto call =
      client_->call<ReadReply>(address_, "Chunk.Read", ReadArgs{"last", 0, 0}, {}, asio::deferred);
  std::promise<Result<ReadReply>> done;
  std::move(call)([&done](Result<ReadReply> reply) { done.set_value(std::move(reply)); });
  Result<ReadReply> reply = done.get_future().get();
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(reply->end_of_chunk);
}

TEST_F(TypedClientTest, DeferredTokenReportsAnUnusableAddressWhenInvoked) {
  sync::ClientOptions options;
  options.max_channels = 1;
  Client limited(harness_.env(), harness_.network(), options);
  ASSERT_TRUE(limited.call<ReadReply>(address_, "Chunk.Read", ReadArgs{}).ok());
  // A second address is past max_channels: the error arrives through the handler.
  auto call = limited.call<ReadReply>(harness_.unused_address(), "Chunk.Read", ReadArgs{}, {},
                                      asio::deferred);
  std::promise<Result<ReadReply>> done;
  std::move(call)([&done](Result<ReadReply> reply) { done.set_value(std::move(reply)); });
  EXPECT_THAT(done.get_future().get().status(), StatusIs(StatusCode::kResourceExhausted));
}

// Records the idempotency each call carried.
class IdempotencyRecorder : public core::ClientInterceptor {
 public:
  void after_call(const core::ClientCallInfo& call, const core::CallResult&,
                  runtime::Duration) override {
    seen.store(call.options.idempotency);
  }
  std::atomic<core::Idempotency> seen{core::Idempotency::kUnknown};
};

TEST_F(TypedClientTest, MethodDeclarationCarriesTypesAndIdempotencyToTheCall) {
  constexpr Method<ReadArgs, ReadReply> kPeek{"Chunk.Peek", core::Idempotency::kNoSideEffects};
  server_.reset();
  server_ = std::make_unique<Server>(harness_.env(), harness_.network());
  server_->handle(kPeek, [](core::ServerContext&, const ReadArgs& args) -> Result<ReadReply> {
    return ReadReply{{}, args.chunk == "last"};
  });
  auto address = server_->start(harness_.listen_address());
  ASSERT_TRUE(address.ok()) << address.status();
  ASSERT_NE(server_->find_method("/Chunk/Peek"), nullptr);
  EXPECT_EQ(server_->find_method("/Chunk/Peek")->idempotency, core::Idempotency::kNoSideEffects);

  auto recorder = std::make_shared<IdempotencyRecorder>();
  sync::ClientOptions options;
  options.channel.interceptors.push_back(recorder);
  Client client(harness_.env(), harness_.network(), options);
  Result<ReadReply> reply = client.call(*address, kPeek, ReadArgs{"last", 0, 0});
  ASSERT_TRUE(reply.ok()) << reply.status();
  EXPECT_TRUE(reply->end_of_chunk);
  EXPECT_EQ(recorder->seen.load(), core::Idempotency::kNoSideEffects);
}

TEST_F(TypedClientTest, UnknownMethodIsUnimplemented) {
  EXPECT_THAT(client_->call<ReadReply>(address_, "Chunk.Write", ReadArgs{}).status(),
              StatusIs(StatusCode::kUnimplemented));
}

TEST_F(TypedClientTest, NobodyListeningIsUnavailable) {
  EXPECT_THAT(
      client_->call<ReadReply>(harness_.unused_address(), "Chunk.Read", ReadArgs{}).status(),
      StatusIs(StatusCode::kUnavailable));
}

TEST_F(TypedClientTest, ReplyThatDoesNotDecodeIsInternal) {
  // The server answers a raw-bytes method with bytes that are not a ReadReply (field 1 as a
  // VARINT where ReadReply has bytes).
  server_.reset();
  server_ = std::make_unique<Server>(harness_.env(), harness_.network());
  server_->register_method("/Chunk/Read",
                           [](core::ServerContext&, Buffer) -> awaitable<Result<Buffer>> {
                             co_return Buffer::copy_of(std::string_view("\x08\x01", 2));
                           });
  auto address = server_->start(harness_.listen_address());
  ASSERT_TRUE(address.ok()) << address.status();
  EXPECT_THAT(client_->call<ReadReply>(*address, "Chunk.Read", ReadArgs{}).status(),
              StatusIs(StatusCode::kInternal, HasSubstr("ReadReply.data (field 1)")));
}

}  // namespace
}  // namespace meshrpc::codec
