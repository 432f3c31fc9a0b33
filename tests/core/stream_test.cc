// Streams over TCP on 127.0.0.1 and over simulated links (virtual time): order, half-close,
// final status, flow control and back-pressure, idle timeouts, cancellation by dropping the
// handle, many streams on one connection, a server that goes away mid-stream.
#include "meshrpc/core/stream.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/use_awaitable.hpp>
#include <memory>
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
using ::testing::HasSubstr;

// A failed expectation inside a client coroutine, as a Status the harness returns.
#define STREAM_EXPECT(condition, message)                             \
  do {                                                                \
    if (!(condition)) co_return internal_error(std::string(message)); \
  } while (false)

// Sanitizers slow the message path tenfold or more: the million-message test runs a tenth.
#if defined(__has_feature)
#if __has_feature(thread_sanitizer) || __has_feature(address_sanitizer)
#define MESHRPC_TEST_SANITIZED 1
#endif
#endif
#ifdef MESHRPC_TEST_SANITIZED
constexpr int kMillion = 100'000;
#else
constexpr int kMillion = 1'000'000;
#endif

std::string describe(const ReadResult& read) {
  if (read.message) return "message '" + read.message->to_string() + "'";
  if (read.error) return read.error->to_string();
  return "end of stream";
}

class StreamTest : public ::testing::TestWithParam<Backend> {
 protected:
  void SetUp() override { harness_ = GetParam().make(); }
  void TearDown() override {
    channel_.reset();
    server_.reset();
    harness_.reset();
  }

  void start(const std::function<void(Server&)>& setup, ServerOptions server_options = {},
             ChannelOptions channel_options = {}) {
    server_ = std::make_unique<Server>(harness_->server_env(), harness_->server_network(),
                                       server_options);
    // Echoes every message until the client half-closes.
    server_->register_stream_method(
        "/test/Echo", [](ServerContext&, ServerStream& stream) -> awaitable<Status> {
          for (;;) {
            ReadResult in = co_await stream.async_read(asio::use_awaitable);
            if (!in.message) co_return in.error ? in.error->status : Status();
            Status sent = co_await stream.async_write(*std::move(in.message), asio::use_awaitable);
            if (!sent.ok()) co_return sent;
          }
        });
    // Reads a count N, writes "0" .. "N-1", ends OK.
    server_->register_stream_method(
        "/test/Count", [](ServerContext&, ServerStream& stream) -> awaitable<Status> {
          ReadResult in = co_await stream.async_read(asio::use_awaitable);
          if (!in.message) co_return invalid_argument_error("no count");
          const int n = std::stoi(in.message->to_string());
          for (int i = 0; i < n; ++i) {
            Status sent = co_await stream.async_write(Buffer::copy_of(std::to_string(i)),
                                                      asio::use_awaitable);
            if (!sent.ok()) co_return sent;
          }
          co_return Status();
        });
    if (setup) setup(*server_);
    auto address = server_->start(harness_->listen_address());
    ASSERT_TRUE(address.ok()) << address.status();
    channel_ = std::make_unique<Channel>(harness_->client_env(), harness_->client_network(),
                                         *address, channel_options);
  }

  Status run(testing::TransportHarness::Task task) { return harness_->run_client(std::move(task)); }
  runtime::Env& client_env() { return harness_->client_env(); }

  std::unique_ptr<testing::TransportHarness> harness_;
  std::unique_ptr<Server> server_;
  std::unique_ptr<Channel> channel_;
};

TEST_P(StreamTest, ServerStreamingDeliversEveryMessageInOrderThenTheEnd) {
  start({});
  const int n = GetParam().name == "tcp" ? kMillion : 20'000;
  EXPECT_THAT(run([&]() -> awaitable<Status> {
                ClientStream stream = channel_->open_stream("/test/Count");
                Status sent = co_await stream.async_write_last(Buffer::copy_of(std::to_string(n)),
                                                               asio::use_awaitable);
                STREAM_EXPECT(sent.ok(), sent.to_string());
                for (int i = 0; i < n; ++i) {
                  ReadResult read = co_await stream.async_read(asio::use_awaitable);
                  STREAM_EXPECT(read.message && read.message->to_string() == std::to_string(i),
                                "message " + std::to_string(i) + ": got " + describe(read));
                }
                ReadResult end = co_await stream.async_read(asio::use_awaitable);
                STREAM_EXPECT(end.end_of_stream(), "after the last message: " + describe(end));
                co_return co_await stream.async_finish(asio::use_awaitable);
              }),
              IsOk());
}

