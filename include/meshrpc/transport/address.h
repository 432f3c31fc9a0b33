// Address: where a listener listens and a connector connects: a host and a port.
// The host is an IP literal or a name for TCP, and a simulated host's name under SimEnv.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "meshrpc/base/result.h"

namespace meshrpc::transport {

struct Address {
  std::string host;
  uint16_t port = 0;

  // "host:port", "1.2.3.4:80", "[::1]:80". Port 0 means "any free port" when listening.
  static Result<Address> parse(std::string_view text);
  // The inverse of parse(): IPv6 literals are bracketed.
  std::string to_string() const;

  friend bool operator==(const Address&, const Address&) = default;
  friend auto operator<=>(const Address&, const Address&) = default;
};

}  // namespace meshrpc::transport

template <>
struct std::hash<meshrpc::transport::Address> {
  size_t operator()(const meshrpc::transport::Address& address) const noexcept {
    return std::hash<std::string>()(address.host) * 31 + address.port;
  }
};
