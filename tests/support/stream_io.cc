#include "tests/support/stream_io.h"

#include <boost/asio/buffer.hpp>
#include <boost/asio/this_coro.hpp>
#include <string>
#include <utility>

#include "meshrpc/transport/errors.h"

namespace meshrpc::testing {
namespace {

uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

}  // namespace

// Deterministic pseudo-random bytes, distinct per seed.
Bytes make_payload(size_t size, uint64_t seed) {
  Bytes bytes(size);
  uint64_t state = seed;
  uint64_t word = 0;
  for (size_t i = 0; i < size; ++i) {
    if (i % 8 == 0) word = splitmix64(state);
    bytes[i] = static_cast<uint8_t>(word >> (8 * (i % 8)));
  }
  return bytes;
}

Bytes to_bytes(std::string_view text) { return Bytes(text.begin(), text.end()); }

Status unexpected_error(std::string_view what, std::string_view expected, const error_code& ec) {
  return internal_error(std::string(what) + ": expected " + std::string(expected) + ", got '" +
                        ec.message() + "' (" + std::to_string(ec.value()) + ")");
}

Status check_same(const Bytes& got, const Bytes& want, std::string_view what) {
  if (got == want) return Status();
  size_t first = 0;
  while (first < got.size() && first < want.size() && got[first] == want[first]) ++first;
  return internal_error(std::string(what) + ": got " + std::to_string(got.size()) +
                        " bytes, want " + std::to_string(want.size()) +
                        "; first difference at byte " + std::to_string(first));
}

awaitable<Result<std::unique_ptr<transport::ByteStream>>> connect_stream(
    transport::Connector& network, transport::Address address) {
  auto executor = co_await asio::this_coro::executor;
  auto [ec, stream] = co_await network.async_connect(address, executor, use_nothrow_awaitable);
  if (ec) co_return transport::to_status(ec, "connect " + address.to_string());
  if (!stream) co_return internal_error("connect succeeded without a stream");
  co_return std::move(stream);
}

// write_some until all of `data` is written; checks each call moved 1..asked bytes.
awaitable<Status> write_all(transport::ByteStream& stream, std::span<const uint8_t> data,
                            IoCounts* counts) {
  IoCounts local;
  if (counts == nullptr) counts = &local;
  while (counts->bytes < data.size()) {
    const size_t asked = data.size() - counts->bytes;
    auto [ec, n] = co_await stream.async_write_some(
        asio::buffer(data.data() + counts->bytes, asked), use_nothrow_awaitable);
    if (ec) co_return transport::to_status(ec, "write");
    if (n == 0 || n > asked) {
      co_return internal_error("write_some wrote " + std::to_string(n) + " of " +
                               std::to_string(asked) + " bytes");
    }
    counts->calls++;
    counts->bytes += n;
    if (n < asked) counts->short_calls++;
  }
  co_return Status();
}

// read_some until `out` is full; checks each call returned 1..asked bytes.
awaitable<Status> read_exactly(transport::ByteStream& stream, std::span<uint8_t> out,
                               IoCounts* counts) {
  IoCounts local;
  if (counts == nullptr) counts = &local;
  while (counts->bytes < out.size()) {
    const size_t asked = out.size() - counts->bytes;
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(out.data() + counts->bytes, asked),
                                                   use_nothrow_awaitable);
    if (ec) co_return transport::to_status(ec, "read");
    if (n == 0 || n > asked) {
      co_return internal_error("read_some returned " + std::to_string(n) + " of " +
                               std::to_string(asked) + " bytes asked");
    }
    counts->calls++;
    counts->bytes += n;
    if (n < asked) counts->short_calls++;
  }
  co_return Status();
}

awaitable<Result<Bytes>> read_to_eof(transport::ByteStream& stream) {
  Bytes data;
  std::array<uint8_t, 16384> buffer;
  for (;;) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(buffer), use_nothrow_awaitable);
    if (ec == asio::error::eof) co_return data;
    if (ec) co_return transport::to_status(ec, "read to eof");
    data.insert(data.end(), buffer.begin(), buffer.begin() + n);
  }
}

awaitable<Status> expect_read_error(transport::ByteStream& stream, error_code expected,
                                    std::string_view what) {
  std::array<uint8_t, 64> buffer;
  auto [ec, n] = co_await stream.async_read_some(asio::buffer(buffer), use_nothrow_awaitable);
  if (ec != expected) co_return unexpected_error(what, expected.message(), ec);
  co_return Status();
}

awaitable<std::pair<std::string, error_code>> read_to_end(transport::ByteStream& stream) {
  std::string received;
  char chunk[1024];
  for (;;) {
    auto [ec, n] = co_await stream.async_read_some(asio::buffer(chunk), use_nothrow_awaitable);
    if (ec) co_return std::pair(received, ec);
    received.append(chunk, n);
  }
}

}  // namespace meshrpc::testing