TEST_P(StreamTest, BidirectionalEchoesEachMessageAndHalfCloseEndsIt) {
  start({});
  EXPECT_THAT(run([&]() -> awaitable<Status> {
                ClientStream stream = channel_->open_stream("/test/Echo");
                for (int i = 0; i < 100; ++i) {
                  const std::string text = "ping " + std::to_string(i);
                  Status sent =
                      co_await stream.async_write(Buffer::copy_of(text), asio::use_awaitable);
                  STREAM_EXPECT(sent.ok(), sent.to_string());
                  ReadResult read = co_await stream.async_read(asio::use_awaitable);
                  STREAM_EXPECT(read.message && read.message->to_string() == text,
                                "round trip " + std::to_string(i) + ": " + describe(read));
                }
                Status done = co_await stream.async_writes_done(asio::use_awaitable);
                STREAM_EXPECT(done.ok(), done.to_string());
                ReadResult end = co_await stream.async_read(asio::use_awaitable);
                STREAM_EXPECT(end.end_of_stream(), describe(end));
                co_return co_await stream.async_finish(asio::use_awaitable);
              }),
              IsOk());
}

TEST_P(StreamTest, ClientStreamingEndsWithTheServersAnswerAfterHalfClose) {
  start([](Server& server) {
    server.register_stream_method(
        "/test/Sum", [](ServerContext&, ServerStream& stream) -> awaitable<Status> {
          int sum = 0;
          for (;;) {
            ReadResult in = co_await stream.async_read(asio::use_awaitable);
            if (in.error) co_return in.error->status;
            if (!in.message) break;  // the client is done writing
            sum += std::stoi(in.message->to_string());
          }
          co_return co_await stream.async_write(Buffer::copy_of(std::to_string(sum)),
                                                asio::use_awaitable);
        });
  });
  EXPECT_THAT(run([&]() -> awaitable<Status> {
                ClientStream stream = channel_->open_stream("/test/Sum");
                for (int i = 1; i <= 10; ++i) {
                  Status sent = co_await stream.async_write(Buffer::copy_of(std::to_string(i)),
                                                            asio::use_awaitable);
                  STREAM_EXPECT(sent.ok(), sent.to_string());
                }
                Status done = co_await stream.async_writes_done(asio::use_awaitable);
                STREAM_EXPECT(done.ok(), done.to_string());
                ReadResult sum = co_await stream.async_read(asio::use_awaitable);
                STREAM_EXPECT(sum.message && sum.message->to_string() == "55", describe(sum));
                co_return co_await stream.async_finish(asio::use_awaitable);
              }),
              IsOk());
}

TEST_P(StreamTest, AHandlersErrorReachesTheReaderAsAnApplicationError) {
  start([](Server& server) {
    server.register_stream_method(
        "/test/OneThenFail", [](ServerContext&, ServerStream& stream) -> awaitable<Status> {
          Status sent = co_await stream.async_write(Buffer::copy_of("one"), asio::use_awaitable);
          if (!sent.ok()) co_return sent;
          co_return not_found_error("no second message");
        });
  });
  Status final_status;
  ReadResult second;
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                ClientStream stream = channel_->open_stream("/test/OneThenFail");
                ReadResult first = co_await stream.async_read(asio::use_awaitable);
                STREAM_EXPECT(first.message && first.message->to_string() == "one",
                              describe(first));
                second = co_await stream.async_read(asio::use_awaitable);
                final_status = co_await stream.async_finish(asio::use_awaitable);
                co_return Status();
              }),
              IsOk());
  ASSERT_TRUE(second.error) << describe(second);
  EXPECT_EQ(second.error->kind, StreamError::Kind::kApplication);
  EXPECT_THAT(second.error->status, StatusIs(StatusCode::kNotFound, HasSubstr("second")));
  EXPECT_THAT(final_status, StatusIs(StatusCode::kNotFound));
}

