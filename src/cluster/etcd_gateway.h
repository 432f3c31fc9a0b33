// The part of etcd's v3 API that discovery needs (leases, put, prefix range, prefix watch),
// spoken over etcd's HTTP/JSON gateway (grpc-gateway: POST /v3/<service>/<method>, JSON
// bodies, 64-bit integers as strings, keys and values in base64) with Beast. No gRPC
// dependency. Shared by EtcdResolver and EtcdRegistrar; not a public API.
//
//   POST /v3/lease/grant      {"TTL": 10}                          -> {"ID": "7587...", "TTL":
//   "10"} POST /v3/lease/keepalive  {"ID": "7587..."}                    -> {"result": {"TTL":
//   "10"}}
//                             (TTL absent, i.e. 0: the lease has expired)
//   POST /v3/lease/revoke     {"ID": "7587..."}                    -> {} (keys attached go too)
//   POST /v3/kv/put           {"key": b64, "value": b64, "lease": "7587..."}
//   POST /v3/kv/range         {"key": b64, "range_end": b64}       -> {"kvs": [...], "header":
//                                                                     {"revision": "12"}}
//   POST /v3/watch            {"create_request": {"key", "range_end", "start_revision"}}
//                             -> a chunked stream of {"result": {...}} objects, one per line
//   errors: HTTP 4xx/5xx with {"error": "...", "message": "...", "code": <gRPC code>}
//
// Threading: a Gateway or WatchStream is used by one coroutine at a time, on one strand;
// close() must run on that strand too. Every network operation is bounded by
// request_timeout (watch reads: by the idle timeout next() is given).
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/json/object.hpp>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "meshrpc/base/result.h"
#include "meshrpc/base/status.h"
#include "meshrpc/cluster/etcd.h"
#include "meshrpc/cluster/provider.h"
#include "meshrpc/runtime/asio.h"
#include "meshrpc/runtime/clock.h"
#include "meshrpc/runtime/env.h"
#include "meshrpc/transport/address.h"

namespace meshrpc::cluster::etcd {

struct GatewayOptions {
  // etcd client URLs' host:port; tried in order, moving on when one fails.
  std::vector<transport::Address> endpoints;
  runtime::Duration request_timeout = std::chrono::seconds(5);
  // The largest response (a range over a service's providers) accepted.
  uint64_t max_response_bytes = 64u << 20;
};

struct KeyValue {
  std::string key;
  std::string value;
  int64_t mod_revision = 0;
  int64_t lease = 0;
};

struct Range {
  std::vector<KeyValue> kvs;
  // The store's revision when the range was read: a watch from revision + 1 misses nothing.
  int64_t revision = 0;
};

struct WatchEvent {
  bool deleted = false;
  KeyValue kv;
};

struct WatchResponse {
  std::vector<WatchEvent> events;
  int64_t revision = 0;
  bool created = false;
  // The server ended the watch; compact_revision > 0 when the start revision was compacted
  // away (list again, then watch from the new revision).
  bool canceled = false;
  int64_t compact_revision = 0;
  std::string cancel_reason;
};

// The key after every key that starts with `prefix` (etcd's range_end for a prefix).
std::string prefix_range_end(std::string_view prefix);

// A provider as stored under <key_prefix><service>/<node_id>, as JSON:
//   {"node_id": "kv-1", "address": "10.0.0.7:7000", "tags": {"zone": "a"}, "weight": 1,
//    "health": "healthy"}
std::string encode_provider(const Provider& provider);
// The node id is the key's last segment (authoritative over the value's "node_id"). Only
// "address" is required.
Result<Provider> decode_provider(std::string_view node_id, std::string_view value);

// Unary requests over one reused (keep-alive) connection.
class Gateway {
 public:
  Gateway(asio::any_io_executor executor, GatewayOptions options);

  asio::awaitable<Result<boost::json::object>> post(std::string_view path,
                                                    const boost::json::object& body);

  // The new lease's id.
  asio::awaitable<Result<int64_t>> grant_lease(runtime::Duration ttl);
  // The lease's remaining TTL in seconds; 0 when the lease is gone (expired or revoked).
  asio::awaitable<Result<int64_t>> keep_alive(int64_t lease);
  asio::awaitable<Status> revoke_lease(int64_t lease);
  asio::awaitable<Status> put(std::string_view key, std::string_view value, int64_t lease);
  asio::awaitable<Status> delete_key(std::string_view key);
  asio::awaitable<Result<Range>> range_prefix(std::string_view prefix);

  // Aborts the operation in progress (it completes with CANCELLED) and every later one.
  void close();

 private:
  friend class WatchStream;
  using Stream = boost::beast::tcp_stream;

  // Connects `stream` to the current endpoint, moving to the next endpoint on failure; tries
  // each endpoint once.
  asio::awaitable<Status> connect(Stream& stream);
  asio::awaitable<Result<boost::json::object>> exchange(std::string_view path,
                                                        const std::string& body);
  const transport::Address& endpoint() const;
  void next_endpoint();
  Status io_error(std::string_view what, error_code ec) const;

  asio::any_io_executor executor_;
  GatewayOptions options_;
  size_t endpoint_index_ = 0;
  std::optional<Stream> stream_;
  // Cancels a name lookup in progress (close()); emitted only while resolving_.
  asio::cancellation_signal resolve_cancel_;
  bool resolving_ = false;
  boost::beast::flat_buffer buffer_;
  bool closed_ = false;
};

// One watch on its own connection: open() sends the request, next() returns the server's
// responses one by one.
class WatchStream {
 public:
  WatchStream(asio::any_io_executor executor, GatewayOptions options);

  asio::awaitable<Status> open(std::string_view prefix, int64_t start_revision);
  // The next response; DEADLINE_EXCEEDED when none arrives within `idle_timeout` (the
  // stream is then closed), UNAVAILABLE when the connection fails or the server ends it.
  asio::awaitable<Result<WatchResponse>> next(runtime::Duration idle_timeout);
  void close();

 private:
  Gateway connection_;
  std::optional<boost::beast::http::response_parser<boost::beast::http::string_body>> parser_;
  // How much of the parser's body has been returned already.
  size_t consumed_ = 0;
};

// The gateway options of `options`. Throws std::invalid_argument naming `user` when `env` is
// simulated or there are no endpoints (setup errors).
GatewayOptions checked_gateway_options(runtime::Env& env, const EtcdOptions& options,
                                       std::string_view user);

// A sleep on the env's clock that interrupt() cuts short; both on the owner's strand.
class InterruptibleSleep {
 public:
  asio::awaitable<void> sleep(runtime::Env& env, runtime::Duration duration);
  // Ends the current sleep, if one is in progress.
  void interrupt();

 private:
  asio::cancellation_signal signal_;
  bool sleeping_ = false;
};

// Counts tasks of an owner and lets its stop() wait for the last one to finish.
class TaskLatch {
 public:
  void add();
  void done();
  // Blocks until every added task is done.
  void wait();

 private:
  std::mutex mutex_;
  std::condition_variable cv_;
  int running_ = 0;
};

}  // namespace meshrpc::cluster::etcd
