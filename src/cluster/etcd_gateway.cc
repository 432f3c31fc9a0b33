#include "etcd_gateway.h"

#include <algorithm>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <charconv>
#include <cstddef>
#include <span>
#include <stdexcept>
#include <utility>

#include "meshrpc/codec/json_detail.h"
#include "meshrpc/transport/dns.h"

namespace meshrpc::cluster::etcd {
namespace http = boost::beast::http;
namespace json = boost::json;

namespace {

// A watch response (one line of the stream) larger than this is a broken stream: a watch on
// a service's providers carries a few hundred bytes per event.
constexpr size_t kMaxWatchLineBytes = 16u << 20;
// The gateway's paths (etcd 3.4 serves /v3/; 3.3 called it /v3beta/).
constexpr std::string_view kLeaseGrant = "/v3/lease/grant";
constexpr std::string_view kLeaseKeepAlive = "/v3/lease/keepalive";
constexpr std::string_view kLeaseRevoke = "/v3/lease/revoke";
constexpr std::string_view kPut = "/v3/kv/put";
constexpr std::string_view kDeleteRange = "/v3/kv/deleterange";
constexpr std::string_view kRange = "/v3/kv/range";
constexpr std::string_view kWatch = "/v3/watch";
// How much of an error body goes into a Status message.
constexpr size_t kMaxQuotedBodyBytes = 200;

std::string base64(std::string_view bytes) {
  std::string quoted;
  codec::json_detail::append_base64(
      quoted, std::span(reinterpret_cast<const std::byte*>(bytes.data()), bytes.size()));
  return quoted.substr(1, quoted.size() - 2);
}

Result<std::string> unbase64(const json::value* value, std::string_view field) {
  if (value == nullptr) return std::string();  // protobuf's JSON leaves empty fields out
  std::vector<std::byte> bytes;
  if (!value->is_string() || !codec::json_detail::decode_base64(value->get_string(), bytes)) {
    return internal_error("etcd answered a " + std::string(field) + " that is not base64");
  }
  return std::string(reinterpret_cast<const char*>(bytes.data()), bytes.size());
}

// protobuf's JSON mapping prints int64 as a string; numbers are accepted too. Absent: 0.
int64_t int64_field(const json::object& object, std::string_view field) {
  const json::value* value = object.if_contains(field);
  if (value == nullptr) return 0;
  if (value->is_int64()) return value->get_int64();
  if (value->is_uint64()) return static_cast<int64_t>(value->get_uint64());
  if (value->is_string()) {
    const json::string& text = value->get_string();
    int64_t parsed = 0;
    auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), parsed);
    if (ec == std::errc() && end == text.data() + text.size()) return parsed;
  }
  return 0;
}

bool bool_field(const json::object& object, std::string_view field) {
  const json::value* value = object.if_contains(field);
  return value != nullptr && value->is_bool() && value->get_bool();
}

const json::object* object_field(const json::object& object, std::string_view field) {
  const json::value* value = object.if_contains(field);
  return value != nullptr && value->is_object() ? &value->get_object() : nullptr;
}

Result<KeyValue> decode_kv(const json::object& kv) {
  KeyValue decoded;
  Result<std::string> key = unbase64(kv.if_contains("key"), "key");
  if (!key.ok()) return key.status();
  Result<std::string> value = unbase64(kv.if_contains("value"), "value");
  if (!value.ok()) return value.status();
  decoded.key = std::move(key).value();
  decoded.value = std::move(value).value();
  decoded.mod_revision = int64_field(kv, "mod_revision");
  decoded.lease = int64_field(kv, "lease");
  return decoded;
}

std::string quote_body(std::string_view body) {
  if (body.size() <= kMaxQuotedBodyBytes) return std::string(body);
  return std::string(body.substr(0, kMaxQuotedBodyBytes)) + "...";
}

// etcd's error body carries a gRPC code; meshrpc's StatusCode numbers are gRPC's.
Status error_from_body(const transport::Address& endpoint, unsigned http_status,
                       std::string_view body) {
  json::error_code ec;
  json::value parsed = json::parse(body, ec);
  if (!ec && parsed.is_object()) {
    const json::object& object = parsed.get_object();
    const int64_t code = int64_field(object, "code");
    const json::value* message = object.if_contains("message");
    if (code > 0 && code < kStatusCodeCount && message != nullptr && message->is_string()) {
      return Status(static_cast<StatusCode>(code),
                    "etcd at " + endpoint.to_string() + ": " + std::string(message->get_string()));
    }
  }
  return unavailable_error("etcd at " + endpoint.to_string() + " answered HTTP " +
                           std::to_string(http_status) + ": " + quote_body(body));
}