TEST_P(StreamTest, AnUnknownMethodEndsTheStreamUnimplemented) {
  start({});
  ReadResult read;
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                ClientStream stream = channel_->open_stream("/test/Nope");
                read = co_await stream.async_read(asio::use_awaitable);
                co_return Status();
              }),
              IsOk());
  ASSERT_TRUE(read.error) << describe(read);
  EXPECT_EQ(read.error->kind, StreamError::Kind::kApplication);
  EXPECT_THAT(read.error->status, StatusIs(StatusCode::kUnimplemented));
}

TEST_P(StreamTest, IdleTimeoutEndsAReadWithTimeoutAndTheStreamGoesOn) {
  start([](Server& server) {
    // Answers each message only after 300 ms.
    server.register_stream_method(
        "/test/Slow", [](ServerContext& ctx, ServerStream& stream) -> awaitable<Status> {
          for (;;) {
            ReadResult in = co_await stream.async_read(asio::use_awaitable);
            if (!in.message) co_return Status();
            auto [ec] = co_await ctx.env().async_wait_for(300ms, use_nothrow_awaitable);
            if (ec) co_return cancelled_error("cancelled");
            Status sent = co_await stream.async_write(*std::move(in.message), asio::use_awaitable);
            if (!sent.ok()) co_return sent;
          }
        });
  });
  EXPECT_THAT(
      run([&]() -> awaitable<Status> {
        ClientStream stream = channel_->open_stream("/test/Slow", {.idle_timeout = 100ms});
        Status sent = co_await stream.async_write(Buffer::copy_of("late"), asio::use_awaitable);
        STREAM_EXPECT(sent.ok(), sent.to_string());
        const runtime::TimePoint started = client_env().now();
        ReadResult timed_out = co_await stream.async_read(asio::use_awaitable);
        STREAM_EXPECT(timed_out.error && timed_out.error->kind == StreamError::Kind::kTimeout &&
                          timed_out.error->status.code() == StatusCode::kDeadlineExceeded,
                      "first read: " + describe(timed_out));
        STREAM_EXPECT(client_env().now() - started >= 100ms, "timed out early");
        // The stream is still open: the answer arrives for a later read.
        ReadResult answer;
        for (int tries = 0; tries < 10 && !answer.message; ++tries) {
          answer = co_await stream.async_read(asio::use_awaitable);
          STREAM_EXPECT(
              answer.message || (answer.error && answer.error->kind == StreamError::Kind::kTimeout),
              "later read: " + describe(answer));
        }
        STREAM_EXPECT(answer.message && answer.message->to_string() == "late", describe(answer));
        co_return Status();
      }),
      IsOk());
}

TEST_P(StreamTest, TheChannelsDefaultIdleTimeoutAppliesToStreamsOpenedWithoutOne) {
  ChannelOptions channel_options;
  channel_options.default_stream_idle_timeout = 50ms;
  start({}, {}, channel_options);
  EXPECT_THAT(run([&]() -> awaitable<Status> {
                // Echo answers nothing until written to: the read can only time out.
                ClientStream stream = channel_->open_stream("/test/Echo");
                ReadResult read = co_await stream.async_read(asio::use_awaitable);
                STREAM_EXPECT(read.error && read.error->kind == StreamError::Kind::kTimeout,
                              describe(read));
                STREAM_EXPECT(read.error->status.message().find("50 ms") != std::string::npos,
                              read.error->status.to_string());
                co_return Status();
              }),
              IsOk());
}

