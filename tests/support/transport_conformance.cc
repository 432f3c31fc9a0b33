#include "tests/support/transport_conformance.h"

#include <gmock/gmock.h>

#include <array>
#include <atomic>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/deferred.hpp>
#include <boost/asio/experimental/awaitable_operators.hpp>
#include <boost/asio/experimental/parallel_group.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/write.hpp>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "meshrpc/base/status_macros.h"
#include "meshrpc/base/status_matchers.h"
#include "meshrpc/transport/errors.h"
#include "tests/support/stream_io.h"

namespace meshrpc::testing {

TransportUnderTest::TransportUnderTest(std::string name,
                                       std::function<std::unique_ptr<TransportHarness>()> make)
    : name(std::move(name)), make(std::move(make)) {}

void PrintTo(const TransportUnderTest& transport, std::ostream* os) { *os << transport.name; }

std::string transport_test_name(const ::testing::TestParamInfo<TransportUnderTest>& info) {
  return info.param.name;
}

void TransportConformance::SetUp() {
  harness_ = GetParam().make();
  ASSERT_NE(harness_, nullptr) << "harness factory for " << GetParam().name;
}

// Test binaries that link the support library without instantiating the suite are fine.
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(TransportConformance);

namespace {

using namespace asio::experimental::awaitable_operators;
using transport::Address;
using transport::ByteStream;
using transport::Connector;
using transport::Listener;
using StreamPtr = std::unique_ptr<ByteStream>;
using Task = TransportHarness::Task;
using TaskList = std::vector<std::pair<runtime::Env*, Task>>;

// "Promptly", without a clock: a cancelled or aborted operation must complete within this
// many turns of its executor. Both transports complete it on the next turn or so; the margin
// only absorbs unrelated handlers queued ahead of it.
constexpr int kPromptTurns = 1000;

// Lets the current executor run `turns` rounds of other handlers, or fewer if `done()`.
awaitable<bool> turn_until(const std::function<bool()>& done, int turns = kPromptTurns) {
  auto executor = co_await asio::this_coro::executor;
  for (int i = 0; i < turns && !done(); ++i) {
    co_await asio::post(executor, asio::use_awaitable);
  }
  co_return done();
}

// A read started with a plain callback, so the test knows it is pending before it cancels
// or closes. The callback shares this state, so a read that never completes cannot touch a
// finished coroutine.
struct PendingRead {
  std::array<uint8_t, 64> buffer;
  std::optional<error_code> result;
};

std::shared_ptr<PendingRead> start_read(ByteStream& stream, asio::cancellation_slot slot) {
  auto read = std::make_shared<PendingRead>();
  stream.async_read_some(
      asio::buffer(read->buffer),
      asio::bind_cancellation_slot(slot, [read](error_code ec, size_t) { read->result = ec; }));
  return read;
}

awaitable<Status> expect_aborted_promptly(std::shared_ptr<PendingRead> read,
                                          std::string_view what) {
  if (!co_await turn_until([&read] { return read->result.has_value(); })) {
    co_return internal_error(std::string(what) + ": still pending after " +
                             std::to_string(kPromptTurns) + " executor turns");
  }
  if (*read->result != asio::error::operation_aborted) {
    co_return unexpected_error(what, "operation_aborted", *read->result);
  }
  co_return Status();
}

// --- server side --------------------------------------------------------------------------

using ServeFn = std::function<awaitable<Status>(StreamPtr)>;

// Shared by the accept loops (one per listener shard, each on its shard's executor) of one
// test: the loop that accepts the last expected connection closes the listener, which ends
// the other loops' pending accepts.
struct AcceptState {
  Listener* listener;
  size_t expected;
  ServeFn serve;
  std::atomic<size_t> accepted{0};
};

// Runs serve(stream) for every stream concurrently on the current executor.
awaitable<Status> serve_all(std::vector<StreamPtr> streams, const ServeFn& serve) {
  if (streams.empty()) co_return Status();
  auto executor = co_await asio::this_coro::executor;
  std::vector<decltype(asio::co_spawn(executor, serve(nullptr), asio::deferred))> ops;
  for (StreamPtr& stream : streams) {
    ops.push_back(asio::co_spawn(executor, serve(std::move(stream)), asio::deferred));
  }
  auto [order, errors, statuses] =
      co_await asio::experimental::make_parallel_group(std::move(ops))
          .async_wait(asio::experimental::wait_for_all(), asio::use_awaitable);
  for (size_t i = 0; i < statuses.size(); ++i) {
    if (errors[i]) co_return internal_error("serve threw");
    if (!statuses[i].ok()) co_return statuses[i];
  }
  co_return Status();
}

// Accepts on `shard` until the listener is closed, then serves what it accepted.
awaitable<Status> accept_then_serve(AcceptState& state, size_t shard) {
  std::vector<StreamPtr> streams;
  for (;;) {
    auto [ec, stream] = co_await state.listener->async_accept(shard, use_nothrow_awaitable);
    if (ec == asio::error::operation_aborted) break;
    if (ec) co_return transport::to_status(ec, "accept on shard " + std::to_string(shard));
    streams.push_back(std::move(stream));
    if (state.accepted.fetch_add(1) + 1 == state.expected) state.listener->close();
  }
  co_return co_await serve_all(std::move(streams), state.serve);
}

awaitable<Status> close_listener(Listener& listener) {
  listener.close();
  co_return Status();
}

// Runs a client; if it fails, closes the listener (from a shard's executor), so the accept
// loops still waiting for its connection end and the run reports the client's failure
// rather than a watchdog timeout.
awaitable<Status> run_client_then_release_server(Task client, Listener& listener) {
  Status status = co_await client();
  if (!status.ok()) {
    Status closed = co_await asio::co_spawn(listener.shard_executor(0), close_listener(listener),
                                            asio::use_awaitable);
    closed.ignore_error();
  }
  co_return status;
}

// Serves `expected` connections on `listener` with `serve` while `clients` run; returns the
// first failure of either side.
Status run_server_and_clients(TransportHarness& harness, Listener& listener, size_t expected,
                              ServeFn serve, std::vector<Task> clients) {
  AcceptState state{&listener, expected, std::move(serve)};
  TaskList tasks;
  for (size_t shard = 0; shard < listener.shard_count(); ++shard) {
    tasks.emplace_back(&harness.server_env(), [&state, shard] {
      return asio::co_spawn(state.listener->shard_executor(shard), accept_then_serve(state, shard),
                            asio::use_awaitable);
    });
  }
  for (Task& client : clients) {
    tasks.emplace_back(&harness.client_env(), [client = std::move(client), &listener] {
      return run_client_then_release_server(client, listener);
    });
  }
  return harness.run(std::move(tasks));
}

Result<std::unique_ptr<Listener>> listen(TransportHarness& harness) {
  return harness.server_network().listen(harness.listen_address());
}

// Serve functions.

awaitable<Status> echo_until_eof(StreamPtr stream) {
  std::array<uint8_t, 16384> buffer;
  for (;;) {
    auto [ec, n] = co_await stream->async_read_some(asio::buffer(buffer), use_nothrow_awaitable);
    if (ec == asio::error::eof) break;
    if (ec) co_return transport::to_status(ec, "echo read");
    auto [write_ec, written] =
        co_await asio::async_write(*stream, asio::buffer(buffer.data(), n), use_nothrow_awaitable);
    if (write_ec) co_return transport::to_status(write_ec, "echo write");
  }
  stream->close();
  co_return Status();
}

awaitable<Status> write_then_close(StreamPtr stream, Bytes payload) {
  MESHRPC_CO_RETURN_IF_ERROR(co_await write_all(*stream, payload));
  stream->close();
  co_return Status();
}

// Aborts once the client has shown it is connected (by sending a byte): a peer that aborts
// before the client's connect completes may make the connect itself fail.
awaitable<Status> abort_when_client_is_ready(StreamPtr stream) {
  Bytes ready(1);
  MESHRPC_CO_RETURN_IF_ERROR(co_await read_exactly(*stream, ready));
  stream->abort();
  co_return Status();
}

awaitable<Result<StreamPtr>> connect_and_say_ready(Connector& network, Address address) {
  MESHRPC_CO_ASSIGN_OR_RETURN(StreamPtr stream, co_await connect_stream(network, address));
  MESHRPC_CO_RETURN_IF_ERROR(co_await write_all(*stream, to_bytes("!")));
  co_return std::move(stream);
}

}  // namespace

// --- listen, connect, echo ----------------------------------------------------------------

namespace {

awaitable<Status> send_and_expect_echo(Connector& network, Address address, Bytes message) {
  MESHRPC_CO_ASSIGN_OR_RETURN(StreamPtr stream, co_await connect_stream(network, address));
  auto [write_ec, written] =
      co_await asio::async_write(*stream, asio::buffer(message), use_nothrow_awaitable);
  if (write_ec) co_return transport::to_status(write_ec, "write");
  Bytes echoed(message.size());
  auto [read_ec, read] =
      co_await asio::async_read(*stream, asio::buffer(echoed), use_nothrow_awaitable);
  if (read_ec) co_return transport::to_status(read_ec, "read echo");
  stream->close();
  co_return check_same(echoed, message, "echo");
}

}  // namespace

TEST_P(TransportConformance, EchoesOneMessage) {
  auto listener = listen(harness());
  ASSERT_THAT(listener, IsOk());
  const Address address = (*listener)->local_address();
  EXPECT_THAT(run_server_and_clients(harness(), **listener, 1, echo_until_eof, {[&] {
                                       return send_and_expect_echo(harness().client_network(),
                                                                   address,
                                                                   to_bytes("hello, meshrpc"));
                                     }}),
              IsOk());
}

// --- partial reads and writes -------------------------------------------------------------

namespace {

// 4 MiB: far more than a socket buffer or a simulated link's window holds, so both sides
// block on each other and every read and write is split.
constexpr size_t kLargeBytes = 4 << 20;

struct TransferCounts {
  IoCounts reads;
  IoCounts writes;
};

// Writes `out` while reading `expected_in.size()` bytes, then checks what arrived.
awaitable<Status> exchange(ByteStream& stream, Bytes out, Bytes expected_in,
                           TransferCounts* counts) {
  Bytes in(expected_in.size());
  auto [write_status, read_status] = co_await (write_all(stream, out, &counts->writes) &&
                                               read_exactly(stream, in, &counts->reads));
  MESHRPC_CO_RETURN_IF_ERROR(write_status);
  MESHRPC_CO_RETURN_IF_ERROR(read_status);
  co_return check_same(in, expected_in, "bytes received");
}

awaitable<Status> exchange_then_close(StreamPtr stream, Bytes out, Bytes expected_in,
                                      TransferCounts* counts) {
  MESHRPC_CO_RETURN_IF_ERROR(
      co_await exchange(*stream, std::move(out), std::move(expected_in), counts));
  stream->close();
  co_return Status();
}

awaitable<Status> connect_and_exchange(Connector& network, Address address, Bytes out,
                                       Bytes expected_in, TransferCounts* counts) {
  MESHRPC_CO_ASSIGN_OR_RETURN(StreamPtr stream, co_await connect_stream(network, address));
  co_return co_await exchange_then_close(std::move(stream), std::move(out), std::move(expected_in),
                                         counts);
}

std::string describe(const IoCounts& counts, std::string_view what) {
  return std::string(what) + " " + std::to_string(counts.bytes) + " bytes in " +
         std::to_string(counts.calls) + " calls (" + std::to_string(counts.short_calls) + " short)";
}

}  // namespace

TEST_P(TransportConformance, LargeTransferBothWaysAtOnceKeepsEveryByte) {
  auto listener = listen(harness());
  ASSERT_THAT(listener, IsOk());
  const Address address = (*listener)->local_address();
  const Bytes to_client = make_payload(kLargeBytes, 1);
  const Bytes to_server = make_payload(kLargeBytes, 2);
  TransferCounts server_counts;
  TransferCounts client_counts;
  ServeFn serve = [&](StreamPtr stream) {
    return exchange_then_close(std::move(stream), to_client, to_server, &server_counts);
  };
  EXPECT_THAT(run_server_and_clients(harness(), **listener, 1, serve, {[&] {
                                       return connect_and_exchange(harness().client_network(),
                                                                   address, to_server, to_client,
                                                                   &client_counts);
                                     }}),
              IsOk());
  EXPECT_EQ(client_counts.reads.bytes, kLargeBytes);
  EXPECT_EQ(server_counts.reads.bytes, kLargeBytes);
  // How the transport split the transfer: informational, since neither count is promised.
  std::cout << "[ partial  ] " << GetParam().name << ": "
            << describe(client_counts.reads, "client read") << "; "
            << describe(client_counts.writes, "client wrote") << "; "
            << describe(server_counts.reads, "server read") << "\n";
  RecordProperty("client_read_some_calls", std::to_string(client_counts.reads.calls));
  RecordProperty("client_write_some_calls", std::to_string(client_counts.writes.calls));
}

namespace {

awaitable<Result<Bytes>> read_byte_by_byte(ByteStream& stream, size_t count) {
  Bytes data;
  for (size_t i = 0; i < count; ++i) {
    uint8_t byte = 0;
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(&byte, 1), use_nothrow_awaitable);
    if (ec) co_return transport::to_status(ec, "1-byte read");
    if (n != 1) co_return internal_error("1-byte read returned " + std::to_string(n) + " bytes");
    data.push_back(byte);
  }
  co_return data;
}

// Reads the request one byte at a time, echoes it, then echoes the rest until eof.
awaitable<Status> echo_read_byte_by_byte(StreamPtr stream, Bytes expected) {
  MESHRPC_CO_ASSIGN_OR_RETURN(Bytes request, co_await read_byte_by_byte(*stream, expected.size()));
  MESHRPC_CO_RETURN_IF_ERROR(check_same(request, expected, "server's 1-byte reads"));
  MESHRPC_CO_RETURN_IF_ERROR(co_await write_all(*stream, request));
  co_return co_await echo_until_eof(std::move(stream));
}

awaitable<Status> send_and_read_echo_byte_by_byte(Connector& network, Address address,
                                                  Bytes message) {
  MESHRPC_CO_ASSIGN_OR_RETURN(StreamPtr stream, co_await connect_stream(network, address));
  MESHRPC_CO_RETURN_IF_ERROR(co_await write_all(*stream, message));
  MESHRPC_CO_ASSIGN_OR_RETURN(Bytes echoed, co_await read_byte_by_byte(*stream, message.size()));
  stream->close();
  co_return check_same(echoed, message, "client's 1-byte reads");
}

}  // namespace

