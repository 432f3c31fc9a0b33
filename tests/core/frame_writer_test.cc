#include "meshrpc/core/frame_writer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <string>

#include "meshrpc/base/status_matchers.h"
#include "meshrpc/runtime/sim_env.h"
#include "meshrpc/transport/sim_network.h"

namespace meshrpc::core {
namespace {

using ::meshrpc::testing::IsOk;
using ::meshrpc::testing::StatusIs;
using ::testing::HasSubstr;

// A connected pair of simulated streams, and a reader that collects what arrives.
class FrameWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto listener = net_.host("server").listen({"server", 1});
    ASSERT_TRUE(listener.ok());
    listener_ = std::move(*listener);
    asio::co_spawn(sim_.pick_executor(), connect(), asio::detached);
    sim_.run_until([this] { return client_ && server_; }, std::chrono::seconds(1));
    ASSERT_TRUE(client_ && server_);
    asio::co_spawn(server_->get_executor(), read_all(), asio::detached);
  }

  awaitable<void> connect() {
    auto ex = co_await asio::this_coro::executor;
    const transport::Address target{"server", 1};
    auto [ec, stream] =
        co_await net_.host("client").async_connect(target, ex, use_nothrow_awaitable);
    client_ = std::move(stream);
    auto [aec, accepted] = co_await listener_->async_accept(0, use_nothrow_awaitable);
    server_ = std::move(accepted);
  }

  awaitable<void> read_all() {
    char data[4096];
    while (true) {
      auto [ec, n] = co_await server_->async_read_some(asio::buffer(data), use_nothrow_awaitable);
      if (ec) co_return;
      received_.append(data, n);
    }
  }

  runtime::SimEnv sim_{3};
  transport::SimNetwork net_{sim_};
  std::unique_ptr<transport::Listener> listener_;
  std::shared_ptr<transport::ByteStream> client_;
  std::unique_ptr<transport::ByteStream> server_;
  std::string received_;
};

TEST_F(FrameWriterTest, FramesOfOneTurnLeaveInOneWrite) {
  auto writer = FrameWriter::create(client_, {}, nullptr);
  std::string expected;
  asio::post(sim_.pick_executor(), [&] {
    for (int i = 0; i < 1000; ++i) {
      const std::string frame = "frame " + std::to_string(i) + ";";
      writer->pending().append_copy(frame);
      writer->flush_soon();
      expected += frame;
    }
  });
  sim_.run();
  EXPECT_EQ(received_, expected);
  EXPECT_EQ(writer->writes(), 1u);
  EXPECT_EQ(writer->bytes_written(), expected.size());
  EXPECT_TRUE(writer->idle());
}

TEST_F(FrameWriterTest, FramesQueuedDuringAWriteLeaveTogetherInTheNext) {
  // An 8-byte link buffer holds the first write in flight until the reader drains it.
  transport::LinkConfig narrow;
  narrow.buffer_bytes = 8;
  net_.set_link("client", "server", narrow);
  auto writer = FrameWriter::create(client_, {}, nullptr);
  const std::string first(64, 'f');
  std::string expected = first;
  asio::post(sim_.pick_executor(),
             [&] { ASSERT_THAT(writer->enqueue(Buffer::copy_of(first)), IsOk()); });
  sim_.poll();
  ASSERT_FALSE(writer->idle());  // the first write is in flight
  for (int i = 0; i < 3; ++i) {
    asio::post(sim_.pick_executor(), [&, i] {
      const std::string frame = "later " + std::to_string(i) + ";";
      ASSERT_THAT(writer->enqueue(Buffer::copy_of(frame)), IsOk());
      expected += frame;
    });
    sim_.poll();
  }
  sim_.run();
  EXPECT_EQ(received_, expected);
  EXPECT_EQ(writer->writes(), 2u);
}