TEST_P(StreamTest, DroppingTheHandleCancelsTheServerHandlerAndFreesTheStream) {
  auto saw_cancel = std::make_shared<std::atomic<int>>(0);
  std::atomic<int>& handler_saw_cancel = *saw_cancel;
  start([&](Server& server) {
    server.register_stream_method(
        "/test/Hold", [saw_cancel](ServerContext&, ServerStream& stream) -> awaitable<Status> {
          std::atomic<int>& handler_saw_cancel = *saw_cancel;
          for (;;) {
            ReadResult in = co_await stream.async_read(asio::use_awaitable);
            if (in.error) {
              if (in.error->status.code() == StatusCode::kCancelled) ++handler_saw_cancel;
              co_return in.error->status;
            }
            if (!in.message) co_return Status();
            Status sent = co_await stream.async_write(*std::move(in.message), asio::use_awaitable);
            if (!sent.ok()) co_return sent;
          }
        });
  });
  EXPECT_THAT(run([&]() -> awaitable<Status> {
                {
                  ClientStream stream = channel_->open_stream("/test/Hold");
                  Status sent =
                      co_await stream.async_write(Buffer::copy_of("x"), asio::use_awaitable);
                  STREAM_EXPECT(sent.ok(), sent.to_string());
                  ReadResult echo = co_await stream.async_read(asio::use_awaitable);
                  STREAM_EXPECT(echo.message, describe(echo));
                  STREAM_EXPECT(server_->active_calls() == 1, "the handler runs");
                }  // dropped mid-stream
                for (int i = 0; i < 500 && server_->active_calls() != 0; ++i) {
                  co_await client_env().async_wait_for(10ms, use_nothrow_awaitable);
                }
                STREAM_EXPECT(server_->active_calls() == 0, "the server still runs the stream");
                co_return Status();
              }),
              IsOk());
  EXPECT_EQ(handler_saw_cancel.load(), 1);
}

TEST_P(StreamTest, AReaderThatStopsBackPressuresTheWriterWithBoundedMemory) {
  constexpr size_t kMessage = 64 * 1024;
  // Shared with the handler, which may still be winding down when the test body returns.
  auto written_count = std::make_shared<std::atomic<int>>(0);
  std::atomic<int>& written = *written_count;
  start([&](Server& server) {
    server.register_stream_method(
        "/test/Flood", [written_count](ServerContext&, ServerStream& stream) -> awaitable<Status> {
          std::atomic<int>& written = *written_count;
          const Buffer chunk = Buffer::copy_of(std::string(kMessage, 'f'));
          for (;;) {
            Status sent = co_await stream.async_write(Buffer(chunk), asio::use_awaitable);
            if (!sent.ok()) co_return sent;
            ++written;
          }
        });
  });
  EXPECT_THAT(run([&]() -> awaitable<Status> {
                ClientStream stream = channel_->open_stream("/test/Flood");
                // Not reading: wait until the writer has stopped making progress.
                int last = -1;
                for (int quiet = 0; quiet < 20;) {
                  co_await client_env().async_wait_for(20ms, use_nothrow_awaitable);
                  const int now = written.load();
                  quiet = now == last ? quiet + 1 : 0;
                  last = now;
                }
                // The stream window (1 MiB) plus the one unread message the receiver holds
                // and the write in flight: about 18 messages, not thousands.
                const size_t bound = (1024 * 1024) / kMessage + 3;
                STREAM_EXPECT(written.load() > 0, "nothing was written");
                STREAM_EXPECT(static_cast<size_t>(written.load()) <= bound,
                              std::to_string(written.load()) + " writes completed, bound " +
                                  std::to_string(bound));
                STREAM_EXPECT(stream.unread_messages() <= bound,
                              std::to_string(stream.unread_messages()) + " unread messages");
                // Reading resumes the writer.
                const int stalled_at = written.load();
                for (int i = 0; i < 40; ++i) {
                  ReadResult read = co_await stream.async_read(asio::use_awaitable);
                  STREAM_EXPECT(read.message && read.message->size() == kMessage, describe(read));
                }
                for (int i = 0; i < 500 && written.load() <= stalled_at + 20; ++i) {
                  co_await client_env().async_wait_for(10ms, use_nothrow_awaitable);
                }
                STREAM_EXPECT(written.load() > stalled_at + 20, "the writer did not resume");
                stream.abort();
                co_return Status();
              }),
              IsOk());
}