TEST_P(TransportConformance, ReadsIntoOneByteBuffers) {
  auto listener = listen(harness());
  ASSERT_THAT(listener, IsOk());
  const Address address = (*listener)->local_address();
  const Bytes message = to_bytes("one byte at a time");
  ServeFn serve = [&](StreamPtr stream) {
    return echo_read_byte_by_byte(std::move(stream), message);
  };
  EXPECT_THAT(run_server_and_clients(harness(), **listener, 1, serve, {[&] {
                                       return send_and_read_echo_byte_by_byte(
                                           harness().client_network(), address, message);
                                     }}),
              IsOk());
}

namespace {

constexpr std::string_view kShortMessage = "12345";

// Writes a short message and keeps the stream open until the client is done with it.
awaitable<Status> write_short_then_wait_for_eof(StreamPtr stream) {
  MESHRPC_CO_RETURN_IF_ERROR(co_await write_all(*stream, to_bytes(kShortMessage)));
  MESHRPC_CO_ASSIGN_OR_RETURN(Bytes rest, co_await read_to_eof(*stream));
  stream->close();
  co_return Status();
}

awaitable<Status> read_short_message_with_large_buffer(Connector& network, Address address) {
  MESHRPC_CO_ASSIGN_OR_RETURN(StreamPtr stream, co_await connect_stream(network, address));
  Bytes buffer(64 * 1024);
  // Completes with what has arrived: had it waited to fill 64 KiB, this would hang.
  auto [ec, n] = co_await stream->async_read_some(asio::buffer(buffer), use_nothrow_awaitable);
  if (ec) co_return transport::to_status(ec, "read");
  if (n == 0 || n > kShortMessage.size()) {
    co_return internal_error("read_some returned " + std::to_string(n) + " bytes");
  }
  buffer.resize(kShortMessage.size());
  MESHRPC_CO_RETURN_IF_ERROR(co_await read_exactly(*stream, std::span(buffer).subspan(n)));
  stream->close();
  co_return check_same(buffer, to_bytes(kShortMessage), "short message");
}

}  // namespace

