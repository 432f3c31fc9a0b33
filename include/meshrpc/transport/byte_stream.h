// ByteStream: a reliable, ordered, bidirectional byte stream (a TCP connection, a TLS
// session, a simulated link). The only way upper layers move bytes (DESIGN.md principle 2).
//
// It models Asio's AsyncReadStream and AsyncWriteStream, so asio::async_read/async_write
// compose over it. Operations complete with error_codes, as the socket layer speaks them:
//   asio::error::eof                  the peer closed its sending side (after all its data)
//   asio::error::connection_reset     the peer aborted (reset); unread data may be lost
//   asio::error::operation_aborted    cancelled (slot or close()); nothing further happens
// Errors are sticky: once a read ended with eof or an error, every later read completes at
// once with the same code (likewise writes), never waiting. Upper layers turn these into
// Status with transport::to_status().
//
// TLS seam: a TLS session is itself a ByteStream that wraps another one (asio::ssl::stream
// over a ByteStream, which models the stream concepts it needs), so TLS runs unchanged over
// TCP and over simulated links, and nothing above transport/ knows which it has.
//
// Threading: a stream belongs to one executor (get_executor()); start operations and call
// close()/abort() only there. At most one read and one write may be outstanding at a time.
// Lifetime: destroying the stream closes it; outstanding operations complete with
// operation_aborted, and the stream must outlive their initiation only.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/container/small_vector.hpp>
#include <memory>
#include <span>

#include "meshrpc/runtime/asio.h"
#include "meshrpc/transport/address.h"
#include "meshrpc/transport/peer_identity.h"

namespace meshrpc::transport {

class ByteStream {
 public:
  using executor_type = asio::any_io_executor;
  using ReadHandler = asio::any_completion_handler<void(error_code, size_t)>;
  using WriteHandler = asio::any_completion_handler<void(error_code, size_t)>;
  using WaitHandler = asio::any_completion_handler<void(error_code)>;
  // A single write gathers at most this many buffers (Linux's IOV_MAX is 1024; Asio's
  // socket ops take 64 at a time, so more would only be split again).
  static constexpr size_t kMaxWriteBuffers = 64;

  virtual ~ByteStream() = default;

  virtual executor_type get_executor() = 0;

  // Reads at least one byte (unless `buffers` is empty) into `buffers`:
  // handler(error_code, bytes_read).
  template <typename MutableBufferSequence, typename CompletionToken>
  auto async_read_some(const MutableBufferSequence& buffers, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(error_code, size_t)>(
        [this](auto handler, const MutableBufferSequence& buffers) {
          boost::container::small_vector<asio::mutable_buffer, 8> list;
          for (auto it = asio::buffer_sequence_begin(buffers);
               it != asio::buffer_sequence_end(buffers) && list.size() < kMaxWriteBuffers; ++it) {
            list.push_back(*it);
          }
          initiate_read(std::span(list), ReadHandler(std::move(handler)));
        },
        token, buffers);
  }

  // Writes some of `buffers` (at least one byte unless empty): handler(error_code, written).
  // The bytes must stay valid until completion; the buffer list itself is copied.
  template <typename ConstBufferSequence, typename CompletionToken>
  auto async_write_some(const ConstBufferSequence& buffers, CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(error_code, size_t)>(
        [this](auto handler, const ConstBufferSequence& buffers) {
          boost::container::small_vector<asio::const_buffer, 16> list;
          for (auto it = asio::buffer_sequence_begin(buffers);
               it != asio::buffer_sequence_end(buffers) && list.size() < kMaxWriteBuffers; ++it) {
            list.push_back(*it);
          }
          initiate_write(std::span(list), WriteHandler(std::move(handler)));
        },
        token, buffers);
  }

  // Completes when a read would not wait: bytes are there, or the end of the stream or an
  // error is (the next read reports it). Lets an idle reader hold no buffer while it waits.
  // Counts as the one outstanding read.
  template <typename CompletionToken>
  auto async_wait_readable(CompletionToken&& token) {
    return asio::async_initiate<CompletionToken, void(error_code)>(
        [this](auto handler) { initiate_wait_readable(WaitHandler(std::move(handler))); }, token);
  }

  // Half-close: the peer reads eof after every byte written so far. Reading still works.
  virtual void shutdown_send() = 0;
  // Graceful close: data already written is still delivered, then eof. Outstanding
  // operations complete with operation_aborted.
  virtual void close() = 0;
  // Abortive close (TCP RST): unsent data is dropped and the peer sees connection_reset.
  virtual void abort() = 0;

  virtual Address local_address() const = 0;
  virtual Address remote_address() const = 0;
  // Who the peer proved to be: its verified TLS certificate (peer_identity.h). Null for
  // plaintext, and for a TLS peer that sent no certificate.
  virtual std::shared_ptr<const PeerIdentity> peer_identity() const { return nullptr; }

 protected:
  // `buffers` is valid only during the call: implementations copy the list.
  virtual void initiate_read(std::span<const asio::mutable_buffer> buffers,
                             ReadHandler handler) = 0;
  virtual void initiate_write(std::span<const asio::const_buffer> buffers,
                              WriteHandler handler) = 0;
  virtual void initiate_wait_readable(WaitHandler handler) = 0;
};

}  // namespace meshrpc::transport