Result<json::object> parse_object(const transport::Address& endpoint, std::string_view body) {
  json::error_code ec;
  json::value parsed = json::parse(body, ec);
  if (ec || !parsed.is_object()) {
    return internal_error("etcd at " + endpoint.to_string() + " answered JSON that is not an " +
                          "object: " + quote_body(body));
  }
  return std::move(parsed.get_object());
}

}  // namespace

std::string prefix_range_end(std::string_view prefix) {
  std::string end(prefix);
  while (!end.empty()) {
    auto& last = reinterpret_cast<unsigned char&>(end.back());
    if (last < 0xff) {
      ++last;
      return end;
    }
    end.pop_back();
  }
  // Every key: etcd reads "\0" as "to the end of the key space".
  return std::string(1, '\0');
}

std::string encode_provider(const Provider& provider) {
  json::object tags;
  for (const auto& [name, value] : provider.tags) tags[name] = value;
  json::object object;
  object["node_id"] = provider.node_id;
  object["address"] = provider.address.to_string();
  object["tags"] = std::move(tags);
  object["weight"] = provider.weight;
  object["health"] = provider_health_name(provider.health);
  return json::serialize(object);
}

Result<Provider> decode_provider(std::string_view node_id, std::string_view value) {
  json::error_code ec;
  json::value parsed = json::parse(value, ec);
  if (ec || !parsed.is_object()) {
    return invalid_argument_error("provider " + std::string(node_id) +
                                  ": value is not a JSON object");
  }
  const json::object& object = parsed.get_object();
  Provider provider;
  provider.node_id = std::string(node_id);
  const json::value* address = object.if_contains("address");
  if (address == nullptr || !address->is_string()) {
    return invalid_argument_error("provider " + provider.node_id + ": no \"address\" string");
  }
  Result<transport::Address> parsed_address = transport::Address::parse(address->get_string());
  if (!parsed_address.ok() || parsed_address->port == 0) {
    return invalid_argument_error("provider " + provider.node_id + ": address \"" +
                                  std::string(address->get_string()) + "\" is not host:port");
  }
  provider.address = std::move(parsed_address).value();
  if (const json::object* tags = object_field(object, "tags")) {
    for (const auto& [name, tag] : *tags) {
      if (tag.is_string()) provider.tags[std::string(name)] = std::string(tag.get_string());
    }
  }
  const int64_t weight = int64_field(object, "weight");
  provider.weight = weight > 0 && weight <= UINT32_MAX ? static_cast<uint32_t>(weight) : 1;
  if (const json::value* health = object.if_contains("health"); health && health->is_string()) {
    for (ProviderHealth candidate :
         {ProviderHealth::kHealthy, ProviderHealth::kDraining, ProviderHealth::kUnhealthy}) {
      if (health->get_string() == provider_health_name(candidate)) provider.health = candidate;
    }
  }
  return provider;
}

// ---- Gateway ------------------------------------------------------------------------------

Gateway::Gateway(asio::any_io_executor executor, GatewayOptions options)
    : executor_(std::move(executor)), options_(std::move(options)) {}

const transport::Address& Gateway::endpoint() const {
  return options_.endpoints[endpoint_index_ % options_.endpoints.size()];
}

void Gateway::next_endpoint() {
  endpoint_index_ = (endpoint_index_ + 1) % options_.endpoints.size();
}

Status Gateway::io_error(std::string_view what, error_code ec) const {
  if (closed_) return cancelled_error("etcd client stopped");
  if (ec == boost::beast::error::timeout) {
    return deadline_exceeded_error("etcd at " + endpoint().to_string() + ": " + std::string(what) +
                                   " timed out");
  }
  return unavailable_error("etcd at " + endpoint().to_string() + ": " + std::string(what) + ": " +
                           ec.message());
}

void Gateway::close() {
  closed_ = true;
  if (resolving_) resolve_cancel_.emit(asio::cancellation_type::all);
  if (stream_) stream_->close();
}