TEST_P(TransportConformance, ReadCompletesWithWhatArrivedWithoutFillingTheBuffer) {
  auto listener = listen(harness());
  ASSERT_THAT(listener, IsOk());
  const Address address = (*listener)->local_address();
  EXPECT_THAT(run_server_and_clients(harness(), **listener, 1, write_short_then_wait_for_eof, {[&] {
                                       return read_short_message_with_large_buffer(
                                           harness().client_network(), address);
                                     }}),
              IsOk());
}

namespace {

awaitable<Status> check_empty_read_completes(Connector& network, Address address) {
  MESHRPC_CO_ASSIGN_OR_RETURN(StreamPtr stream, co_await connect_stream(network, address));
  // Nothing is ever sent to the client: an empty read that waited for data would hang.
  auto [ec, n] = co_await stream->async_read_some(asio::mutable_buffer(), use_nothrow_awaitable);
  if (ec) co_return transport::to_status(ec, "empty read");
  if (n != 0) co_return internal_error("empty read returned " + std::to_string(n) + " bytes");
  stream->close();
  co_return Status();
}

}  // namespace

TEST_P(TransportConformance, EmptyReadCompletesAtOnce) {
  auto listener = listen(harness());
  ASSERT_THAT(listener, IsOk());
  const Address address = (*listener)->local_address();
  EXPECT_THAT(run_server_and_clients(harness(), **listener, 1, echo_until_eof, {[&] {
                                       return check_empty_read_completes(harness().client_network(),
                                                                         address);
                                     }}),
              IsOk());
}