TEST_P(StreamTest, AStalledStreamDoesNotStallTheOthersOnItsConnection) {
  start([](Server& server) {
    server.register_stream_method(
        "/test/Flood", [](ServerContext&, ServerStream& stream) -> awaitable<Status> {
          const Buffer chunk = Buffer::copy_of(std::string(256 * 1024, 'f'));
          for (;;) {
            Status sent = co_await stream.async_write(Buffer(chunk), asio::use_awaitable);
            if (!sent.ok()) co_return sent;
          }
        });
  });
  EXPECT_THAT(run([&]() -> awaitable<Status> {
                // Many unread floods: together they would more than fill the 16 MiB
                // connection window if stalled streams held on to it.
                std::vector<ClientStream> stalled;
                for (int i = 0; i < 24; ++i)
                  stalled.push_back(channel_->open_stream("/test/Flood"));
                co_await client_env().async_wait_for(200ms, use_nothrow_awaitable);
                ClientStream echo = channel_->open_stream("/test/Echo");
                for (int i = 0; i < 10; ++i) {
                  Status sent =
                      co_await echo.async_write(Buffer::copy_of("still here"), asio::use_awaitable);
                  STREAM_EXPECT(sent.ok(), sent.to_string());
                  ReadResult read = co_await echo.async_read(asio::use_awaitable);
                  STREAM_EXPECT(read.message, "echo " + std::to_string(i) + ": " + describe(read));
                }
                co_return Status();
              }),
              IsOk());
}

TEST_P(StreamTest, AThousandConcurrentStreamsOnOneConnection) {
  ServerOptions server_options;
  server_options.connection.limits.max_concurrent_streams = 1000;  // all open at once
  ChannelOptions channel_options;
  channel_options.connection.limits.max_concurrent_streams = 1000;
  start({}, server_options, channel_options);
  std::atomic<int> finished{0};
  EXPECT_THAT(run([&]() -> awaitable<Status> {
                std::vector<ClientStream> streams;
                for (int i = 0; i < 1000; ++i)
                  streams.push_back(channel_->open_stream("/test/Echo"));
                // Every stream gets its message before any reads: all are open at once.
                for (int i = 0; i < 1000; ++i) {
                  Status sent = co_await streams[i].async_write(Buffer::copy_of(std::to_string(i)),
                                                                asio::use_awaitable);
                  STREAM_EXPECT(sent.ok(), sent.to_string());
                }
                for (int i = 0; i < 1000; ++i) {
                  ReadResult read = co_await streams[i].async_read(asio::use_awaitable);
                  STREAM_EXPECT(read.message && read.message->to_string() == std::to_string(i),
                                "stream " + std::to_string(i) + ": " + describe(read));
                  Status done = co_await streams[i].async_writes_done(asio::use_awaitable);
                  STREAM_EXPECT(done.ok(), done.to_string());
                  Status final_status = co_await streams[i].async_finish(asio::use_awaitable);
                  STREAM_EXPECT(final_status.ok(), final_status.to_string());
                  ++finished;
                }
                co_return Status();
              }),
              IsOk());
  EXPECT_EQ(finished.load(), 1000);
}

TEST_P(StreamTest, AServerThatGoesAwayMidStreamEndsItWithTransportUnavailable) {
  start({});
  ReadResult broken;
  EXPECT_THAT(run([&]() -> awaitable<Status> {
                ClientStream stream = channel_->open_stream("/test/Echo");
                Status sent =
                    co_await stream.async_write(Buffer::copy_of("x"), asio::use_awaitable);
                STREAM_EXPECT(sent.ok(), sent.to_string());
                ReadResult echo = co_await stream.async_read(asio::use_awaitable);
                STREAM_EXPECT(echo.message, describe(echo));
                co_return Status();
              }),
              IsOk());
  ClientStream stream;
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                stream = channel_->open_stream("/test/Echo");
                Status sent =
                    co_await stream.async_write(Buffer::copy_of("y"), asio::use_awaitable);
                STREAM_EXPECT(sent.ok(), sent.to_string());
                ReadResult echo = co_await stream.async_read(asio::use_awaitable);
                STREAM_EXPECT(echo.message, describe(echo));
                co_return Status();
              }),
              IsOk());
  server_.reset();  // the process dies: its connections close without trailers
  ASSERT_THAT(run([&]() -> awaitable<Status> {
                broken = co_await stream.async_read(asio::use_awaitable);
                co_return Status();
              }),
              IsOk());
  ASSERT_TRUE(broken.error) << describe(broken);
  EXPECT_EQ(broken.error->kind, StreamError::Kind::kTransport);
  EXPECT_THAT(broken.error->status, StatusIs(StatusCode::kUnavailable));
}