asio::awaitable<Status> Gateway::connect(Stream& stream) {
  Status last = unavailable_error("etcd: no endpoints");
  for (size_t tried = 0; tried < options_.endpoints.size(); ++tried) {
    if (closed_) co_return cancelled_error("etcd client stopped");
    const transport::Address& target = endpoint();
    resolving_ = true;
    auto resolve_token =
        asio::bind_cancellation_slot(resolve_cancel_.slot(), use_nothrow_awaitable);
    auto [resolve_ec, addresses] =
        co_await transport::async_resolve(executor_, target.host, target.port, resolve_token);
    resolving_ = false;
    resolve_cancel_.slot().clear();
    if (resolve_ec) {
      last = io_error("resolve", resolve_ec);
      next_endpoint();
      continue;
    }
    std::vector<asio::ip::tcp::endpoint> endpoints;
    for (const transport::Address& address : addresses) {
      error_code parse_ec;
      const asio::ip::address ip = asio::ip::make_address(address.host, parse_ec);
      if (!parse_ec) endpoints.emplace_back(ip, address.port);
    }
    stream.expires_after(options_.request_timeout);
    auto [connect_ec, connected] = co_await stream.async_connect(endpoints, use_nothrow_awaitable);
    if (!connect_ec) {
      stream.socket().set_option(asio::ip::tcp::no_delay(true));
      co_return Status();
    }
    last = io_error("connect", connect_ec);
    stream.close();
    next_endpoint();
  }
  co_return last;
}

asio::awaitable<Result<json::object>> Gateway::exchange(std::string_view path,
                                                        const std::string& body) {
  // A reused connection may have been closed by the server while idle; such a failure
  // before any response byte is retried once on a new connection.
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (closed_) co_return cancelled_error("etcd client stopped");
    const bool reused = stream_.has_value();
    if (!stream_) {
      stream_.emplace(executor_);
      buffer_.clear();
      Status connected = co_await connect(*stream_);
      if (!connected.ok()) {
        stream_.reset();
        co_return connected;
      }
    }
    http::request<http::string_body> request(http::verb::post, path, 11);
    request.set(http::field::host, endpoint().to_string());
    request.set(http::field::content_type, "application/json");
    request.keep_alive(true);
    request.body() = body;
    request.prepare_payload();

    stream_->expires_after(options_.request_timeout);
    auto [write_ec, written] = co_await http::async_write(*stream_, request, use_nothrow_awaitable);
    http::response_parser<http::string_body> parser;
    parser.body_limit(options_.max_response_bytes);
    error_code read_ec = write_ec;
    if (!write_ec) {
      auto [ec, read] = co_await http::async_read(*stream_, buffer_, parser, use_nothrow_awaitable);
      read_ec = ec;
    }
    if (read_ec) {
      Status failed = io_error(write_ec ? "write" : "read", read_ec);
      stream_->close();
      stream_.reset();
      const bool stale = reused && (read_ec == http::error::end_of_stream ||
                                    read_ec == asio::error::connection_reset ||
                                    read_ec == asio::error::broken_pipe);
      if (stale && !closed_) continue;
      next_endpoint();
      co_return failed;
    }
    http::response<http::string_body> response = parser.release();
    if (!response.keep_alive()) {
      stream_->close();
      stream_.reset();
    }
    if (response.result() != http::status::ok) {
      co_return error_from_body(endpoint(), response.result_int(), response.body());
    }
    co_return parse_object(endpoint(), response.body());
  }
  co_return unavailable_error("etcd at " + endpoint().to_string() + ": connection lost twice");
}

asio::awaitable<Result<json::object>> Gateway::post(std::string_view path,
                                                    const json::object& body) {
  if (options_.endpoints.empty()) co_return invalid_argument_error("etcd: no endpoints");
  const std::string text = json::serialize(body);
  co_return co_await exchange(path, text);
}

asio::awaitable<Result<int64_t>> Gateway::grant_lease(runtime::Duration ttl) {
  const auto seconds = std::chrono::ceil<std::chrono::seconds>(ttl).count();
  const json::object body{{"TTL", seconds}};
  Result<json::object> reply = co_await post(kLeaseGrant, body);
  if (!reply.ok()) co_return reply.status();
  if (const json::value* error = reply->if_contains("error"); error && error->is_string()) {
    co_return unavailable_error("etcd: lease grant failed: " + std::string(error->get_string()));
  }
  const int64_t id = int64_field(*reply, "ID");
  if (id == 0) co_return internal_error("etcd: lease grant answered no lease ID");
  co_return id;
}

asio::awaitable<Result<int64_t>> Gateway::keep_alive(int64_t lease) {
  const json::object body{{"ID", std::to_string(lease)}};
  Result<json::object> reply = co_await post(kLeaseKeepAlive, body);
  if (!reply.ok()) co_return reply.status();
  const json::object* result = object_field(*reply, "result");
  if (result == nullptr) {
    co_return internal_error("etcd: lease keepalive answered no result");
  }
  co_return int64_field(*result, "TTL");
}

asio::awaitable<Status> Gateway::revoke_lease(int64_t lease) {
  const json::object body{{"ID", std::to_string(lease)}};
  Result<json::object> reply = co_await post(kLeaseRevoke, body);
  co_return reply.status();
}