namespace {

// Reads "alpha-omega" into two buffers split mid-word, then replies "ok".
awaitable<Status> read_scattered(StreamPtr stream) {
  std::array<char, 4> head{};
  std::array<char, 7> tail{};
  std::array<asio::mutable_buffer, 2> buffers{asio::buffer(head), asio::buffer(tail)};
  auto [ec, n] = co_await asio::async_read(*stream, buffers, use_nothrow_awaitable);
  if (ec) co_return transport::to_status(ec, "scattered read");
  const std::string got =
      std::string(head.data(), head.size()) + "|" + std::string(tail.data(), tail.size());
  if (got != "alph|a-omega") co_return internal_error("scattered read got '" + got + "'");
  MESHRPC_CO_RETURN_IF_ERROR(co_await write_all(*stream, to_bytes("ok")));
  stream->close();
  co_return Status();
}

awaitable<Status> write_gathered(Connector& network, Address address) {
  MESHRPC_CO_ASSIGN_OR_RETURN(StreamPtr stream, co_await connect_stream(network, address));
  std::array<asio::const_buffer, 3> buffers{asio::buffer("alpha", 5), asio::buffer("-", 1),
                                            asio::buffer("omega", 5)};
  auto [ec, n] = co_await asio::async_write(*stream, buffers, use_nothrow_awaitable);
  if (ec) co_return transport::to_status(ec, "gathered write");
  MESHRPC_CO_ASSIGN_OR_RETURN(Bytes reply, co_await read_to_eof(*stream));
  stream->close();
  co_return check_same(reply, to_bytes("ok"), "reply");
}

}  // namespace