// Appends `count` frames of `frame_bytes`, one per executor turn, the way a stream writer
// does (its write completes, it resumes, it writes again); `announce` calls expect_more().
void write_one_frame_per_turn(const std::shared_ptr<FrameWriter>& writer,
                              const asio::any_io_executor& executor, int count, size_t frame_bytes,
                              bool announce, std::string& expected) {
  if (count == 0) return;
  const std::string frame(frame_bytes, static_cast<char>('a' + count % 26));
  writer->pending().append_copy(frame);
  if (announce) writer->expect_more();
  writer->flush_soon();
  expected += frame;
  asio::post(executor, [=, &expected] {
    write_one_frame_per_turn(writer, executor, count - 1, frame_bytes, announce, expected);
  });
}

TEST_F(FrameWriterTest, AnnouncedOneFramePerTurnOutputFillsCorkedWrites) {
  auto writer = FrameWriter::create(client_, {}, nullptr);
  std::string expected;
  const auto executor = client_->get_executor();
  asio::post(executor,
             [&] { write_one_frame_per_turn(writer, executor, 4000, 80, true, expected); });
  sim_.run();
  EXPECT_EQ(received_, expected);
  // 320,000 bytes in writes of kCorkBytes: 5 writes, not one per frame.
  EXPECT_LE(writer->writes(), expected.size() / FrameWriter::kCorkBytes + 2);
  EXPECT_TRUE(writer->idle());
}

TEST_F(FrameWriterTest, UnannouncedOneFramePerTurnOutputIsNotHeldBack) {
  auto writer = FrameWriter::create(client_, {}, nullptr);
  std::string expected;
  const auto executor = client_->get_executor();
  asio::post(executor,
             [&] { write_one_frame_per_turn(writer, executor, 100, 80, false, expected); });
  sim_.run();
  EXPECT_EQ(received_, expected);
  // Each flush goes at the end of its turn (frames arriving during a write join the next).
  EXPECT_GE(writer->writes(), 10u);
}

TEST_F(FrameWriterTest, CorkingStepsAsideABoundedNumberOfTurns) {
  auto writer = FrameWriter::create(client_, {}, nullptr);
  std::string expected;
  const auto executor = client_->get_executor();
  // One-byte frames never reach kCorkBytes: only the turn bound flushes them.
  const int frames = 3 * static_cast<int>(FrameWriter::kMaxFlushDeferrals);
  asio::post(executor,
             [&] { write_one_frame_per_turn(writer, executor, frames, 1, true, expected); });
  sim_.run();
  EXPECT_EQ(received_, expected);
  EXPECT_GE(writer->writes(), 3u);
  EXPECT_LE(writer->writes(), 5u);
}

TEST_F(FrameWriterTest, QueueBeyondItsBoundIsRefusedNamingTheLimit) {
  auto writer = FrameWriter::create(client_, {.max_queued_bytes = 10}, nullptr);
  EXPECT_THAT(writer->enqueue(Buffer::copy_of("12345678")), IsOk());
  EXPECT_THAT(writer->enqueue(Buffer::copy_of("123")),
              StatusIs(StatusCode::kResourceExhausted, HasSubstr("max_queued_bytes 10")));
  sim_.run();
  EXPECT_EQ(received_, "12345678");
}

TEST_F(FrameWriterTest, AFailedWriteStopsTheWriterAndReportsOnce) {
  int errors = 0;
  Status reported;
  auto writer = FrameWriter::create(client_, {}, [&](const Status& status) {
    ++errors;
    reported = status;
  });
  server_->abort();
  sim_.run();
  // The reset has arrived; the next writes fail.
  for (int i = 0; i < 3; ++i) {
    asio::post(sim_.pick_executor(), [&] { writer->enqueue(Buffer::copy_of("x")).ignore_error(); });
    sim_.run();
  }
  EXPECT_EQ(errors, 1);
  EXPECT_THAT(reported, StatusIs(StatusCode::kUnavailable, HasSubstr("connection write")));
  EXPECT_THAT(writer->enqueue(Buffer::copy_of("y")), StatusIs(StatusCode::kUnavailable));
}

}  // namespace
}  // namespace meshrpc::core