asio::awaitable<Status> Gateway::put(std::string_view key, std::string_view value, int64_t lease) {
  json::object body{{"key", base64(key)}, {"value", base64(value)}};
  if (lease != 0) body["lease"] = std::to_string(lease);
  Result<json::object> reply = co_await post(kPut, body);
  co_return reply.status();
}

asio::awaitable<Status> Gateway::delete_key(std::string_view key) {
  const json::object body{{"key", base64(key)}};
  Result<json::object> reply = co_await post(kDeleteRange, body);
  co_return reply.status();
}

asio::awaitable<Result<Range>> Gateway::range_prefix(std::string_view prefix) {
  const json::object body{{"key", base64(prefix)}, {"range_end", base64(prefix_range_end(prefix))}};
  Result<json::object> reply = co_await post(kRange, body);
  if (!reply.ok()) co_return reply.status();
  Range range;
  if (const json::object* header = object_field(*reply, "header")) {
    range.revision = int64_field(*header, "revision");
  }
  if (const json::value* kvs = reply->if_contains("kvs"); kvs && kvs->is_array()) {
    for (const json::value& kv : kvs->get_array()) {
      if (!kv.is_object()) continue;
      Result<KeyValue> decoded = decode_kv(kv.get_object());
      if (!decoded.ok()) co_return decoded.status();
      range.kvs.push_back(std::move(decoded).value());
    }
  }
  co_return range;
}

// ---- WatchStream --------------------------------------------------------------------------

WatchStream::WatchStream(asio::any_io_executor executor, GatewayOptions options)
    : connection_(std::move(executor), std::move(options)) {}

void WatchStream::close() { connection_.close(); }

asio::awaitable<Status> WatchStream::open(std::string_view prefix, int64_t start_revision) {
  Gateway& c = connection_;
  if (c.options_.endpoints.empty()) co_return invalid_argument_error("etcd: no endpoints");
  c.stream_.emplace(c.executor_);
  c.buffer_.clear();
  Status connected = co_await c.connect(*c.stream_);
  if (!connected.ok()) co_return connected;

  json::object create{{"key", base64(prefix)},
                      {"range_end", base64(prefix_range_end(prefix))},
                      {"start_revision", std::to_string(start_revision)}};
  http::request<http::string_body> request(http::verb::post, kWatch, 11);
  request.set(http::field::host, c.endpoint().to_string());
  request.set(http::field::content_type, "application/json");
  request.body() = json::serialize(json::object{{"create_request", std::move(create)}});
  request.prepare_payload();
  c.stream_->expires_after(c.options_.request_timeout);
  auto [write_ec, written] = co_await http::async_write(*c.stream_, request, use_nothrow_awaitable);
  if (write_ec) co_return c.io_error("watch write", write_ec);

  parser_.emplace();
  // The stream is unbounded in total; next() bounds each response instead.
  parser_->body_limit(boost::none);
  consumed_ = 0;
  auto [read_ec, read] =
      co_await http::async_read_header(*c.stream_, c.buffer_, *parser_, use_nothrow_awaitable);
  if (read_ec) co_return c.io_error("watch read", read_ec);
  if (parser_->get().result() != http::status::ok) {
    // The error body is short and not chunked-streamed: read it whole for its message (what
    // arrived, if the read fails).
    c.stream_->expires_after(c.options_.request_timeout);
    co_await http::async_read(*c.stream_, c.buffer_, *parser_, use_nothrow_awaitable);
    co_return error_from_body(c.endpoint(), parser_->get().result_int(), parser_->get().body());
  }
  co_return Status();
}