TEST_P(TransportConformance, GatheredWriteAndScatteredReadKeepByteOrder) {
  auto listener = listen(harness());
  ASSERT_THAT(listener, IsOk());
  const Address address = (*listener)->local_address();
  EXPECT_THAT(run_server_and_clients(harness(), **listener, 1, read_scattered, {[&] {
                                       return write_gathered(harness().client_network(), address);
                                     }}),
              IsOk());
}

// --- closing ------------------------------------------------------------------------------

namespace {

awaitable<Status> read_all_then_expect_eof_again(Connector& network, Address address,
                                                 Bytes expected) {
  MESHRPC_CO_ASSIGN_OR_RETURN(StreamPtr stream, co_await connect_stream(network, address));
  MESHRPC_CO_ASSIGN_OR_RETURN(Bytes data, co_await read_to_eof(*stream));
  MESHRPC_CO_RETURN_IF_ERROR(check_same(data, expected, "data before eof"));
  co_return co_await expect_read_error(*stream, asio::error::eof, "read after eof");
}

}  // namespace

TEST_P(TransportConformance, PeerCloseDeliversAllDataThenEof) {
  auto listener = listen(harness());
  ASSERT_THAT(listener, IsOk());
  const Address address = (*listener)->local_address();
  const Bytes payload = make_payload(256 * 1024, 3);
  ServeFn serve = [&](StreamPtr stream) { return write_then_close(std::move(stream), payload); };
  EXPECT_THAT(run_server_and_clients(harness(), **listener, 1, serve, {[&] {
                                       return read_all_then_expect_eof_again(
                                           harness().client_network(), address, payload);
                                     }}),
              IsOk());
}

