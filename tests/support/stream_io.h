// Coroutines that move whole messages through a ByteStream and check every step on the way
// (each read_some and write_some moved 1..asked bytes), plus the payloads and comparisons
// stream tests need. Errors come back as Status values naming what failed.
//
// Threading: each coroutine runs on the executor of the stream it is given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"
#include "meshrpc/runtime/asio.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/byte_stream.h"
#include "meshrpc/transport/connector.h"

namespace meshrpc::testing {

using Bytes = std::vector<uint8_t>;

// How one side's reads or writes were split, to show partial transfers.
struct IoCounts {
  size_t calls = 0;
  size_t bytes = 0;
  // Calls that moved fewer bytes than asked.
  size_t short_calls = 0;
};

// Deterministic pseudo-random bytes (splitmix64), distinct per seed.
Bytes make_payload(size_t size, uint64_t seed);
Bytes to_bytes(std::string_view text);

// INTERNAL "<what>: expected <expected>, got '<message>' (<value>)".
Status unexpected_error(std::string_view what, std::string_view expected, const error_code& ec);
// OK if equal, else INTERNAL naming both sizes and the first differing byte.
Status check_same(const Bytes& got, const Bytes& want, std::string_view what);

// Connects to `address` with the stream on the calling coroutine's executor.
awaitable<Result<std::unique_ptr<transport::ByteStream>>> connect_stream(
    transport::Connector& network, transport::Address address);

// write_some until all of `data` is written; `counts` (optional) records the calls.
awaitable<Status> write_all(transport::ByteStream& stream, std::span<const uint8_t> data,
                            IoCounts* counts = nullptr);
// read_some until `out` is full; `counts` (optional) records the calls.
awaitable<Status> read_exactly(transport::ByteStream& stream, std::span<uint8_t> out,
                               IoCounts* counts = nullptr);
// Everything until eof; any other error fails.
awaitable<Result<Bytes>> read_to_eof(transport::ByteStream& stream);
// One read_some, which must fail with `expected`.
awaitable<Status> expect_read_error(transport::ByteStream& stream, error_code expected,
                                    std::string_view what);

// Reads until the peer ends the stream; returns what arrived and how it ended.
awaitable<std::pair<std::string, error_code>> read_to_end(transport::ByteStream& stream);

}  // namespace meshrpc::testing