asio::awaitable<Result<WatchResponse>> WatchStream::next(runtime::Duration idle_timeout) {
  Gateway& c = connection_;
  if (!parser_ || !c.stream_) co_return failed_precondition_error("etcd watch is not open");
  for (;;) {
    std::string& body = parser_->get().body();
    const size_t newline = body.find('\n', consumed_);
    if (newline != std::string::npos) {
      const std::string_view line(body.data() + consumed_, newline - consumed_);
      consumed_ = newline + 1;
      if (line.find_first_not_of(" \r\t") == std::string_view::npos) continue;
      Result<json::object> parsed = parse_object(c.endpoint(), line);
      if (consumed_ > kMaxWatchLineBytes / 2) {
        body.erase(0, consumed_);
        consumed_ = 0;
      }
      if (!parsed.ok()) co_return parsed.status();
      if (const json::object* error = object_field(*parsed, "error")) {
        const json::value* message = error->if_contains("message");
        co_return unavailable_error(
            "etcd watch failed: " +
            (message && message->is_string() ? std::string(message->get_string()) : "no reason"));
      }
      const json::object* result = object_field(*parsed, "result");
      if (result == nullptr) co_return internal_error("etcd watch answered no result");
      WatchResponse response;
      if (const json::object* header = object_field(*result, "header")) {
        response.revision = int64_field(*header, "revision");
      }
      response.created = bool_field(*result, "created");
      response.canceled = bool_field(*result, "canceled");
      response.compact_revision = int64_field(*result, "compact_revision");
      if (const json::value* reason = result->if_contains("cancel_reason");
          reason && reason->is_string()) {
        response.cancel_reason = std::string(reason->get_string());
      }
      if (const json::value* events = result->if_contains("events"); events && events->is_array()) {
        for (const json::value& event : events->get_array()) {
          if (!event.is_object()) continue;
          const json::object* kv = object_field(event.get_object(), "kv");
          if (kv == nullptr) continue;
          Result<KeyValue> decoded = decode_kv(*kv);
          if (!decoded.ok()) co_return decoded.status();
          const json::value* type = event.get_object().if_contains("type");
          response.events.push_back(
              {type != nullptr && type->is_string() && type->get_string() == "DELETE",
               std::move(decoded).value()});
        }
      }
      co_return response;
    }
    if (body.size() - consumed_ > kMaxWatchLineBytes) {
      close();
      co_return resource_exhausted_error("etcd watch response exceeds " +
                                         std::to_string(kMaxWatchLineBytes) + " bytes");
    }
    if (parser_->is_done()) {
      close();
      co_return unavailable_error("etcd at " + c.endpoint().to_string() + " ended the watch");
    }
    c.stream_->expires_after(idle_timeout);
    auto [ec, read] =
        co_await http::async_read_some(*c.stream_, c.buffer_, *parser_, use_nothrow_awaitable);
    if (ec) {
      Status failed = c.io_error("watch read", ec);
      close();
      co_return failed;
    }
  }
}

// ---- setup, sleeping and task counting ----------------------------------------------------

GatewayOptions checked_gateway_options(runtime::Env& env, const EtcdOptions& options,
                                       std::string_view user) {
  if (env.is_simulated()) {
    throw std::invalid_argument(std::string(user) +
                                " needs a RealEnv: simulated hosts have no etcd (use a "
                                "StaticResolver)");
  }
  if (options.endpoints.empty()) {
    throw std::invalid_argument(std::string(user) + ": EtcdOptions::endpoints is empty");
  }
  return {.endpoints = options.endpoints, .request_timeout = options.request_timeout};
}

asio::awaitable<void> InterruptibleSleep::sleep(runtime::Env& env, runtime::Duration duration) {
  sleeping_ = true;
  auto token = asio::bind_cancellation_slot(signal_.slot(), use_nothrow_awaitable);
  co_await env.async_wait_for(duration, token);
  sleeping_ = false;
  // The finished wait may leave its canceller in the slot; a later interrupt() must not
  // reach it.
  signal_.slot().clear();
}

void InterruptibleSleep::interrupt() {
  if (sleeping_) signal_.emit(asio::cancellation_type::all);
}

void TaskLatch::add() {
  std::lock_guard lock(mutex_);
  ++running_;
}

void TaskLatch::done() {
  std::lock_guard lock(mutex_);
  if (--running_ == 0) cv_.notify_all();
}

void TaskLatch::wait() {
  std::unique_lock lock(mutex_);
  cv_.wait(lock, [&] { return running_ == 0; });
}

}  // namespace meshrpc::cluster::etcd

namespace meshrpc::cluster {

Result<std::vector<transport::Address>> parse_etcd_endpoints(std::string_view text) {
  std::vector<transport::Address> endpoints;
  while (!text.empty()) {
    const size_t comma = text.find(',');
    std::string_view item = text.substr(0, comma);
    text = comma == std::string_view::npos ? std::string_view() : text.substr(comma + 1);
    if (item.starts_with("http://")) item.remove_prefix(7);
    if (item.ends_with('/')) item.remove_suffix(1);
    Result<transport::Address> address = transport::Address::parse(item);
    if (!address.ok() || address->host.empty() || address->port == 0) {
      return invalid_argument_error("etcd endpoint \"" + std::string(item) +
                                    "\" is not host:port (or http://host:port)");
    }
    endpoints.push_back(std::move(address).value());
  }
  if (endpoints.empty()) return invalid_argument_error("no etcd endpoints given");
  return endpoints;
}

}  // namespace meshrpc::cluster