namespace {

awaitable<Status> reply_after_eof(StreamPtr stream) {
  MESHRPC_CO_ASSIGN_OR_RETURN(Bytes request, co_await read_to_eof(*stream));
  MESHRPC_CO_RETURN_IF_ERROR(check_same(request, to_bytes("request"), "request"));
  // The client only shut down its sending side: this direction still works.
  MESHRPC_CO_RETURN_IF_ERROR(co_await write_all(*stream, to_bytes("reply")));
  stream->close();
  co_return Status();
}

awaitable<Status> request_then_half_close(Connector& network, Address address) {
  MESHRPC_CO_ASSIGN_OR_RETURN(StreamPtr stream, co_await connect_stream(network, address));
  MESHRPC_CO_RETURN_IF_ERROR(co_await write_all(*stream, to_bytes("request")));
  stream->shutdown_send();
  MESHRPC_CO_ASSIGN_OR_RETURN(Bytes reply, co_await read_to_eof(*stream));
  stream->close();
  co_return check_same(reply, to_bytes("reply"), "reply");
}

}  // namespace

TEST_P(TransportConformance, ShutdownSendGivesPeerEofAndPeerCanStillReply) {
  auto listener = listen(harness());
  ASSERT_THAT(listener, IsOk());
  const Address address = (*listener)->local_address();
  EXPECT_THAT(run_server_and_clients(
                  harness(), **listener, 1, reply_after_eof,
                  {[&] { return request_then_half_close(harness().client_network(), address); }}),
              IsOk());
}

namespace {

awaitable<Status> expect_reset_on_read(Connector& network, Address address) {
  MESHRPC_CO_ASSIGN_OR_RETURN(StreamPtr stream, co_await connect_and_say_ready(network, address));
  // eof would be wrong: an abort must not look like a graceful close.
  co_return co_await expect_read_error(*stream, asio::error::connection_reset,
                                       "read after peer abort");
}

// Writes until a write fails; the peer has aborted, so one must, and soon: once the
// transport knows of the reset, at the latest when its buffers are full.
awaitable<Status> expect_write_to_fail(Connector& network, Address address) {
  MESHRPC_CO_ASSIGN_OR_RETURN(StreamPtr stream, co_await connect_and_say_ready(network, address));
  constexpr int kMaxWrites = 1024;  // 64 MiB: far beyond any socket or link buffer
  const Bytes chunk = make_payload(64 * 1024, 4);
  for (int i = 0; i < kMaxWrites; ++i) {
    auto [ec, n] = co_await asio::async_write(*stream, asio::buffer(chunk), use_nothrow_awaitable);
    if (!ec) continue;
    if (ec != asio::error::broken_pipe && ec != asio::error::connection_reset) {
      co_return unexpected_error("write after peer abort", "broken_pipe or connection_reset", ec);
    }
    // The failure lasts: the next write fails too instead of waiting for buffer space.
    auto [again_ec, again_n] =
        co_await asio::async_write(*stream, asio::buffer(chunk), use_nothrow_awaitable);
    if (!again_ec) co_return internal_error("write succeeded after a failed write");
    co_return Status();
  }
  co_return internal_error("64 MiB written to an aborted peer without an error");
}

}  // namespace

TEST_P(TransportConformance, PeerAbortFailsReadWithConnectionReset) {
  auto listener = listen(harness());
  ASSERT_THAT(listener, IsOk());
  const Address address = (*listener)->local_address();
  EXPECT_THAT(run_server_and_clients(
                  harness(), **listener, 1, abort_when_client_is_ready,
                  {[&] { return expect_reset_on_read(harness().client_network(), address); }}),
              IsOk());
}

TEST_P(TransportConformance, WriteAfterPeerAbortFailsInsteadOfHanging) {
  auto listener = listen(harness());
  ASSERT_THAT(listener, IsOk());
  const Address address = (*listener)->local_address();
  EXPECT_THAT(run_server_and_clients(
                  harness(), **listener, 1, abort_when_client_is_ready,
                  {[&] { return expect_write_to_fail(harness().client_network(), address); }}),
              IsOk());
}

namespace {

awaitable<Status> expect_pending_read_aborted_by_close(Connector& network, Address address) {
  MESHRPC_CO_ASSIGN_OR_RETURN(StreamPtr stream, co_await connect_stream(network, address));
  auto read = start_read(*stream, asio::cancellation_slot());
  stream->close();
  co_return co_await expect_aborted_promptly(read, "pending read after own close()");
}

awaitable<Status> expect_eof_then_close(StreamPtr stream) {
  MESHRPC_CO_ASSIGN_OR_RETURN(Bytes data, co_await read_to_eof(*stream));
  stream->close();
  co_return check_same(data, {}, "data from a client that sent nothing");
}

}  // namespace

