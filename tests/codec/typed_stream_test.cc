// Typed streams on plain structs, end to end over TCP and simulated links:
// codec::Server::handle_stream, codec::open_stream and the typed read and write.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/use_awaitable.hpp>
#include <memory>
#include <string>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/codec/server.h"
#include "meshrpc/codec/stream.h"
#include "meshrpc/codec/struct.h"
#include "meshrpc/codec/struct_codec.h"
#include "meshrpc/core/channel.h"
#include "tests/support/backends.h"

namespace meshrpc::codec {
namespace stream_test {

struct Note {
  std::string text;
  int32_t seq = 0;
};
MESHRPC_STRUCT(Note, (text, 1), (seq, 2));

struct Tally {
  int32_t count = 0;
  std::string last;
};
MESHRPC_STRUCT(Tally, (count, 1), (last, 2));

}  // namespace stream_test

namespace {

using ::meshrpc::testing::Backend;
using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using stream_test::Note;
using stream_test::Tally;
using ::testing::HasSubstr;

#define STREAM_EXPECT(condition, message)                             \
  do {                                                                \
    if (!(condition)) co_return internal_error(std::string(message)); \
  } while (false)

class TypedStreamTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { harness_ = GetParam().make(); }
  void TearDown() override {
    channel_.reset();
    server_.reset();
    harness_.reset();
  }

  void start() {
    server_ = std::make_unique<Server>(harness_->server_env(), harness_->server_network());
    // For each note, a tally of the notes so far; ends when the client half-closes.
    server_->handle_stream<Note, Tally>(
        "Notes.Tally",
        [](core::ServerContext&, ServerStream<Note, Tally>& stream) -> awaitable<Status> {
          Tally tally;
          for (;;) {
            StreamRead<Note> note = co_await stream.async_read(asio::use_awaitable);
            if (note.error) co_return note.error->status;
            if (!note.message) co_return Status();
            ++tally.count;
            tally.last = note.message->text;
            Status sent = co_await stream.async_write(tally, asio::use_awaitable);
            if (!sent.ok()) co_return sent;
          }
        });
    // Sends garbage where a Tally belongs.
    server_->register_stream_method(
        "/Notes/Garbage", [](core::ServerContext&, core::ServerStream& raw) -> awaitable<Status> {
          Status sent = co_await raw.async_write(Buffer::copy_of(std::string("\xff\xff\xff", 3)),
                                                 asio::use_awaitable);
          co_return sent;
        });
    auto address = server_->start(harness_->listen_address());
    ASSERT_TRUE(address.ok()) << address.status();
    channel_ = std::make_unique<core::Channel>(harness_->client_env(), harness_->client_network(),
                                               *address);
  }

  std::unique_ptr<testing::TransportHarness> harness_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<core::Channel> channel_;
};

TEST_P(TypedStreamTest, BidirectionalTypedMessagesRoundTripInOrder) {
  start();
  EXPECT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    BidirectionalStream<Note, Tally> stream = open_stream<Note, Tally>(*channel_, "Notes.Tally");
    for (int i = 1; i <= 50; ++i) {
      // Named: GCC 12 destroys a temporary inside a co_await expression twice.
      const Note note{"note " + std::to_string(i), i};
      Status sent = co_await stream.async_write(note, asio::use_awaitable);
      STREAM_EXPECT(sent.ok(), sent.to_string());
      StreamRead<Tally> tally = co_await stream.async_read(asio::use_awaitable);
      STREAM_EXPECT(tally.message && tally.message->count == i &&
                        tally.message->last == "note " + std::to_string(i),
                    "tally " + std::to_string(i));
    }
    Status done = co_await stream.async_writes_done(asio::use_awaitable);
    STREAM_EXPECT(done.ok(), done.to_string());
    StreamRead<Tally> end = co_await stream.async_read(asio::use_awaitable);
    STREAM_EXPECT(end.end_of_stream(), "expected the end of the stream");
    co_return co_await stream.async_finish(asio::use_awaitable);
  }),
              IsOk());
  // The server describes the method as streaming, with both schemas, for tools.
  const MethodDescription* described = server_->find_method("/Notes/Tally");
  ASSERT_NE(described, nullptr);
  EXPECT_EQ(described->kind, MethodKind::kBidiStreaming);
  EXPECT_NE(described->request_schema, nullptr);
}

TEST_P(TypedStreamTest, AMessageThatDoesNotDecodeIsATransportError) {
  start();
  StreamRead<Tally> read;
  ASSERT_THAT(harness_->run_client([&]() -> awaitable<Status> {
    auto stream = open_stream<Note, Tally>(*channel_, "/Notes/Garbage");
    read = co_await stream.async_read(asio::use_awaitable);
    co_return Status();
  }),
              IsOk());
  ASSERT_TRUE(read.error.has_value());
  EXPECT_EQ(read.error->kind, core::StreamError::Kind::kTransport);
  EXPECT_THAT(read.error->status, StatusIs(StatusCode::kInternal, HasSubstr("does not decode")));
}

TEST_P(TypedStreamTest, UnaryAndStreamingRegistrationsRefuseTheOtherKind) {
  Server server(harness_->server_env(), harness_->server_network());
  auto unary = [](core::ServerContext&, const Note&) -> Result<Tally> { return Tally{}; };
  EXPECT_THROW((server.handle<Note, Tally>(
                   MethodInfo{"/Notes/Stream", MethodKind::kServerStreaming}, unary)),
               std::invalid_argument);
  auto streaming = [](core::ServerContext&, ServerStream<Note, Tally>&) -> awaitable<Status> {
    co_return Status();
  };
  EXPECT_THROW((server.handle_stream<Note, Tally>(MethodInfo{"/Notes/Unary", MethodKind::kUnary},
                                                  streaming)),
               std::invalid_argument);
}

INSTANTIATE_TEST_SUITE_P(Backends, TypedStreamTest, ::meshrpc::testing::all_backends(),
                         ::meshrpc::testing::backend_name);

}  // namespace
}  // namespace meshrpc::codec