TEST_P(StreamTest, AWriteCompletesOnceItsMessageIsWithinTheFlowControlWindow) {
  // A 64 KiB stream window and a handler that does not read yet. The receiver buffers one
  // unread message (granted as it arrived) plus one window: three 32 KiB writes complete, the
  // fourth waits until the handler reads.
  ServerOptions server_options;
  server_options.connection.limits.initial_stream_window_bytes = 64 * 1024;
  auto read_one_flag = std::make_shared<std::atomic<bool>>(false);
  std::atomic<bool>& read_one = *read_one_flag;
  std::shared_ptr<std::atomic<bool>> go = std::make_shared<std::atomic<bool>>(false);
  start(
      [&](Server& server) {
        server.register_stream_method(
            "/test/Lazy",
            [read_one_flag, go](ServerContext& ctx, ServerStream& stream) -> awaitable<Status> {
              std::atomic<bool>& read_one = *read_one_flag;
              while (!go->load()) {
                auto [ec] = co_await ctx.env().async_wait_for(5ms, use_nothrow_awaitable);
                if (ec) co_return cancelled_error("cancelled");
              }
              ReadResult in = co_await stream.async_read(asio::use_awaitable);
              read_one = in.message.has_value();
              co_return Status();
            });
      },
      server_options);
  EXPECT_THAT(run([&]() -> awaitable<Status> {
                // One round trip first: SETTINGS have crossed both ways, so the server's
                // 64 KiB window holds (until the client acknowledges it, the server allows
                // the 1 MiB default, which the client may have assumed).
                ClientStream warm_up = channel_->open_stream("/test/Echo");
                Status warmed =
                    co_await warm_up.async_write(Buffer::copy_of("hi"), asio::use_awaitable);
                ReadResult echoed = co_await warm_up.async_read(asio::use_awaitable);
                STREAM_EXPECT(warmed.ok() && echoed.message, describe(echoed));
                ClientStream stream = channel_->open_stream("/test/Lazy");
                const Buffer half = Buffer::copy_of(std::string(32 * 1024, 'h'));
                for (int i = 0; i < 3; ++i) {
                  Status sent = co_await stream.async_write(Buffer(half), asio::use_awaitable);
                  STREAM_EXPECT(sent.ok(), sent.to_string());
                }
                // The fourth write is parked: the window is used up until the handler reads.
                std::atomic<bool> third_done{false};
                auto fourth = std::make_shared<Status>();
                stream.async_write(Buffer(half), [&third_done, fourth](Status status) {
                  *fourth = std::move(status);
                  third_done = true;
                });
                co_await client_env().async_wait_for(200ms, use_nothrow_awaitable);
                STREAM_EXPECT(!third_done.load(),
                              "a write beyond the window completed: " + fourth->to_string());
                go->store(true);
                for (int i = 0; i < 500 && !third_done.load(); ++i) {
                  co_await client_env().async_wait_for(10ms, use_nothrow_awaitable);
                }
                STREAM_EXPECT(third_done.load(), "the read did not open the window");
                co_return Status();
              }),
              IsOk());
  EXPECT_TRUE(read_one.load());
}

// The client may send under the default 1 MiB window before the server's SETTINGS (64 KiB)
// arrive, as in HTTP/2; that is not the client's protocol error.
TEST_P(StreamTest, DataSentBeforeTheServersSmallerWindowArrivedIsAccepted) {
  ServerOptions server_options;
  server_options.connection.limits.initial_stream_window_bytes = 64 * 1024;
  start({}, server_options);
  EXPECT_THAT(run([&]() -> awaitable<Status> {
                ClientStream stream = channel_->open_stream("/test/Echo");
                const std::string text(200 * 1024, 'e');  // more than 64 KiB, at once
                Status sent =
                    co_await stream.async_write(Buffer::copy_of(text), asio::use_awaitable);
                STREAM_EXPECT(sent.ok(), sent.to_string());
                ReadResult echo = co_await stream.async_read(asio::use_awaitable);
                STREAM_EXPECT(echo.message && echo.message->size() == text.size(), describe(echo));
                co_return Status();
              }),
              IsOk());
}

INSTANTIATE_TEST_SUITE_P(Backends, StreamTest, ::meshrpc::testing::all_backends(),
                         ::meshrpc::testing::backend_name);

}  // namespace
}  // namespace meshrpc::core