TEST_P(TransportConformance, OwnCloseEndsPendingReadWithOperationAborted) {
  auto listener = listen(harness());
  ASSERT_THAT(listener, IsOk());
  const Address address = (*listener)->local_address();
  EXPECT_THAT(run_server_and_clients(harness(), **listener, 1, expect_eof_then_close, {[&] {
                                       return expect_pending_read_aborted_by_close(
                                           harness().client_network(), address);
                                     }}),
              IsOk());
}

// --- connecting ---------------------------------------------------------------------------

namespace {

awaitable<Status> expect_connect_refused(Connector& network, Address address) {
  auto executor = co_await asio::this_coro::executor;
  auto [ec, stream] = co_await network.async_connect(address, executor, use_nothrow_awaitable);
  if (ec != asio::error::connection_refused) {
    co_return unexpected_error("connect " + address.to_string(), "connection_refused", ec);
  }
  co_return Status();
}

}  // namespace

TEST_P(TransportConformance, ConnectToUnusedAddressIsRefused) {
  const Address unused = harness().unused_address();
  EXPECT_THAT(harness().run_client(
                  [&] { return expect_connect_refused(harness().client_network(), unused); }),
              IsOk());
}

// --- cancellation -------------------------------------------------------------------------

namespace {

awaitable<Status> cancel_read_then_use_stream(Connector& network, Address address) {
  asio::cancellation_signal cancel;  // declared first: outlives the stream's operations
  MESHRPC_CO_ASSIGN_OR_RETURN(StreamPtr stream, co_await connect_stream(network, address));
  auto read = start_read(*stream, cancel.slot());
  cancel.emit(asio::cancellation_type::terminal);
  MESHRPC_CO_RETURN_IF_ERROR(co_await expect_aborted_promptly(read, "cancelled read"));
  // Cancelling one read leaves the stream usable.
  MESHRPC_CO_RETURN_IF_ERROR(co_await write_all(*stream, to_bytes("ping")));
  Bytes echoed(4);
  MESHRPC_CO_RETURN_IF_ERROR(co_await read_exactly(*stream, echoed));
  stream->close();
  co_return check_same(echoed, to_bytes("ping"), "echo after cancel");
}

}  // namespace

TEST_P(TransportConformance, CancelledReadEndsPromptlyAndStreamStaysUsable) {
  auto listener = listen(harness());
  ASSERT_THAT(listener, IsOk());
  const Address address = (*listener)->local_address();
  EXPECT_THAT(run_server_and_clients(harness(), **listener, 1, echo_until_eof, {[&] {
                                       return cancel_read_then_use_stream(
                                           harness().client_network(), address);
                                     }}),
              IsOk());
}

namespace {

struct PendingAccept {
  std::optional<error_code> result;
};

std::shared_ptr<PendingAccept> start_accept(Listener& listener, size_t shard,
                                            asio::cancellation_slot slot) {
  auto accept = std::make_shared<PendingAccept>();
  listener.async_accept(shard,
                        asio::bind_cancellation_slot(
                            slot, [accept](error_code ec, StreamPtr) { accept->result = ec; }));
  return accept;
}

awaitable<Status> expect_accept_aborted_promptly(std::shared_ptr<PendingAccept> accept,
                                                 std::string_view what) {
  if (!co_await turn_until([&accept] { return accept->result.has_value(); })) {
    co_return internal_error(std::string(what) + ": still pending after " +
                             std::to_string(kPromptTurns) + " executor turns");
  }
  if (*accept->result != asio::error::operation_aborted) {
    co_return unexpected_error(what, "operation_aborted", *accept->result);
  }
  co_return Status();
}

// On the shard's executor.
awaitable<Status> cancel_accept(Listener& listener, size_t shard) {
  asio::cancellation_signal cancel;
  auto accept = start_accept(listener, shard, cancel.slot());
  cancel.emit(asio::cancellation_type::terminal);
  co_return co_await expect_accept_aborted_promptly(accept, "cancelled accept");
}

// On the shard's executor. Every shard closes the listener (close() is idempotent and safe
// from any of them), so the close reaches some shards from another thread.
awaitable<Status> close_listener_under_pending_accept(Listener& listener, size_t shard) {
  auto accept = start_accept(listener, shard, asio::cancellation_slot());
  listener.close();
  co_return co_await expect_accept_aborted_promptly(accept, "accept pending at close()");
}

TaskList on_every_shard(TransportHarness& harness, Listener& listener,
                        awaitable<Status> (*body)(Listener&, size_t)) {
  TaskList tasks;
  for (size_t shard = 0; shard < listener.shard_count(); ++shard) {
    tasks.emplace_back(&harness.server_env(), [&listener, shard, body] {
      return asio::co_spawn(listener.shard_executor(shard), body(listener, shard),
                            asio::use_awaitable);
    });
  }
  return tasks;
}

}  // namespace

