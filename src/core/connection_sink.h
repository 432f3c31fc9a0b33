// ConnectionSink: how a stream (stream.h) sends on a meshrpc Connection, client or server
// side. Private to the core.
#pragma once

#include <memory>

#include "meshrpc/core/connection.h"
#include "meshrpc/core/stream.h"

namespace meshrpc::core::detail {

// The sink of a stream on a meshrpc Connection (client or server side). Holds the
// connection weakly: a closed connection refuses with UNAVAILABLE.
class ConnectionSink final : public StreamSink {
 public:
  ConnectionSink(std::weak_ptr<Connection> connection, uint64_t stream_id)
      : connection_(std::move(connection)), stream_id_(stream_id) {}
  Status send(Buffer message, bool end_stream) override;
  Status send_end() override;
  bool wants_writable() override;
  void message_read() override;

 private:
  std::weak_ptr<Connection> connection_;
  uint64_t stream_id_;
};

}  // namespace meshrpc::core::detail
