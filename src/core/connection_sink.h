// ConnectionSink: how a stream (stream.h) sends on a meshrpc Connection, client or server
// side. Private to the core.
#pragma once

#include <memory>

#include "meshrpc/base/metric_registry.h"
#include "meshrpc/core/connection.h"
#include "meshrpc/core/stream.h"

namespace meshrpc::core::detail {

// The sink of a stream on a meshrpc Connection (client or server side). Holds the
// connection weakly: a closed connection refuses with UNAVAILABLE. `sent_bytes` (null when
// metrics are off) counts the payload of each message sent; it shares ownership of the
// metrics it points into, because the stream's handle may outlive its server or channel.
class ConnectionSink final : public StreamSink {
 public:
  ConnectionSink(std::weak_ptr<Connection> connection, uint64_t stream_id,
                 std::shared_ptr<Counter> sent_bytes = nullptr)
      : connection_(std::move(connection)),
        stream_id_(stream_id),
        sent_bytes_(std::move(sent_bytes)) {}
  Status send(Buffer message, bool end_stream) override;
  Status send_end() override;
  bool wants_writable() override;
  void message_read() override;

 private:
  std::weak_ptr<Connection> connection_;
  uint64_t stream_id_;
  std::shared_ptr<Counter> sent_bytes_;
};

}  // namespace meshrpc::core::detail