TEST_P(TransportConformance, CancelledAcceptEndsPromptlyWithOperationAborted) {
  auto listener = listen(harness());
  ASSERT_THAT(listener, IsOk());
  EXPECT_THAT(harness().run(on_every_shard(harness(), **listener, cancel_accept)), IsOk());
}

TEST_P(TransportConformance, ClosingListenerEndsPendingAcceptsAndRefusesConnections) {
  auto listener = listen(harness());
  ASSERT_THAT(listener, IsOk());
  const Address address = (*listener)->local_address();
  EXPECT_THAT(
      harness().run(on_every_shard(harness(), **listener, close_listener_under_pending_accept)),
      IsOk());
  EXPECT_THAT(harness().run_client(
                  [&] { return expect_connect_refused(harness().client_network(), address); }),
              IsOk());
}

// --- many connections, addresses --------------------------------------------------------

namespace {

// Enough to show connections do not interfere and that every shard takes its share, few
// enough to stay far below file descriptor limits and listen backlogs.
constexpr size_t kConcurrentConnections = 100;

awaitable<Status> echo_own_payload(Connector& network, Address address, uint64_t seed) {
  MESHRPC_CO_ASSIGN_OR_RETURN(StreamPtr stream, co_await connect_stream(network, address));
  const Bytes payload = make_payload(8 * 1024 + seed, seed);
  MESHRPC_CO_RETURN_IF_ERROR(co_await write_all(*stream, payload));
  stream->shutdown_send();
  MESHRPC_CO_ASSIGN_OR_RETURN(Bytes echoed, co_await read_to_eof(*stream));
  stream->close();
  co_return check_same(echoed, payload, "echo on connection " + std::to_string(seed));
}

}  // namespace

TEST_P(TransportConformance, ConcurrentConnectionsEachGetTheirOwnDataBack) {
  auto listener = listen(harness());
  ASSERT_THAT(listener, IsOk());
  const Address address = (*listener)->local_address();
  std::vector<Task> clients;
  for (uint64_t i = 0; i < kConcurrentConnections; ++i) {
    clients.push_back(
        [this, address, i] { return echo_own_payload(harness().client_network(), address, i); });
  }
  EXPECT_THAT(run_server_and_clients(harness(), **listener, kConcurrentConnections, echo_until_eof,
                                     std::move(clients)),
              IsOk());
}

namespace {

struct Ends {
  Address local;
  Address remote;
};

awaitable<Status> record_then_wait_for_eof(StreamPtr stream, Ends* ends) {
  *ends = {stream->local_address(), stream->remote_address()};
  co_return co_await expect_eof_then_close(std::move(stream));
}

awaitable<Status> connect_and_record(Connector& network, Address address, Ends* ends) {
  MESHRPC_CO_ASSIGN_OR_RETURN(StreamPtr stream, co_await connect_stream(network, address));
  *ends = {stream->local_address(), stream->remote_address()};
  stream->close();
  co_return Status();
}

}  // namespace

TEST_P(TransportConformance, AddressesMatchAcrossTheTwoEnds) {
  auto listener = listen(harness());
  ASSERT_THAT(listener, IsOk());
  const Address address = (*listener)->local_address();
  if (harness().listen_address().port == 0) {
    EXPECT_NE(address.port, 0) << "a listener on port 0 reports the port it got";
  }
  Ends server;
  Ends client;
  ServeFn serve = [&](StreamPtr stream) {
    return record_then_wait_for_eof(std::move(stream), &server);
  };
  ASSERT_THAT(run_server_and_clients(harness(), **listener, 1, serve, {[&] {
                                       return connect_and_record(harness().client_network(),
                                                                 address, &client);
                                     }}),
              IsOk());
  EXPECT_EQ(client.remote, address);
  EXPECT_EQ(server.local, client.remote);
  EXPECT_EQ(server.remote, client.local);
  EXPECT_NE(client.local.port, 0);
}

}  // namespace meshrpc::testing
