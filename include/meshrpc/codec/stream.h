// Typed streams: core streams (core/stream.h) whose messages are protobuf messages or plain
// structs, encoded and decoded by the codec.
//
//   // client: a bidirectional stream over any CallInvoker (a Channel)
//   auto chat = codec::open_stream<SayRequest, SayReply>(channel, "Echo.Chat", {});
//   Status sent = co_await chat.async_write(request, asio::use_awaitable);
//   codec::StreamRead<SayReply> reply = co_await chat.async_read(asio::use_awaitable);
//
//   // server
//   server.handle_stream<SayRequest, SayReply>("Echo.Chat",
//       [](core::ServerContext&, codec::ServerStream<SayRequest, SayReply>& stream)
//           -> awaitable<Status> { ... });
//
// A message that does not decode ends the read with a kTransport INTERNAL error naming the
// field (the peer sent what this side cannot read); a message that does not encode fails its
// write with the encoder's status and sends nothing. Everything else is as core streams.
#pragma once

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/post.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>

#include "meshrpc/base/result.h"
#include "meshrpc/codec/codec.h"
#include "meshrpc/core/call_invoker.h"
#include "meshrpc/core/method_name.h"
#include "meshrpc/core/stream.h"

namespace meshrpc::codec {

// One typed read: a message, the end of the stream, or an error.
template <Encodable T>
struct StreamRead {
  std::optional<T> message;
  std::optional<core::StreamError> error;

  bool end_of_stream() const { return !message && !error; }
};

namespace detail {

template <Encodable T>
StreamRead<T> decode_read(core::ReadResult raw) {
  StreamRead<T> read;
  read.error = std::move(raw.error);
  if (!raw.message) return read;
  Result<T> message = decode<T>(*raw.message);
  if (!message.ok()) {
    read.error = core::StreamError{core::StreamError::Kind::kTransport,
                                   internal_error("stream message does not decode: " +
                                                  std::string(message.status().message()))};
    return read;
  }
  read.message = std::move(message).value();
  return read;
}

// Reads from `raw` and decodes; the handler keeps its own executor.
template <Encodable In, typename CompletionToken>
auto async_typed_read(core::StreamOps& raw, CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(StreamRead<In>)>(
      [&raw](auto handler) {
        auto executor = asio::get_associated_executor(handler, raw.executor());
        raw.async_read(asio::bind_executor(
            executor, [h = std::move(handler)](core::ReadResult result) mutable {
              std::move(h)(decode_read<In>(std::move(result)));
            }));
      },
      token);
}

// Encodes and writes (last: and half-closes).
template <Encodable Out, typename CompletionToken>
auto async_typed_write(core::StreamOps& raw, const Out& message, bool last,
                       CompletionToken&& token) {
  return asio::async_initiate<CompletionToken, void(Status)>(
      [&raw, last](auto handler, Result<Buffer> bytes) {
        auto executor = asio::get_associated_executor(handler, raw.executor());
        if (!bytes.ok()) {
          Status failed = bytes.status().with_context("stream message does not encode");
          return asio::post(executor,
                            [h = std::move(handler), failed]() mutable { std::move(h)(failed); });
        }
        auto done = asio::bind_executor(
            executor, [h = std::move(handler)](Status status) mutable { std::move(h)(status); });
        if (last) {
          raw.async_write_last(std::move(bytes).value(), std::move(done));
        } else {
          raw.async_write(std::move(bytes).value(), std::move(done));
        }
      },
      token, encode(message));
}

}  // namespace detail

// The client's typed stream: writes Req, reads Reply. Move-only; destroying it cancels an
// unfinished call on both sides, so a task blocked on it (feeding it, or reading) gets an
// error and ends: nothing is left running or buffered for a dropped stream.
template <Encodable Req, Encodable Reply>
class ClientStream {
 public:
  ClientStream() = default;
  explicit ClientStream(core::ClientStream raw) : raw_(std::move(raw)) {}

  template <typename CompletionToken>
  auto async_write(const Req& message, CompletionToken&& token) {
    return detail::async_typed_write<Req>(raw_, message, false,
                                          std::forward<CompletionToken>(token));
  }
  // Writes and half-closes in one frame.
  template <typename CompletionToken>
  auto async_write_last(const Req& message, CompletionToken&& token) {
    return detail::async_typed_write<Req>(raw_, message, true,
                                          std::forward<CompletionToken>(token));
  }
  template <typename CompletionToken>
  auto async_read(CompletionToken&& token) {
    return detail::async_typed_read<Reply>(raw_, std::forward<CompletionToken>(token));
  }
  template <typename CompletionToken>
  auto async_writes_done(CompletionToken&& token) {
    return raw_.async_writes_done(std::forward<CompletionToken>(token));
  }
  template <typename CompletionToken>
  auto async_finish(CompletionToken&& token) {
    return raw_.async_finish(std::forward<CompletionToken>(token));
  }
  void abort() { raw_.abort(); }
  bool valid() const { return raw_.valid(); }
  core::ClientStream& raw() { return raw_; }

 private:
  core::ClientStream raw_;
};

// Seed 002's name for the RAII bidirectional handle.
template <Encodable Req, Encodable Reply>
using BidirectionalStream = ClientStream<Req, Reply>;

// Opens a typed stream to `method` ("Service.Method" or "/package.Service/Method").
template <Encodable Req, Encodable Reply>
ClientStream<Req, Reply> open_stream(core::CallInvoker& invoker, std::string_view method,
                                     core::StreamOptions options = {}) {
  return ClientStream<Req, Reply>(
      invoker.open_stream(core::canonical_method_name(method), std::move(options)));
}

// The handler's typed stream: reads Req, writes Reply.
template <Encodable Req, Encodable Reply>
class ServerStream {
 public:
  explicit ServerStream(core::ServerStream& raw) : raw_(&raw) {}

  template <typename CompletionToken>
  auto async_read(CompletionToken&& token) {
    return detail::async_typed_read<Req>(*raw_, std::forward<CompletionToken>(token));
  }
  template <typename CompletionToken>
  auto async_write(const Reply& message, CompletionToken&& token) {
    return detail::async_typed_write<Reply>(*raw_, message, false,
                                            std::forward<CompletionToken>(token));
  }
  core::ServerStream& raw() { return *raw_; }

 private:
  core::ServerStream* raw_;
};

}  // namespace meshrpc::codec
